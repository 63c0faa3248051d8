import { createRequire } from 'node:module'
import { promisify } from 'node:util'
import { CorruptBlockError } from '../errors.js'

/**
 * Compression of stored blocks, only where it pays, decided per block from a cheap estimate.
 *
 * A block is always named by the CID of its uncompressed bytes; a backend keeps the bytes as
 * given or deflated and records which (an {@link Encoding}) beside them.
 *
 * Deflate (RFC 1951, raw, level 1) through node:zlib. Measured on this kind of machine (Node
 * 20, 2 cores, 1 MiB blocks, 2026-11-22, ±20–30%; the ranges are quiet and loaded runs):
 *
 *   data                      fflate deflate L1   node:zlib deflateRaw L1   ratio   zlib inflate
 *   float32 model weights          17–20 MB/s             38–47 MB/s        0.927      240 MB/s
 *   JSON provenance records           60 MB/s            270–285 MB/s       0.13       710 MB/s
 *   random bytes                   18–22 MB/s             36–41 MB/s        1.00      1650 MB/s
 *
 * node:zlib is 2x (weights) to 4.5x (JSON) faster than fflate at the same ratio, so fflate is
 * not used. Deflate's speed follows how much of the input it must code as literals: 17–50
 * MB/s on literal-heavy data (float32 0.93, fp16 0.92, bf16 0.79, int8 0.63, CSV numbers 0.49,
 * 16-bit detector counts 0.62) against 100–400 MB/s where long matches dominate (JSON 0.13,
 * source text 0.12, sparse arrays 0.19). A checkpoint must be written at 300 MB/s or more,
 * so large blocks are compressed only when deflate is both worthwhile (at most
 * {@link MAX_RATIO}) and fast (matches cover most of the block), or when it at least halves
 * them. Small blocks (kept in LevelDB) need only be worthwhile: their cost is per call.
 *
 * Deciding by deflating a 4 KiB sample would cost ~90–120 µs a block with node:zlib (mostly
 * per-call set-up; fflate ~240 µs; zlib's async API ~160 µs of main-thread time a call),
 * about 10% of the time budget of an average 256 KiB chunk. {@link estimateDeflate} predicts
 * the same from the same 4 KiB in ~10 µs on float weights (it gives up after 1 KiB of
 * literal-heavy, high-entropy bytes) and ~10–40 µs otherwise. Its predictions against deflate
 * level 1 of the whole 1 MiB block: float32 0.915 (deflate 0.927), bf16 0.77 (0.79), int8
 * 0.60 (0.63), CSV 0.53 (0.49), JSON 0.16 (0.13), source text 0.51 (0.12), random 0.995
 * (1.00), zeros 0.01 (0.004). A compressed result that still misses MAX_RATIO is discarded.
 */

/** How stored bytes encode a block: part of every backend's stored format, never renumbered. */
export const ENCODING_NONE = 0
export const ENCODING_DEFLATE_RAW = 1
/**
 * A delta against another block (codec/delta.ts). Only a backend that can read the base
 * decodes it (LevelBlockstore); {@link decodeStored} refuses it like any unknown encoding.
 */
export const ENCODING_DELTA = 2
export type Encoding = typeof ENCODING_NONE | typeof ENCODING_DEFLATE_RAW | typeof ENCODING_DELTA

/** Blocks smaller than this are kept as given: per-call costs would outweigh any saving. */
export const MIN_COMPRESS_BYTES = 4096
/** Keep the compressed form only if it is at most this fraction of the block. */
export const MAX_RATIO = 0.9
/** At most this fraction of literals for deflate to run fast (about 150 MB/s or more here). */
const MAX_LITERALS_FAST = 0.5
/** Worth compressing even slowly: it at least halves the block. */
const ALWAYS_RATIO = 0.5
/** Bytes the estimate looks at, from the middle of the block (file headers are atypical). */
const SAMPLE_BYTES = 4096
/** After this many bytes, literal-heavy high-entropy samples are rejected without reading on. */
const EARLY_BYTES = 1024
/** At or above this size, deflate and inflate run in libuv's thread pool, off the main thread. */
const ASYNC_MIN_BYTES = 64 * 1024
const DEFLATE = { level: 1 } as const

type Zlib = typeof import('node:zlib')
let zlibModule: Zlib | undefined
/**
 * node:zlib, loaded when a block is first deflated or inflated: a command that reads only
 * uncompressed blocks (log reads commits) does not pay for loading it at start-up.
 */
const zlib = (): Zlib => (zlibModule ??= createRequire(import.meta.url)('node:zlib') as Zlib)
let deflateRawPromise: ((bytes: Uint8Array, options: object) => Promise<Buffer>) | undefined
let inflateRawPromise: ((bytes: Uint8Array, options: object) => Promise<Buffer>) | undefined
const deflateRawAsync = (bytes: Uint8Array, options: object): Promise<Buffer> => (deflateRawPromise ??= promisify(zlib().deflateRaw))(bytes, options)
const inflateRawAsync = (bytes: Uint8Array, options: object): Promise<Buffer> => (inflateRawPromise ??= promisify(zlib().inflateRaw))(bytes, options)

