import { dagCborLibrary } from './dag-cbor-library.js'
import { CID } from 'multiformats/cid'
import { copyBytes } from './slab.js'

/**
 * A faster encoder for dag-cbor nodes, giving exactly the bytes `@ipld/dag-cbor`'s `encode`
 * gives (the bytes name the node, so they must not differ by a bit).
 *
 * Why: committing a record encodes it to compute its CID, and cborg (under @ipld/dag-cbor)
 * builds a token per item and sorts map entries through token comparisons: ~19 µs and a lot of
 * garbage for a 300-byte record, most of the cost of a 100k-record commit. This writes the
 * bytes straight into a reused buffer.
 *
 * It handles what records and nodes are made of: null, booleans, safe integers (shortest form),
 * other finite numbers (float64, as dag-cbor always writes them), strings without unpaired
 * surrogates, Uint8Arrays, CIDs (tag 42), arrays and plain objects whose keys are ASCII (sorted
 * as dag-cbor sorts them: shorter first, then bytewise). Anything else, valid or not (undefined,
 * NaN, Maps, class instances, non-ASCII keys, objects that look like CIDs, deep nesting…), is
 * encoded by @ipld/dag-cbor itself, so its bytes or its error are exactly the library's.
 *
 * @example
 *   const { bytes, linked } = encodeDagCbor(record) // bytes equal dagCbor.encode(record)
 */
export function encodeDagCbor(value: unknown): { bytes: Uint8Array; linked: boolean } {
  if (busy) return { bytes: dagCborLibrary().encode(value), linked: true }
  busy = true
  at = 0
  linked = false
  try {
    write(value, 0)
    // A copy in a slab when small (see slab.ts): most nodes and records are a few hundred bytes.
    return { bytes: copyBytes(out, 0, at), linked }
  } catch (e) {
    if (e !== UNSUPPORTED) throw e
    return { bytes: dagCborLibrary().encode(value), linked: true }
  } finally {
    busy = false
    // Do not keep a buffer grown for one huge node.
    if (out.length > KEEP_BYTES) out = new Uint8Array(INITIAL_BYTES)
  }
}

const UNSUPPORTED = new Error('not handled by the fast dag-cbor encoder')
const INITIAL_BYTES = 64 * 1024
const KEEP_BYTES = 1024 * 1024
/** Deeper than any record; also where a cycle is handed to the library (which reports it). */
const MAX_DEPTH = 256
const textEncoder = new TextEncoder()

// The node being written. Module state: encoding is synchronous, and `busy` guards against a
// getter that encodes while it is read.
let out = new Uint8Array(INITIAL_BYTES)
let at = 0
let linked = false
let busy = false

function room(n: number): void {
  if (at + n <= out.length) return
  let size = out.length * 2
  while (size < at + n) size *= 2
  const bigger = new Uint8Array(size)
  bigger.set(out.subarray(0, at))
  out = bigger
}

/** An item's head: major type and argument, in the shortest form. */
function head(major: number, n: number): void {
  room(9)
  const m = major << 5
  if (n < 24) out[at++] = m | n
  else if (n < 0x100) {
    out[at++] = m | 24
    out[at++] = n
  } else if (n < 0x10000) {
    out[at++] = m | 25
    out[at++] = n >>> 8
    out[at++] = n & 0xff
  } else if (n < 0x100000000) {
    out[at++] = m | 26
    out[at++] = n >>> 24
    out[at++] = (n >>> 16) & 0xff
    out[at++] = (n >>> 8) & 0xff
    out[at++] = n & 0xff
  } else {
    const hi = Math.floor(n / 0x100000000)
    const lo = n >>> 0
    out[at++] = m | 27
    out[at++] = hi >>> 24
    out[at++] = (hi >>> 16) & 0xff
    out[at++] = (hi >>> 8) & 0xff
    out[at++] = hi & 0xff
    out[at++] = lo >>> 24
    out[at++] = (lo >>> 16) & 0xff
    out[at++] = (lo >>> 8) & 0xff
    out[at++] = lo & 0xff
  }
}

const f64 = new Float64Array(1)
const f64Bytes = new Uint8Array(f64.buffer)
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

