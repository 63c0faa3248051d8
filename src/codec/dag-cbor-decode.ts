import { dagCborLibrary } from './dag-cbor-library.js'
import { cidFromBytes } from './cid.js'
import type { FieldPaths, PathNode } from './record-fields.js'

/**
 * A faster decoder for dag-cbor blocks, giving what `@ipld/dag-cbor`'s `decode` gives.
 *
 * Why: a query or a commit reads and decodes every record it touches, and cborg (under
 * @ipld/dag-cbor) first turns the bytes into a Token object per item and then builds the
 * value from the tokens: ~14 µs and a few hundred bytes of garbage for a 300-byte record,
 * which made decoding (and collecting its garbage) most of the time of a 100k-record query.
 * This decoder builds the value straight from the bytes.
 *
 * It handles the items pedigree's nodes and records are made of, under the same rules as
 * @ipld/dag-cbor with its decode options (strict: integers and lengths in their shortest
 * form; definite lengths only; string map keys without repeats; tag 42 for CIDs only;
 * `undefined` read as null; no NaN or Infinity). Anything else, valid or not (float16 and
 * float32, big integers, `__proto__` keys, malformed bytes…), is handed to @ipld/dag-cbor
 * itself, so its value or its error is exactly the library's. Strings decode as cborg
 * decodes them (TextDecoder, so invalid UTF-8 becomes U+FFFD as it does there); byte strings
 * get their own copy of the bytes, as they do there, and CIDs views of one copy of the block.
 *
 * @example
 *   const value = decodeDagCbor(bytes) // deepEqual to dagCbor.decode(bytes)
 */
export function decodeDagCbor<T = unknown>(bytes: Uint8Array): T {
  // A plain view, so that slice() copies (Buffer's slice is a view); the Buffer itself, when
  // given one, serves text() as is.
  data = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  buffer = Buffer.isBuffer(bytes) ? bytes : undefined
  pos = 0
  try {
    const value = item()
    if (pos !== data.length) throw UNSUPPORTED
    return value as T
  } catch {
    owned = undefined
    // Whatever stopped the fast path (an item it leaves alone, or bad bytes), the library decides.
    return dagCborLibrary().decode<T>(bytes)
  } finally {
    data = EMPTY
    view = undefined
    buffer = undefined
    owned = undefined
  }
}

/**
 * The top-level map of a dag-cbor block with only the fields named in `fields` decoded: what
 * a query filter looks at, so that a record the filter rejects is never built whole. The
 * other fields are skipped, checked by the same rules as {@link decodeDagCbor} applies.
 * Undefined when the block is not a map or the fast path cannot be sure of the answer (keys
 * out of order, say): decode it whole then. The fields kept are exactly those of the whole
 * decoded map, with the same values.
 *
 * @example
 *   const probe = decodeDagCborFields(bytes, new Set(['metrics'])) // { metrics: { loss: 0.1, … } }
 */
export function decodeDagCborFields(bytes: Uint8Array, fields: ReadonlySet<string>): Record<string, unknown> | undefined {
  data = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  buffer = Buffer.isBuffer(bytes) ? bytes : undefined
  pos = 0
  try {
    if (data.length === 0 || data[0]! >>> 5 !== 5) return undefined
    const n = argument(data[pos++]! & 31)
    if (n > data.length - pos) return undefined
    const map: Record<string, unknown> = {}
    let last = ''
    for (let i = 0; i < n; i++) {
      if (pos >= data.length || data[pos]! >>> 5 !== 3) return undefined
      const k = mapKey(argument(data[pos++]! & 31))
      // A repeat among skipped keys would go unseen: keys must be in increasing order here.
      if (k === '__proto__' || (i > 0 && !(last.length < k.length || (last.length === k.length && last < k)))) return undefined
      if (fields.has(k)) map[k] = item()
      else skip()
      last = k
    }
    return pos === data.length ? map : undefined
  } catch {
    return undefined
  } finally {
    data = EMPTY
    view = undefined
    buffer = undefined
    owned = undefined
  }
}

