import { varint } from 'multiformats'
import { CID } from './cid.js'

/**
 * Delta encoding: a block stored as the differences from a similar block (its base), the way
 * git packs store an object against a similar one. A model checkpoint whose new version
 * rewrites a few scattered regions changes only the chunks those regions touch, and each such
 * chunk is mostly the bytes of the chunk at the same place in the old version: stored as a
 * delta against that chunk it costs about the bytes that really changed, not a whole chunk.
 *
 * This is a storage encoding like deflate (codec/compress.ts): the block is still named by the
 * CID of its own bytes, travels whole between stores, and is re-hashed whenever it is read.
 *
 * Stored form (integers are unsigned LEB128 varints, as in multiformats):
 *
 *     varint n, n bytes: the base's CID (binary)
 *     then operations until the end:
 *       varint (len << 1)        insert: the next len bytes are the block's next bytes
 *       varint (len << 1) | 1,   copy: the block's next len bytes are the base's bytes
 *       varint offset                   [offset, offset + len)
 *
 * Matching (written for this store; no npm library fits: fossil-delta, the best kept one,
 * measured 11 MB/s to encode and 30 MB/s to apply 256 KiB chunks, because it builds its output
 * one byte at a time in a JS array): the base is indexed by a hash of each aligned
 * {@link WINDOW}-byte block; a rolling hash of the target's window at every offset finds
 * candidates, which are checked byte-wise and extended backwards and forwards as far as the
 * bytes agree. Shifted data (an insertion before it) is found as well as data in place.
 */

/** Bytes of the window the hashes cover: the shortest copy the matcher finds. */
const WINDOW = 32
/** Multiplier of the polynomial rolling hash (an odd constant; arithmetic mod 2^32). */
const MULTIPLIER = 0x01000193
/** MULTIPLIER ** (WINDOW - 1) mod 2^32: what the byte leaving the window contributed. */
const OUTGOING = (() => {
  let m = 1
  for (let i = 0; i < WINDOW - 1; i++) m = Math.imul(m, MULTIPLIER)
  return m
})()

/** A delta as stored: the base's CID and the operations that rebuild the block from it. */
export interface StoredDelta {
  base: CID
  ops: Uint8Array
}

/**
 * The stored form of a delta of `target` against `base` (whose CID is `baseCid`), or
 * undefined if it would take more than `limit` bytes (then storing the block whole, or
 * deflated, is better). Gives up as soon as the limit is passed, so a hopeless pair costs
 * little more than the bytes it scanned.
 *
 * @example
 *   const stored = encodeDelta(oldChunk.cid, oldChunk.bytes, newChunk.bytes, newChunk.bytes.length / 2)
 */
export function encodeDelta(baseCid: CID, base: Uint8Array, target: Uint8Array, limit: number): Uint8Array | undefined {
  const out = new DeltaWriter(Math.max(0, Math.floor(limit)))
  if (!out.bytes(baseCid.bytes, true)) return undefined
  const n = target.length
  const table = indexBase(base)
  const shift = 32 - Math.log2(table.length)
  let literalStart = 0
  let p = 0
  let h = n >= WINDOW ? windowHash(target, 0) : 0
  // Bytes the pending insert may still take before the limit is passed.
  let budget = out.limit - out.length
  while (p + WINDOW <= n) {
    const candidate = table[Math.imul(h, 0x9e3779b1) >>> shift]! - 1
    if (candidate >= 0 && sameWindow(base, candidate, target, p)) {
      let start = p
      let from = candidate
      while (start > literalStart && from > 0 && target[start - 1] === base[from - 1]) {
        start--
        from--
      }
      let end = p + WINDOW
      let to = candidate + WINDOW
      while (end < n && to < base.length && target[end] === base[to]) {
        end++
        to++
      }
      if (!out.insert(target, literalStart, start) || !out.copy(from, end - start)) return undefined
      literalStart = p = end
      budget = out.limit - out.length
      if (p + WINDOW <= n) h = windowHash(target, p)
      continue
    }
    // Bytes since the last match will be inserted whole: stop once they alone pass the limit.
    if (p - literalStart > budget) return undefined
    if (p + WINDOW === n) break
    h = (Math.imul(h - Math.imul(target[p]!, OUTGOING), MULTIPLIER) + target[p + WINDOW]!) | 0
    p++
  }
  if (!out.insert(target, literalStart, n)) return undefined
  return out.result()
}

