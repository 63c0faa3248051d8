import { CarBlockIterator } from '@ipld/car/iterator'
import { CarWriter } from '@ipld/car/writer'
import { describe, expect, it } from 'vitest'
import { encodeNode, rawBlock, type Block } from '../../src/codec/block.js'
import { CID } from '../../src/codec/cid.js'
import { carBlocks, carStream, decodeCidList, encodeCidList, readAhead } from '../../src/sync/http-transport.js'
import { pseudoRandom } from '../helpers/random.js'

/*
 * The wire pieces of the HTTP transport: CARv1 framing both ways (checked against @ipld/car's
 * own reader and writer), binary CID lists, and the read-ahead a push uses.
 */

const blocks: Block[] = [
  encodeNode({ a: 1 }),
  rawBlock(pseudoRandom(1, 200_000)), // a large block: passed through without a copy
  encodeNode({ b: 'two', link: encodeNode({ a: 1 }).cid }),
  rawBlock(pseudoRandom(2, 1024 * 1024)),
  ...Array.from({ length: 300 }, (_, i) => encodeNode({ i })), // many small ones: framed together
]

async function concat(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const c of chunks) parts.push(c)
  return Buffer.concat(parts)
}

async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size)
}

describe('CAR streams', () => {
  it('carStream writes CARv1 that @ipld/car reads back block for block, with its roots', async () => {
    const roots = [blocks[0]!.cid]
    const car = await concat(carStream(blocks, roots))
    const reader = await CarBlockIterator.fromIterable(chunked(car, 7777))
    expect((await reader.getRoots()).map(String)).toEqual(roots.map(String))
    const back: Block[] = []
    for await (const b of reader) back.push({ cid: b.cid as unknown as CID, bytes: b.bytes })
    expect(back.map((b) => b.cid.toString())).toEqual(blocks.map((b) => b.cid.toString()))
    back.forEach((b, i) => expect(Buffer.compare(b.bytes, blocks[i]!.bytes)).toBe(0))
  })

  it('carBlocks reads what @ipld/car writes, in any chunking', async () => {
    const { writer, out } = CarWriter.create([])
    const written = concat(out)
    for (const b of blocks) await writer.put(b)
    await writer.close()
    const car = await written
    for (const size of [1, 1000, 65536, car.length]) {
      if (size === 1 && car.length > 200_000) continue // byte by byte is too slow for the big blocks
      const got: string[] = []
      for await (const b of carBlocks(chunked(car, size), 'test')) got.push(b.cid.toString())
      expect(got).toEqual(blocks.map((b) => b.cid.toString()))
    }
    const small = await concat(carStream(blocks.slice(4, 10)))
    const got: string[] = []
    for await (const b of carBlocks(chunked(small, 1), 'test')) got.push(b.cid.toString())
    expect(got).toHaveLength(6)
  })

  it('a stream cut mid-block, or not a CAR at all, fails with ERR_CORRUPT naming the source', async () => {
    const car = await concat(carStream(blocks.slice(0, 3)))
    const read = async (bytes: Uint8Array) => {
      try {
        for await (const _ of carBlocks(chunked(bytes, 4096), 'http://host/v1/sync/get')) void _
      } catch (e) {
        return e as { code: string; message: string; data: Record<string, unknown> }
      }
      throw new Error('no error')
    }
    const cut = await read(car.subarray(0, car.length - 3))
    expect(cut.code).toBe('ERR_CORRUPT')
    expect(cut.data.truncated).toBe(true)
    expect(cut.message).toContain('http://host/v1/sync/get')
    // A header whose bytes are not a CAR header.
    const junk = await read(new Uint8Array([6, 0xa1, 0x61, 0x78, 0x01, 0x00, 0x00, 0x00, 0x00]))
    expect(junk.code).toBe('ERR_CORRUPT')
    expect(junk.data.truncated).toBe(false)
    expect(junk.message).toContain('not valid CARv1')
  })
})