/**
 * Scalars at a few dotted paths of a dag-cbor record, read straight from its bytes without
 * building the record: what a query filter such as `{"metrics.loss": {"$lt": 0.05}}` needs to
 * reject a record. A 100k-record query rejects most records, and building each one (or even
 * its filtered fields, as `decodeDagCborFields` does) was most of the garbage it made.
 *
 * The whole block is walked and checked by the rules `decodeDagCbor` applies (strict dag-cbor:
 * shortest-form integers and lengths, definite lengths, map keys in order and without repeats,
 * tag 42 for CIDs only, finite floats), so that a block this scan accepts decodes, and a block
 * it refuses is left to the whole decoder to decode or to reject. It refuses as well whatever
 * it does not read alone: a path that meets a list, bytes, a link or a non-map before its end;
 * a map at the end of a path; keys that are not ASCII in a map it reads; float16/32 and big
 * integers (the library decodes those).
 *
 * @example
 *   const paths = fieldPaths(['metrics.loss', 'status'])
 *   const values: unknown[] = []
 *   if (scanFields(bytes, paths, values)) console.log(values) // [0.031, 'ok'] (undefined where absent)
 */
export function scanFields(bytes: Uint8Array, paths: FieldPaths, out: unknown[]): boolean {
  data = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  buffer = Buffer.isBuffer(bytes) ? bytes : undefined
  pos = 0
  try {
    out.length = paths.count
    out.fill(undefined)
    if (data.length === 0 || data[0]! >>> 5 !== 5) return false
    pos = 1
    scanMap(argument(data[0]! & 31), paths.root, out)
    return pos === data.length
  } catch {
    return false
  } finally {
    data = EMPTY
    view = undefined
    buffer = undefined
    owned = undefined
  }
}

/** A map of `n` entries whose wanted keys are `node`'s children (pos: at its first key). */
function scanMap(n: number, node: PathNode, out: unknown[]): void {
  if (n > data.length - pos) throw UNSUPPORTED
  const children = node.children
  let last = -1
  let lastLength = 0
  for (let i = 0; i < n; i++) {
    if (pos >= data.length || data[pos]! >>> 5 !== 3) throw UNSUPPORTED
    const length = argument(data[pos++]! & 31)
    const key = need(length)
    // ASCII only here: the order of other keys is left to the decoder that compares them.
    for (let j = key; j < key + length; j++) if (data[j]! & 0x80) throw UNSUPPORTED
    if ((last >= 0 && !keyAfter(last, lastLength, key, length)) || isProto(key, length)) throw UNSUPPORTED
    last = key
    lastLength = length
    const child = findChild(children, key, length)
    if (child === undefined) skip()
    else if (child.index >= 0) out[child.index] = scanScalar()
    else {
      // The path goes on: only through a map.
      if (pos >= data.length || data[pos]! >>> 5 !== 5) throw UNSUPPORTED
      const initial = data[pos++]!
      scanMap(argument(initial & 31), child, out)
    }
  }
}

function findChild(children: PathNode['children'], at: number, length: number): PathNode | undefined {
  for (let c = 0; c < children.length; c++) {
    const k = children[c]!.key
    if (k.length !== length) continue
    let i = 0
    while (i < length && k[i] === data[at + i]) i++
    if (i === length) return children[c]!.node
  }
  return undefined
}

/** A number, string, boolean or null, as `decodeDagCbor` gives it; anything else is refused. */
function scanScalar(): unknown {
  if (pos >= data.length) throw UNSUPPORTED
  const initial = data[pos++]!
  const minor = initial & 31
  switch (initial >>> 5) {
    case 0:
      return argument(minor)
    case 1:
      return -1 - argument(minor)
    case 3:
      return text(argument(minor))
    case 7:
      switch (minor) {
        case 20:
          return false
        case 21:
          return true
        case 22:
        case 23: // undefined, which the decoders read as null
          return null
        case 27:
          return float64()
      }
  }
  throw UNSUPPORTED
}

const EMPTY = new Uint8Array(0)
const UNSUPPORTED = new Error('not handled by the fast dag-cbor decoder')
const textDecoder = new TextDecoder()

// The item being decoded. Module state rather than an object per call: decoding is synchronous
// and never re-entered (CID.decode does not call back), and this keeps the hot path allocation-free.
let data: Uint8Array = EMPTY
let pos = 0
let view: DataView | undefined
let buffer: Buffer | undefined
let owned: Uint8Array | undefined