/** A block as a backend keeps it. */
export interface Encoded {
  encoding: Encoding
  /** The stored bytes: the block itself (ENCODING_NONE, the same buffer) or its deflated form. */
  bytes: Uint8Array
}

export interface EncodeOptions {
  /**
   * Compress only if deflate will also be fast, or at least halve the block (default true):
   * for the large blocks of files, whose write rate matters. False: whenever it pays.
   */
  fast?: boolean
}

/**
 * Encode a block for storage: deflated if the estimate says it pays and the result is at most
 * {@link MAX_RATIO} of the block, as given otherwise.
 *
 * @example
 *   const { encoding, bytes } = encodeStored(node.bytes, { fast: false })
 */
export function encodeStored(bytes: Uint8Array, { fast = true }: EncodeOptions = {}): Encoded {
  if (!worthTrying(bytes, fast)) return { encoding: ENCODING_NONE, bytes }
  return keepIfSmaller(bytes, zlib().deflateRawSync(bytes, DEFLATE))
}

/** {@link encodeStored}, deflating large blocks in the thread pool so that the caller can go on hashing. */
export async function encodeStoredAsync(bytes: Uint8Array, { fast = true }: EncodeOptions = {}): Promise<Encoded> {
  if (!worthTrying(bytes, fast)) return { encoding: ENCODING_NONE, bytes }
  const deflated = bytes.length >= ASYNC_MIN_BYTES ? await deflateRawAsync(bytes, DEFLATE) : zlib().deflateRawSync(bytes, DEFLATE)
  return keepIfSmaller(bytes, deflated)
}

/**
 * The block's bytes from their stored form. `size` is the block's length as recorded beside
 * them; any other length, or bytes that do not inflate, is a CorruptBlockError naming `cid`.
 */
export function decodeStored(cid: string, encoding: number, stored: Uint8Array, size: number): Uint8Array {
  if (encoding === ENCODING_NONE) return checkLength(cid, stored, size)
  if (encoding !== ENCODING_DEFLATE_RAW) throw new CorruptBlockError(cid, `unknown stored encoding ${encoding}`)
  let bytes: Uint8Array
  try {
    bytes = zlib().inflateRawSync(stored, { maxOutputLength: Math.max(size, 1) })
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

function worthTrying(bytes: Uint8Array, fast: boolean): boolean {
  if (bytes.length < MIN_COMPRESS_BYTES) return false
  const start = Math.max(0, (bytes.length >>> 1) - SAMPLE_BYTES / 2)
  const { ratio, literals } = estimateDeflate(bytes.subarray(start, start + SAMPLE_BYTES), { giveUpSlow: fast })
  if (!fast) return ratio <= MAX_RATIO
  return ratio <= ALWAYS_RATIO || (ratio <= MAX_RATIO && literals <= MAX_LITERALS_FAST)
}

function keepIfSmaller(bytes: Uint8Array, deflated: Uint8Array): Encoded {
  return deflated.length <= bytes.length * MAX_RATIO ? { encoding: ENCODING_DEFLATE_RAW, bytes: deflated } : { encoding: ENCODING_NONE, bytes }
}

/** What {@link estimateDeflate} predicts for a sample. */
export interface DeflateEstimate {
  /** Predicted deflated size as a fraction of the sample. */
  ratio: number
  /** Fraction of the sample deflate would code as literals (the slow part). */
  literals: number
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
 * Predict what deflate would do with `sample` (its first 4 KiB): greedy LZ77 matches of 4+
 * bytes (one candidate per hash of 4 bytes, as zlib's level 1) cost ~3 bytes each, and the
 * remaining literals cost their order-0 entropy. With `giveUpSlow`, it stops after 1 KiB
 * that is nearly all literals of more than 4 bits a byte (float weights, compressed or random
 * data): such data is neither fast to deflate nor halved by it, whatever the rest holds.
 * Deterministic, allocation-free.
 *
 * @example
 *   estimateDeflate(new TextEncoder().encode('{"a":1}'.repeat(600))).ratio // ≈ 0.01
 */
export function estimateDeflate(sample: Uint8Array, { giveUpSlow = false }: { giveUpSlow?: boolean } = {}): DeflateEstimate {
  const n = Math.min(sample.length, SAMPLE_BYTES)
  if (n === 0) return { ratio: 1, literals: 1 }
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
  let checkAt = giveUpSlow && n > 2 * EARLY_BYTES ? EARLY_BYTES : n
  while (i + 4 <= n) {
    if (i >= checkAt) {
      checkAt = n
      if (literals > 0.9 * i && literalBits(literals) > 4 * literals) return { ratio: literalBits(literals) / 8 / i, literals: literals / i }
    }
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
  return { ratio: (literalBits(literals) / 8 + matches * 3) / n, literals: literals / n }
}

/** Order-0 entropy of the literals counted so far, in bits (all of them together). */
function literalBits(literals: number): number {
  if (literals === 0) return 0
  let sum = 0
  for (let c = 0; c < 256; c++) sum += C_LOG_C[counts[c]]
  return C_LOG_C[literals] - sum
}
