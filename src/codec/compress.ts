import { deflateRaw, deflateRawSync, inflateRaw, inflateRawSync } from 'node:zlib'
import { promisify } from 'node:util'
import { CorruptBlockError } from '../errors.js'

/**
 * Compression of stored blocks: only where it pays, decided per block from a cheap estimate.
 *
 * A block is always named by the CID of its uncompressed bytes; a backend keeps the bytes as
 * given or deflated and records which (an {@link Encoding}) beside them. Deflate (RFC 1951,
 * raw, level 1) through node:zlib, because on this kind of machine (Node 20, 2 cores; 1 MiB
 * blocks, measured 2026-11-22, ±20%):
 *
 *   data                     fflate deflate L1   node:zlib deflateRaw L1   ratio   zlib inflate
 *   float32 model weights         17–20 MB/s              38–40 MB/s        1.08x     240 MB/s
 *   JSON provenance records          60 MB/s             270–285 MB/s       7.9x      710 MB/s
 *   random bytes                  18–22 MB/s              36–41 MB/s        1.00x    1650 MB/s
 *
 * node:zlib is 2x (weights) to 4.5x (JSON) faster than fflate at the same ratio. Weights are
 * the bulk of a model store and gain 8% at 40 MB/s, far below the 300 MB/s a checkpoint must
 * be written at, so they must be detected and left alone cheaply. Deflating a 4 KiB sample to
 * find out costs ~90–120 µs with node:zlib (most of it per-call set-up; fflate ~240 µs, and
 * zlib's async API ~160 µs of main-thread time per call), i.e. ~10% of the write budget of an
 * average 256 KiB chunk. {@link estimateDeflateRatio} predicts the same answer from the same
 * sample in ~15–40 µs: the sample's order-0 entropy (what Huffman coding gains) plus the
 * matches an LZ77 pass would find (what back-references gain). Measured against deflate
 * level 1 of the whole 1 MiB block: float32 weights 0.915 (deflate 0.927), bf16 0.77 (0.79),
 * int8 0.61 (0.63), CSV numbers 0.53 (0.49), JSON 0.16 (0.13), source text 0.48 (0.12),
 * random 0.995 (1.00), zeros 0.01 (0.004). Errors lean towards "incompressible", and a
 * compressed result that still misses {@link MAX_RATIO} is thrown away.
 */

/** How stored bytes encode a block: part of every backend's stored format, never renumbered. */
export const ENCODING_NONE = 0
export const ENCODING_DEFLATE_RAW = 1
export type Encoding = typeof ENCODING_NONE | typeof ENCODING_DEFLATE_RAW

/** Blocks smaller than this are kept as given: per-call costs would outweigh any saving. */
export const MIN_COMPRESS_BYTES = 4096
/** Keep the compressed form only if it is at most this fraction of the block. */
export const MAX_RATIO = 0.9
/** Bytes the estimate looks at, from the middle of the block (file headers are atypical). */
const SAMPLE_BYTES = 4096
/** At or above this size, compression runs in libuv's thread pool, off the main thread. */
const ASYNC_MIN_BYTES = 64 * 1024
const DEFLATE = { level: 1 } as const

const deflateRawAsync = promisify(deflateRaw)
const inflateRawAsync = promisify(inflateRaw)

/** A block as a backend keeps it. */
export interface Encoded {
  encoding: Encoding
  /** The stored bytes: the block itself (ENCODING_NONE) or its deflated form. */
  bytes: Uint8Array
}

/**
 * Encode a block for storage: deflated if the estimate says it pays and the result is at most
 * {@link MAX_RATIO} of the block, as given otherwise (the same buffer, not a copy).
 *
 * @example
 *   const { encoding, bytes } = encodeStored(block.bytes)
 */
export function encodeStored(bytes: Uint8Array): Encoded {
  if (!worthTrying(bytes)) return { encoding: ENCODING_NONE, bytes }
  return keepIfSmaller(bytes, deflateRawSync(bytes, DEFLATE))
}

/** {@link encodeStored}, deflating large blocks in the thread pool so the caller keeps hashing. */
export async function encodeStoredAsync(bytes: Uint8Array): Promise<Encoded> {
  if (!worthTrying(bytes)) return { encoding: ENCODING_NONE, bytes }
  const deflated = bytes.length >= ASYNC_MIN_BYTES ? await deflateRawAsync(bytes, DEFLATE) : deflateRawSync(bytes, DEFLATE)
  return keepIfSmaller(bytes, deflated)
}

/**
 * The block's bytes from its stored form. `size` is the block's length as recorded beside it;
 * inflating to any other length (or failing to inflate) is a CorruptBlockError naming `cid`.
 */