function write(value: unknown, depth: number): void {
  if (value === null) {
    room(1)
    out[at++] = 0xf6
    return
  }
  switch (typeof value) {
    case 'boolean':
      room(1)
      out[at++] = value ? 0xf5 : 0xf4
      return
    case 'number':
      if (Number.isSafeInteger(value)) {
        // -0 is an integer here, written as 0 (as the library does).
        if (value >= 0) head(0, value)
        else head(1, -value - 1)
        return
      }
      if (!Number.isFinite(value)) throw UNSUPPORTED
      room(9)
      out[at++] = 0xfb
      f64[0] = value
      if (littleEndian) for (let i = 7; i >= 0; i--) out[at++] = f64Bytes[i]!
      else for (let i = 0; i < 8; i++) out[at++] = f64Bytes[i]!
      return
    case 'string':
      text(value)
      return
    case 'object':
      break
    default:
      throw UNSUPPORTED
  }
  if (depth >= MAX_DEPTH) throw UNSUPPORTED
  if (Array.isArray(value)) {
    head(4, value.length)
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (item === undefined) throw UNSUPPORTED // a hole or undefined: the library's error
      write(item, depth + 1)
    }
    return
  }
  if (value instanceof Uint8Array) {
    head(2, value.length)
    room(value.length)
    out.set(value, at)
    at += value.length
    return
  }
  const cid = (value as { '/'?: unknown })['/'] !== undefined ? CID.asCID(value) : null
  if (cid) {
    // Tag 42, then the CID's bytes after a 0x00 (the multibase prefix for binary).
    linked = true
    const bytes = cid.bytes
    room(2)
    out[at++] = 0xd8
    out[at++] = 42
    head(2, bytes.length + 1)
    room(bytes.length + 1)
    out[at++] = 0
    out.set(bytes, at)
    at += bytes.length
    return
  }
  if ((value as object).constructor !== Object) throw UNSUPPORTED
  const map = value as Record<string, unknown>
  // An object with '/' (or asCID) may be taken for a CID by the library: leave it to it.
  if ('/' in map || 'asCID' in map) throw UNSUPPORTED
  const names = Object.keys(map)
  if (names.length > MAX_SHAPE_KEYS) return writeLargeMap(map, names, depth)
  const shape = shapeOf(names)
  const keys = shape.order
  head(5, keys.length)
  for (let i = 0; i < keys.length; i++) {
    const v = map[keys[i]!]
    if (v === undefined) throw UNSUPPORTED
    const k = shape.encoded[i]!
    room(k.length)
    for (let j = 0; j < k.length; j++) out[at++] = k[j]!
    write(v, depth + 1)
  }
}

/** A map with more keys than a shape keeps: sorted and written as it comes, nothing cached. */
function writeLargeMap(map: Record<string, unknown>, keys: string[], depth: number): void {
  for (const k of keys) if (!isAscii(k)) throw UNSUPPORTED
  if (!sorted(keys)) keys.sort(byLengthThenBytes)
  head(5, keys.length)
  for (const k of keys) {
    const v = map[k]
    if (v === undefined) throw UNSUPPORTED
    text(k)
    write(v, depth + 1)
  }
}

/** The keys of a map in dag-cbor's order, each encoded (head and bytes). */
interface Shape {
  keys: string[]
  order: string[]
  encoded: Uint8Array[]
}

// Shapes of maps seen before, by a hash of their keys as Object.keys lists them. Records of one
// kind share a few shapes, and their fields are seldom in dag-cbor's order: this skips sorting
// the keys and encoding each of them for every record.
const SHAPE_SLOTS = 512
/** Maps with more keys are not cached (a shape holds every key, encoded): the cache stays small. */
const MAX_SHAPE_KEYS = 64
const shapes: Array<Shape | undefined> = new Array<Shape | undefined>(SHAPE_SLOTS).fill(undefined)

function shapeOf(keys: string[]): Shape {
  let h = keys.length
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!
    h = Math.imul(h ^ k.length, 0x01000193) ^ (k.length > 0 ? k.charCodeAt(0) * 31 + k.charCodeAt(k.length - 1) : 0)
  }
  const slot = (h ^ (h >>> 13)) & (SHAPE_SLOTS - 1)
  const cached = shapes[slot]
  if (cached !== undefined && cached.keys.length === keys.length) {
    let i = 0
    while (i < keys.length && cached.keys[i] === keys[i]) i++
    if (i === keys.length) return cached
  }
  for (const k of keys) if (!isAscii(k)) throw UNSUPPORTED
  const order = sorted(keys) ? keys : [...keys].sort(byLengthThenBytes)
  const encoded = order.map((k) => {
    const start = at
    text(k)
    const bytes = out.slice(start, at)
    at = start
    return bytes
  })
  const shape = { keys, order, encoded }
  shapes[slot] = shape
  return shape
}

/** Whether ASCII keys are in dag-cbor's order already (then no sort is needed). */
function sorted(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (byLengthThenBytes(keys[i - 1]!, keys[i]!) >= 0 || !isAscii(keys[i]!)) return false
  return keys.length === 0 || isAscii(keys[0]!)
}

/** dag-cbor's key order for ASCII keys: shorter first, then bytewise (which is code-unit order here). */
const byLengthThenBytes = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false
  return true
}

function text(s: string): void {
  const n = s.length
  // Written as ASCII in one pass (most strings are); the first other character rewinds.
  const start = at
  head(3, n)
  room(n)
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c > 0x7f) {
      at = start
      return utf8(s)
    }
    out[at++] = c
  }
}

function utf8(s: string): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    // Unpaired surrogates: the library and TextEncoder agree on U+FFFD, but leave them to it.
    if (c >= 0xd800 && c <= 0xdfff && !pairedAt(s, i)) throw UNSUPPORTED
    if (c >= 0xd800 && c <= 0xdbff) i++
  }
  const bytes = textEncoder.encode(s)
  head(3, bytes.length)
  room(bytes.length)
  out.set(bytes, at)
  at += bytes.length
}

function pairedAt(s: string, i: number): boolean {
  const c = s.charCodeAt(i)
  if (c >= 0xdc00) return false // a low surrogate not preceded by a high one (pairs are skipped whole)
  const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0
  return d >= 0xdc00 && d <= 0xdfff
}
