import { deflateRawSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import {
  ENCODING_DEFLATE_RAW,
  ENCODING_NONE,
  MAX_RATIO,
  MIN_COMPRESS_BYTES,
  decodeStored,
  decodeStoredAsync,
  encodeStored,
  encodeStoredAsync,
  estimateDeflate,
} from '../../src/codec/compress.js'
import { CorruptBlockError } from '../../src/errors.js'
import { prng } from '../helpers/random.js'

const KiB = 1024

function randomBytes(seed: number, n: number): Uint8Array {
  const rand = prng(seed)
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256))
}

/** JSON lines like a workflow's task records. */
function jsonText(n: number): Uint8Array {
  const rand = prng(7)
  let s = ''
  for (let i = 0; s.length < n; i++) {
    s += JSON.stringify({ type: 'task', id: `task-${i}`, started_at: new Date(1.7e12 + i * 1000).toISOString(), loss: rand(), used: [`/data/run${i % 100}.h5`] }) + '\n'
  }
  return new TextEncoder().encode(s).subarray(0, n)
}

/** Model weights: float32 (barely compressible) or bf16 (compressible by ~20%, but only slowly). */
function weights(n: number, kind: 'f32' | 'bf16'): Uint8Array {
  const rand = prng(11)
  const f = new Float32Array(n / 4)
  for (let i = 0; i < f.length; i++) f[i] = (rand() + rand() + rand() + rand() - 2) * 0.03
  if (kind === 'f32') return new Uint8Array(f.buffer)
  const u32 = new Uint32Array(f.buffer)
  return new Uint8Array(Uint16Array.from({ length: n / 2 }, (_, i) => u32[i]! >>> 16).buffer)
}

const ratioOf = (bytes: Uint8Array): number => deflateRawSync(bytes, { level: 1 }).length / bytes.length

describe('compression of stored blocks', () => {
  it('deflates JSON text to under half its size, and inflates it back byte-exact', async () => {
    const block = jsonText(512 * KiB)
    for (const enc of [encodeStored(block), await encodeStoredAsync(block)]) {
      expect(enc.encoding).toBe(ENCODING_DEFLATE_RAW)
      expect(enc.bytes.length).toBeLessThan(0.5 * block.length)
      expect(Buffer.from(decodeStored('bafkjson', enc.encoding, enc.bytes, block.length)).equals(Buffer.from(block))).toBe(true)
      expect(Buffer.from(await decodeStoredAsync('bafkjson', enc.encoding, enc.bytes, block.length)).equals(Buffer.from(block))).toBe(true)
    }
  })

  it('keeps random bytes as they are (the same buffer, stored size == size)', async () => {
    const block = randomBytes(1, 256 * KiB)
    for (const enc of [encodeStored(block), await encodeStoredAsync(block), encodeStored(block, { fast: false })]) {
      expect(enc.encoding).toBe(ENCODING_NONE)
      expect(enc.bytes).toBe(block)
    }
  })

  it('keeps float32 weights as they are: deflate would save under 10%, at a fraction of the write rate', () => {
    const block = weights(1024 * KiB, 'f32')
    expect(ratioOf(block)).toBeGreaterThan(MAX_RATIO) // the premise: they barely compress
    expect(encodeStored(block).encoding).toBe(ENCODING_NONE)
    expect(encodeStored(block, { fast: false }).encoding).toBe(ENCODING_NONE)
  })

  it('compresses bf16 weights (~20% smaller, literal-heavy) only when speed does not matter', () => {
    const block = weights(256 * KiB, 'bf16')
    expect(ratioOf(block)).toBeLessThan(0.85)
    expect(encodeStored(block).encoding).toBe(ENCODING_NONE) // large file blocks: keep the write rate
    const slow = encodeStored(block, { fast: false })
    expect(slow.encoding).toBe(ENCODING_DEFLATE_RAW)
    expect(Buffer.from(decodeStored('bafkbf16', slow.encoding, slow.bytes, block.length)).equals(Buffer.from(block))).toBe(true)
  })

  it('never compresses blocks under MIN_COMPRESS_BYTES, however repetitive', () => {
    const small = new Uint8Array(MIN_COMPRESS_BYTES - 1).fill(0x61)
    expect(encodeStored(small, { fast: false })).toEqual({ encoding: ENCODING_NONE, bytes: small })
    expect(encodeStored(new Uint8Array(MIN_COMPRESS_BYTES).fill(0x61)).encoding).toBe(ENCODING_DEFLATE_RAW)
  })

  it('predicts deflate closely enough to decide (within 0.1 on weights, random and zeros; on the safe side on text)', () => {
    const cases: Array<[string, Uint8Array]> = [
      ['f32', weights(64 * KiB, 'f32')],
      ['bf16', weights(64 * KiB, 'bf16')],
      ['random', randomBytes(2, 64 * KiB)],
      ['zeros', new Uint8Array(64 * KiB)],
      ['json', jsonText(64 * KiB)],
    ]
    for (const [name, data] of cases) {
      const sample = data.subarray(32 * KiB - 2 * KiB, 32 * KiB + 2 * KiB)
      const { ratio } = estimateDeflate(sample)
      const actual = ratioOf(data)
      if (name === 'json') expect(ratio, name).toBeGreaterThanOrEqual(actual - 0.05)
      else expect(Math.abs(ratio - actual), name).toBeLessThan(0.1)
    }
    expect(estimateDeflate(new Uint8Array(0))).toEqual({ ratio: 1, literals: 1 })
  })

  it('refuses stored bytes that do not give the recorded size, or do not inflate, naming the block', async () => {
    const block = jsonText(100 * KiB)
    const enc = encodeStored(block)
    for (const attempt of [
      () => decodeStored('bafkwrongsize', enc.encoding, enc.bytes, block.length - 1),
      () => decodeStored('bafkwrongsize', enc.encoding, enc.bytes, block.length + 1),
      () => decodeStored('bafkwrongsize', ENCODING_DEFLATE_RAW, randomBytes(3, 1000), block.length),
      () => decodeStored('bafkwrongsize', 7, enc.bytes, block.length),
      () => decodeStored('bafkwrongsize', ENCODING_NONE, block.subarray(1), block.length),
    ]) {
      let err: unknown
      try {
        attempt()
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(CorruptBlockError)
      expect((err as Error).message).toContain('bafkwrongsize')
    }
    await expect(decodeStoredAsync('bafkasync', enc.encoding, enc.bytes, block.length - 5)).rejects.toBeInstanceOf(CorruptBlockError)
  })
})