function item(): unknown {
  if (pos >= data.length) throw UNSUPPORTED
  const initial = data[pos++]!
  const minor = initial & 31
  switch (initial >>> 5) {
    case 0:
      return argument(minor)
    case 1:
      return -1 - argument(minor)
    case 2: {
      const n = argument(minor)
      const start = need(n)
      return data.slice(start, start + n)
    }
    case 3:
      return text(argument(minor))
    case 4: {
      const n = argument(minor)
      // Every item takes at least a byte: a longer count is malformed (and must not allocate).
      if (n > data.length - pos) throw UNSUPPORTED
      const list = new Array<unknown>(n)
      for (let i = 0; i < n; i++) list[i] = item()
      return list
    }
    case 5: {
      const n = argument(minor)
      if (n > data.length - pos) throw UNSUPPORTED
      const map: Record<string, unknown> = {}
      let last = ''
      for (let i = 0; i < n; i++) {
        if (pos >= data.length || data[pos]! >>> 5 !== 3) throw UNSUPPORTED
        const k = mapKey(argument(data[pos++]! & 31))
        if (k === '__proto__') throw UNSUPPORTED
        // Keys in increasing order (shorter first, as dag-cbor writes them) cannot repeat;
        // only others need the lookup.
        if (i > 0 && !(last.length < k.length || (last.length === k.length && last < k)) && Object.hasOwn(map, k)) throw UNSUPPORTED
        map[k] = item()
        last = k
      }
      return map
    }
    case 6: {
      if (argument(minor) !== 42 || pos >= data.length || data[pos]! >>> 5 !== 2) throw UNSUPPORTED
      const n = argument(data[pos++]! & 31)
      const start = need(n)
      if (n === 0 || data[start] !== 0) throw UNSUPPORTED
      // The CIDs of a block share one copy of it: a leaf of 64 entries then allocates one
      // buffer instead of 64 (each a backing store the garbage collector must sweep).
      owned ??= data.slice()
      return cidFromBytes(owned.subarray(start + 1, start + n))
    }
    default:
      switch (minor) {
        case 20:
          return false
        case 21:
          return true
        case 22:
        case 23: // undefined, which @ipld/dag-cbor reads as null
          return null
        case 27:
          return float64()
        default:
          throw UNSUPPORTED
      }
  }
}

/** Move past one item, checking what {@link item} checks, without building it. */
function skip(): void {
  if (pos >= data.length) throw UNSUPPORTED
  const initial = data[pos++]!
  const minor = initial & 31
  switch (initial >>> 5) {
    case 0:
    case 1:
      argument(minor)
      return
    case 2:
    case 3:
      need(argument(minor))
      return
    case 4: {
      const n = argument(minor)
      if (n > data.length - pos) throw UNSUPPORTED
      for (let i = 0; i < n; i++) skip()
      return
    }
    case 5: {
      const n = argument(minor)
      if (n > data.length - pos) throw UNSUPPORTED
      let last = -1
      let lastLength = 0
      for (let i = 0; i < n; i++) {
        if (pos >= data.length || data[pos]! >>> 5 !== 3) throw UNSUPPORTED
        const length = argument(data[pos++]! & 31)
        const key = need(length)
        // Increasing keys (shorter first, then bytewise) cannot repeat; anything else, and a
        // `__proto__` key, is left to the whole decoder.
        if ((last >= 0 && !keyAfter(last, lastLength, key, length)) || isProto(key, length)) throw UNSUPPORTED
        last = key
        lastLength = length
        skip()
      }
      return
    }
    case 6: {
      if (argument(minor) !== 42 || pos >= data.length || data[pos]! >>> 5 !== 2) throw UNSUPPORTED
      const n = argument(data[pos++]! & 31)
      const start = need(n)
      if (n === 0 || data[start] !== 0) throw UNSUPPORTED
      cidFromBytes(data.subarray(start + 1, start + n)) // a link that does not parse makes the block invalid
      return
    }
    default:
      switch (minor) {
        case 20:
        case 21:
        case 22:
        case 23:
          return
        case 27:
          float64()
          return
        default:
          throw UNSUPPORTED
      }
  }
}

/** Whether the key at `b` (of `bLength` bytes) sorts after the one at `a`: shorter first, then bytewise. */
function keyAfter(a: number, aLength: number, b: number, bLength: number): boolean {
  if (aLength !== bLength) return aLength < bLength
  for (let i = 0; i < aLength; i++) if (data[a + i] !== data[b + i]) return data[a + i]! < data[b + i]!
  return false
}