describe('a CAR section over the block limit', () => {
  it('is refused once more than the limit has been read for it, without gathering it all', async () => {
    const cid = blocks[0]!.cid
    const size = 8 * 1024 * 1024
    const head = await concat(carStream([]))
    let pulled = 0
    async function* huge(): AsyncGenerator<Uint8Array> {
      yield head
      const length = cid.bytes.length + size
      const varint: number[] = []
      for (let n = length; ; n = Math.floor(n / 128)) {
        if (n < 128) {
          varint.push(n)
          break
        }
        varint.push((n & 0x7f) | 0x80)
      }
      yield new Uint8Array([...varint, ...cid.bytes])
      for (let i = 0; i < size; i += 65536) {
        pulled += 65536
        yield new Uint8Array(65536)
      }
    }
    let err: { code?: string; data?: Record<string, unknown> } | undefined
    try {
      for await (const _ of carBlocks(huge(), 'test')) void _
    } catch (e) {
      err = e as typeof err
    }
    expect(err?.code).toBe('ERR_CORRUPT')
    expect(err?.data?.limit).toBe(1024 * 1024)
    expect(pulled).toBeLessThan(2 * 1024 * 1024)
  })
})

describe('binary CID lists', () => {
  it('round-trip, 36 bytes a CID', () => {
    const cids = blocks.slice(0, 4).map((b) => b.cid)
    const bytes = encodeCidList(cids)
    expect(bytes.length).toBe(36 * 4)
    expect(decodeCidList(bytes).map(String)).toEqual(cids.map(String))
    expect(decodeCidList(new Uint8Array())).toEqual([])
  })

  it('refuse garbage and CIDs a store cannot hold', () => {
    expect(() => decodeCidList(new Uint8Array([1, 0x71, 0x12, 32, 5]))).toThrow(/malformed binary CID list/)
    const sha512 = CID.parse('bafkrgqhhyivzstcz3hhswshfjgy6ertgmnqeleynhwt4dlfsthi4hn7zgh4uvlsb5xncykzapi3ocd4lzogukir6ksdy6wzrnz6ohnv4aglcs')
    expect(() => decodeCidList(sha512.bytes)).toThrow(/sha2-256/)
    const v0 = CID.parse('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
    expect(() => decodeCidList(v0.bytes)).toThrow(/CIDv1 only/)
  })
})

describe('readAhead', () => {
  it('keeps order across tens of thousands of small items queued at once', async () => {
    const n = 20_000
    async function* source(): AsyncGenerator<Block> {
      for (let i = 0; i < n; i++) yield { cid: blocks[0]!.cid, bytes: new Uint8Array([i & 0xff, i >> 8]) }
    }
    let i = 0
    for await (const b of readAhead(source(), 1 << 30)) {
      expect((b.bytes[0]! | (b.bytes[1]! << 8)) >>> 0).toBe(i)
      i++
      // Let the reader run far ahead now and then, so that the queue is long when it is taken from.
      if (i % 5000 === 0) await new Promise((r) => setTimeout(r, 20))
    }
    expect(i).toBe(n)
  })
  it('yields every item in order, reading ahead at most about the bound', async () => {
    let read = 0
    let maxAhead = 0
    let consumed = 0
    async function* source(): AsyncGenerator<Block> {
      for (const b of blocks) {
        read++
        maxAhead = Math.max(maxAhead, read - consumed)
        yield b
      }
    }
    const out: string[] = []
    for await (const b of readAhead(source(), 300_000)) {
      consumed++
      out.push(b.cid.toString())
      await new Promise((r) => setImmediate(r))
    }
    expect(out).toEqual(blocks.map((b) => b.cid.toString()))
    expect(maxAhead).toBeGreaterThan(1)
    // The 1 MiB block alone exceeds the bound: nothing is read past it until it is taken.
    expect(maxAhead).toBeLessThan(blocks.length)
  })

  it('delivers the items read before a failure, then the failure', async () => {
    async function* failing(): AsyncGenerator<Block> {
      yield blocks[0]!
      yield blocks[2]!
      throw new Error('disk gone')
    }
    const got: string[] = []
    await expect(
      (async () => {
        for await (const b of readAhead(failing(), 1 << 20)) got.push(b.cid.toString())
      })(),
    ).rejects.toThrow('disk gone')
    expect(got).toEqual([blocks[0]!.cid.toString(), blocks[2]!.cid.toString()])
  })

  it('stops reading, and closes the source, when the consumer stops early', async () => {
    let closed = false
    let read = 0
    async function* endless(): AsyncGenerator<Block> {
      try {
        for (;;) {
          read++
          yield blocks[4]!
        }
      } finally {
        closed = true
      }
    }
    let n = 0
    for await (const _ of readAhead(endless(), 10_000)) {
      void _
      if (++n === 5) break
    }
    expect(closed).toBe(true)
    expect(read).toBeLessThan(1000)
  })
})