export function decodeStored(cid: string, encoding: number, stored: Uint8Array, size: number): Uint8Array {
  if (encoding === ENCODING_NONE) return checkLength(cid, stored, size)
  if (encoding !== ENCODING_DEFLATE_RAW) throw new CorruptBlockError(cid, `unknown stored encoding ${encoding}`)
  let bytes: Uint8Array
  try {
    bytes = inflateRawSync(stored, { maxOutputLength: Math.max(size, 1) })
  } catch (e) {
    throw new CorruptBlockError(cid, `stored bytes do not inflate: ${(e as Error).message}`, { cause: e })
  }
  return checkLength(cid, bytes, size)
}

/** {@link decodeStored}, inflating large blocks in the thread pool. */
export async function decodeStoredAsync(cid: string, encoding: number, stored: Uint8Array, size: number): Promise<Uint8Array> {
  if (encoding !== ENCODING_DEFLATE_RAW || size < ASYNC_MIN_BYTES) return decodeStored(cid, encoding, stored, size)
  let bytes: Uint8Array
  try {
    bytes = await inflateRawAsync(stored, { maxOutputLength: size })
  } catch (e) {
    throw new CorruptBlockError(cid, `stored bytes do not inflate: ${(e as Error).message}`, { cause: e })
  }
  return checkLength(cid, bytes, size)
}

function checkLength(cid: string, bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.length !== size) throw new CorruptBlockError(cid, `stored form gives ${bytes.length} bytes, the index says ${size}`)
  return bytes
}

function worthTrying(bytes: Uint8Array): boolean {
  if (bytes.length < MIN_COMPRESS_BYTES) return false
  const start = Math.max(0, (bytes.length >>> 1) - SAMPLE_BYTES / 2)
  return estimateDeflateRatio(bytes.subarray(start, start + SAMPLE_BYTES)) <= MAX_RATIO
}

function keepIfSmaller(bytes: Uint8Array, deflated: Uint8Array): Encoded {
  return deflated.length <= bytes.length * MAX_RATIO ? { encoding: ENCODING_DEFLATE_RAW, bytes: deflated } : { encoding: ENCODING_NONE, bytes }
}

// The estimate's scratch space, reused across calls (JS is single-threaded).
const HASH_BITS = 12
const table = new Int32Array(1 << HASH_BITS)
const counts = new Int32Array(256)
/** c·log2(c) for every count a sample can reach. */
const C_LOG_C = new Float64Array(SAMPLE_BYTES + 1).map((_, c) => (c > 0 ? c * Math.log2(c) : 0))
/** Positions in `table` are stored offset by a per-call base, so stale entries need no clearing. */
let base = 0

/**
 * Predicts the ratio deflate would reach on `sample` (at most 4 KiB): greedy LZ77 matches of
 * 4+ bytes (hash of 4 bytes, one candidate per hash, as zlib level 1 does) cost ~3 bytes each,
 * and the remaining literals cost their order-0 entropy. Deterministic; no allocation.
 *
 * @example
 *   estimateDeflateRatio(new TextEncoder().encode('{"a":1}'.repeat(500))) // ≈ 0.01
 */
export function estimateDeflateRatio(sample: Uint8Array): number {
  const n = Math.min(sample.length, SAMPLE_BYTES)
  if (n === 0) return 1
  if (base > 0x7fff0000 - n) {
    table.fill(0)
    base = 0
  }
  const b = base
  base += n + 1
  counts.fill(0)
  const s = sample
  let i = 0
  let literals = 0
  let matches = 0
  while (i + 4 <= n) {
    const v = s[i] | (s[i + 1] << 8) | (s[i + 2] << 16) | (s[i + 3] << 24)
    const h = Math.imul(v, 0x9e3779b1) >>> (32 - HASH_BITS)
    const j = table[h] - b - 1
    table[h] = i + b + 1
    if (j >= 0 && s[j] === s[i] && s[j + 1] === s[i + 1] && s[j + 2] === s[i + 2] && s[j + 3] === s[i + 3]) {
      let k = 4
      while (i + k < n && k < 258 && s[j + k] === s[i + k]) k++
      matches++
      i += k
      continue
    }
    counts[s[i]]++
    literals++
    i++
  }
  for (; i < n; i++) {
    counts[s[i]]++
    literals++
  }
  let sum = 0
  for (let c = 0; c < 256; c++) sum += C_LOG_C[counts[c]]
  const literalBits = literals > 0 ? C_LOG_C[literals] - sum : 0
  return (literalBits / 8 + matches * 3) / n
}
