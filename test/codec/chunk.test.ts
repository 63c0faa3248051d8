import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { CHUNKER, GEAR, chunkStream, cutPoint } from '../../src/codec/chunk.js'
import { pseudoRandom } from '../helpers/random.js'

const KiB = 1024
const MiB = 1024 * KiB

const hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const c of source) out.push(c)
  return out
}

async function* pieces(bytes: Uint8Array, sizes: () => number): AsyncGenerator<Uint8Array> {
  for (let o = 0; o < bytes.length; ) {
    const n = Math.min(sizes(), bytes.length - o)
    yield bytes.subarray(o, o + n)
    o += n
  }
}

/** The chunker as CHUNKER's documentation defines it, one byte at a time, for comparison. */
function referenceCut(buf: Uint8Array, start: number, end: number): number {
  const n = end - start
  if (n <= CHUNKER.min) return end
  const limit = Math.min(end, start + CHUNKER.max)
  let h = 0
  for (let i = start + CHUNKER.min; i < limit; i++) {
    h = (h * 2 + (GEAR[buf[i]!]! >>> 0)) % 2 ** 32
    const mask = i < start + CHUNKER.avg ? CHUNKER.maskS : CHUNKER.maskL
    if ((h & mask) === 0) return i + 1
  }
  return limit
}

function cutAll(buf: Uint8Array, cut: (b: Uint8Array, s: number, e: number) => number): number[] {
  const ends: number[] = []
  for (let start = 0; start < buf.length; ) {
    start = cut(buf, start, buf.length)
    ends.push(start)
  }
  return ends
}

const popcount = (x: number): number => x.toString(2).replace(/0/g, '').length

describe('CHUNKER parameters', () => {
  it('are the ones DESIGN.md fixes, JSON-compatible so they can be recorded in file nodes', () => {
    expect(CHUNKER.name).toBe('fastcdc-gear-v1')
    expect([CHUNKER.min, CHUNKER.avg, CHUNKER.max]).toEqual([64 * KiB, 256 * KiB, 1 * MiB])
    expect(JSON.parse(JSON.stringify(CHUNKER))).toEqual(CHUNKER)
    // Normalized chunking, level 2: log2(avg) +- 2 bits, nested, clear of bit 31.
    expect(popcount(CHUNKER.maskS)).toBe(20)
    expect(popcount(CHUNKER.maskL)).toBe(16)
    expect(CHUNKER.maskS & CHUNKER.maskL).toBe(CHUNKER.maskL)
    expect(CHUNKER.maskS).toBeLessThan(2 ** 31)
  })

  it('derive a fixed gear table (golden digest: a change here changes every large file CID)', () => {
    const bytes = new Uint8Array(GEAR.length * 4)
    const view = new DataView(bytes.buffer)
    GEAR.forEach((g, i) => view.setInt32(i * 4, g, false))
    expect(hex(bytes)).toBe('8d9ca7baccfd8459becbe7918a858452895b6b72d2d2e7d0ef8775a872243388')
    expect(new Set(GEAR).size).toBe(256)
  })
})