const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f] // '__proto__'
function isProto(at: number, length: number): boolean {
  if (length !== PROTO.length) return false
  for (let i = 0; i < length; i++) if (data[at + i] !== PROTO[i]) return false
  return true
}

/** A finite float64 (dag-cbor has no NaN or Infinity). */
function float64(): number {
  const at = need(8)
  view ??= new DataView(data.buffer, data.byteOffset, data.byteLength)
  const f = view.getFloat64(at)
  if (!Number.isFinite(f)) throw UNSUPPORTED
  return f
}

/** The argument of an item (a value, length or tag), which strict decoding wants in its shortest form. */
function argument(minor: number): number {
  if (minor < 24) return minor
  let n: number
  switch (minor) {
    case 24:
      if (pos + 1 > data.length) throw UNSUPPORTED
      n = data[pos]!
      pos += 1
      if (n < 24) throw UNSUPPORTED
      return n
    case 25:
      if (pos + 2 > data.length) throw UNSUPPORTED
      n = (data[pos]! << 8) | data[pos + 1]!
      pos += 2
      if (n < 0x100) throw UNSUPPORTED
      return n
    case 26:
      if (pos + 4 > data.length) throw UNSUPPORTED
      n = data[pos]! * 0x1000000 + ((data[pos + 1]! << 16) | (data[pos + 2]! << 8) | data[pos + 3]!)
      pos += 4
      if (n < 0x10000) throw UNSUPPORTED
      return n
    case 27: {
      if (pos + 8 > data.length) throw UNSUPPORTED
      const hi = data[pos]! * 0x1000000 + ((data[pos + 1]! << 16) | (data[pos + 2]! << 8) | data[pos + 3]!)
      const lo = data[pos + 4]! * 0x1000000 + ((data[pos + 5]! << 16) | (data[pos + 6]! << 8) | data[pos + 7]!)
      pos += 8
      // Below 2^32 is not the shortest form; from about 2^53 on, the library makes BigInts.
      if (hi === 0 || hi >= 0x1fffff) throw UNSUPPORTED
      return hi * 0x100000000 + lo
    }
    default:
      throw UNSUPPORTED
  }
}

/** Where the next `n` bytes start, checked to be there; moves past them. */
function need(n: number): number {
  if (n > data.length - pos) throw UNSUPPORTED
  const start = pos
  pos += n
  return start
}

// Map keys seen before, by a hash of their bytes. Records and nodes repeat a few keys
// ('kind', 'cid', a record's field names) thousands of times: reusing the string skips building
// it and lets V8 find the property by an already internalized name.
const KEY_SLOTS = 1024
const MAX_CACHED_KEY = 24
const keyBytes: Array<Uint8Array | undefined> = new Array<Uint8Array | undefined>(KEY_SLOTS).fill(undefined)
const keyText: string[] = new Array<string>(KEY_SLOTS).fill('')

function mapKey(n: number): string {
  if (n > MAX_CACHED_KEY || n > data.length - pos) return text(n)
  const start = pos
  let h = n
  for (let i = start; i < start + n; i++) h = Math.imul(h ^ data[i]!, 0x01000193)
  const slot = (h ^ (h >>> 15)) & (KEY_SLOTS - 1)
  const cached = keyBytes[slot]
  if (cached !== undefined && cached.length === n) {
    let i = 0
    while (i < n && cached[i] === data[start + i]) i++
    if (i === n) {
      pos += n
      return keyText[slot]!
    }
  }
  const k = text(n)
  keyBytes[slot] = data.slice(start, start + n)
  keyText[slot] = k
  return k
}

/** UTF-8 text; ASCII (most of it) through Buffer's latin1 decoder, about twice as fast as a loop or TextDecoder here. */
function text(n: number): string {
  if (n > data.length - pos) throw UNSUPPORTED
  const start = pos
  const end = pos + n
  pos = end
  for (let i = start; i < end; i++) if (data[i]! & 0x80) return textDecoder.decode(data.subarray(start, end))
  buffer ??= Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  // Buffer's own latin1 reader: `toString('latin1', …)` reaches the same call after checking its
  // arguments in two more frames, which showed in profiles of tree walks (one path per entry).
  return (buffer as Buffer & { latin1Slice(start: number, end: number): string }).latin1Slice(start, end)
}