/** Split a stored delta into its base's CID and its operations; throws on a malformed header. */
export function parseDelta(stored: Uint8Array): StoredDelta {
  const [length, at] = varint.decode(stored)
  if (length === 0 || at + length > stored.length) throw new Error(`delta header gives a base CID of ${length} bytes in ${stored.length}`)
  return { base: CID.decode(stored.subarray(at, at + length)), ops: stored.subarray(at + length) }
}

/**
 * The block rebuilt from its base and the delta's operations. Throws (naming what is wrong)
 * when an operation reaches outside the base or the result is not `size` bytes; the caller
 * re-hashes the result against the block's CID as for any read.
 */
export function applyDelta(base: Uint8Array, ops: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size)
  let written = 0
  let at = 0
  while (at < ops.length) {
    const [op, opBytes] = varint.decode(ops, at)
    at += opBytes
    const length = Math.floor(op / 2)
    if (written + length > size) throw new Error(`delta writes past the block's ${size} bytes`)
    if (op % 2 === 1) {
      const [offset, offsetBytes] = varint.decode(ops, at)
      at += offsetBytes
      if (offset + length > base.length) throw new Error(`delta copies [${offset}, ${offset + length}) from a base of ${base.length} bytes`)
      out.set(base.subarray(offset, offset + length), written)
    } else {
      if (at + length > ops.length) throw new Error(`delta inserts ${length} bytes, ${ops.length - at} remain`)
      out.set(ops.subarray(at, at + length), written)
      at += length
    }
    written += length
  }
  if (written !== size) throw new Error(`delta gives ${written} bytes, the block has ${size}`)
  return out
}

/** Base offset + 1 of an aligned window, by hash bucket (0: none); later windows win collisions. */
function indexBase(base: Uint8Array): Int32Array {
  const windows = Math.floor(base.length / WINDOW)
  const table = new Int32Array(Math.max(1024, 2 ** Math.ceil(Math.log2(windows * 2 + 1))))
  const shift = 32 - Math.log2(table.length)
  for (let w = 0; w < windows; w++) table[Math.imul(windowHash(base, w * WINDOW), 0x9e3779b1) >>> shift] = w * WINDOW + 1
  return table
}

function windowHash(bytes: Uint8Array, at: number): number {
  let h = 0
  for (let i = at; i < at + WINDOW; i++) h = (Math.imul(h, MULTIPLIER) + bytes[i]!) | 0
  return h
}

function sameWindow(base: Uint8Array, from: number, target: Uint8Array, at: number): boolean {
  if (from + WINDOW > base.length) return false
  for (let i = 0; i < WINDOW; i++) if (base[from + i] !== target[at + i]) return false
  return true
}

/** The stored form being written, into one buffer of at most `limit` bytes. */
class DeltaWriter {
  private readonly buffer: Uint8Array
  length = 0

  constructor(readonly limit: number) {
    this.buffer = new Uint8Array(limit)
  }

  insert(source: Uint8Array, start: number, end: number): boolean {
    if (end === start) return true
    return this.varint((end - start) * 2) && this.bytes(source.subarray(start, end), false)
  }

  copy(offset: number, length: number): boolean {
    return this.varint(length * 2 + 1) && this.varint(offset)
  }

  /** Append raw bytes (`prefixed`: after their length as a varint). False if past the limit. */
  bytes(bytes: Uint8Array, prefixed: boolean): boolean {
    if (prefixed && !this.varint(bytes.length)) return false
    if (this.length + bytes.length > this.limit) return false
    this.buffer.set(bytes, this.length)
    this.length += bytes.length
    return true
  }

  result(): Uint8Array {
    return this.buffer.slice(0, this.length)
  }

  private varint(value: number): boolean {
    if (this.length + varint.encodingLength(value) > this.limit) return false
    varint.encodeTo(value, this.buffer, this.length)
    this.length += varint.encodingLength(value)
    return true
  }
}