describe('cutPoint', () => {
  it('cuts exactly where the one-byte-at-a-time definition does', () => {
    // Odd lengths and offsets exercise the two-bytes-per-step loop's tails.
    for (const [seed, size] of [
      [1, 12 * MiB + 1],
      [2, 3 * MiB + 7],
      [3, 200 * KiB + 3],
      [4, 64 * KiB + 1],
    ] as const) {
      const buf = pseudoRandom(seed, size)
      expect(cutAll(buf, cutPoint)).toEqual(cutAll(buf, referenceCut))
      expect(cutPoint(buf, 1, buf.length)).toBe(referenceCut(buf, 1, buf.length))
    }
  })

  it('keeps every chunk within [min, max] except a short last one', () => {
    const buf = pseudoRandom(7, 32 * MiB)
    const ends = cutAll(buf, cutPoint)
    const lengths = ends.map((e, i) => e - (i === 0 ? 0 : ends[i - 1]!))
    for (const n of lengths.slice(0, -1)) {
      expect(n).toBeGreaterThanOrEqual(CHUNKER.min)
      expect(n).toBeLessThanOrEqual(CHUNKER.max)
    }
    expect(lengths.at(-1)!).toBeLessThanOrEqual(CHUNKER.max)
    expect(ends.at(-1)).toBe(buf.length)
    const mean = buf.length / lengths.length
    expect(mean).toBeGreaterThan(200 * KiB)
    expect(mean).toBeLessThan(400 * KiB)
  })

  it('cuts low-entropy data at max and leaves input of at most min bytes whole', () => {
    const zeros = new Uint8Array(5 * MiB + 5)
    const ends = cutAll(zeros, cutPoint)
    expect(ends).toEqual(cutAll(zeros, referenceCut))
    for (const n of ends.map((e, i) => e - (i === 0 ? 0 : ends[i - 1]!))) expect(n).toBeLessThanOrEqual(CHUNKER.max)
    const small = pseudoRandom(9, CHUNKER.min)
    expect(cutPoint(small, 0, small.length)).toBe(small.length)
  })
})

describe('chunkStream', () => {
  const data = pseudoRandom(42, 6 * MiB + 12345)
  const expected = cutAll(data, cutPoint)

  it('gives the same chunks whatever the sizes of the incoming pieces', async () => {
    let r = 12345
    const rnd = (): number => {
      r = (Math.imul(r, 1103515245) + 12345) >>> 0
      return r
    }
    const splits: Array<[string, () => number]> = [
      ['one piece', () => data.length],
      ['64 KiB', () => 64 * KiB],
      ['random up to 3 MiB', () => 1 + (rnd() % (3 * MiB))],
      ['random up to 4 KiB, some empty', () => rnd() % 4096],
      ['exactly max', () => CHUNKER.max],
      ['max + 1', () => CHUNKER.max + 1],
      ['2 * max', () => 2 * CHUNKER.max],
    ]
    for (const [name, sizes] of splits) {
      const chunks = await collect(chunkStream(pieces(data, sizes)))
      const ends: number[] = []
      let at = 0
      for (const c of chunks) ends.push((at += c.length))
      expect(ends, name).toEqual(expected)
    }
    // ... and byte for byte the input, in order.
    const chunks = await collect(chunkStream(pieces(data, () => 1 + (rnd() % 100_000))))
    expect(hex(Buffer.concat(chunks))).toBe(hex(data))
  })

  it('yields nothing for an empty stream, and one chunk for a small input', async () => {
    expect(await collect(chunkStream(pieces(new Uint8Array(0), () => 1)))).toEqual([])
    const tiny = new Uint8Array([1, 2, 3])
    const got = await collect(chunkStream(pieces(tiny, () => 1)))
    expect(got).toEqual([tiny])
  })

  it('streams: the first chunk comes out after at most ~2 x max bytes were read', async () => {
    let read = 0
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (let i = 0; ; i++) {
        const piece = pseudoRandom(i + 1, 64 * KiB)
        read += piece.length
        yield piece
      }
    }
    let count = 0
    for await (const chunk of chunkStream(endless())) {
      expect(chunk.length).toBeLessThanOrEqual(CHUNKER.max)
      expect(read).toBeLessThanOrEqual(2 * CHUNKER.max + 64 * KiB)
      if (++count === 3) break
    }
  })

  it('yields copies: a source that reuses its buffer does not change chunks already yielded', async () => {
    const shared = new Uint8Array(256 * KiB)
    async function* reusing(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 24; i++) {
        shared.set(pseudoRandom(100 + i, shared.length))
        yield shared
      }
    }
    const fresh = async function* (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 24; i++) yield pseudoRandom(100 + i, shared.length)
    }
    const a = (await collect(chunkStream(reusing()))).map(hex)
    const b = (await collect(chunkStream(fresh()))).map(hex)
    expect(a).toEqual(b)
  })
})
