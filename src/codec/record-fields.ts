import { cidFromBytes } from './cid.js'

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
  data = bytes
  pos = 0
  try {
    out.length = paths.count
    out.fill(undefined)
    if (data.length === 0 || data[0]! >>> 5 !== 5) return false
    pos = 1
    map(argument(data[0]! & 31), paths.root, out)
    return pos === data.length
  } catch {
    return false
  } finally {
    data = EMPTY
    view = undefined
    buffer = undefined
  }
}

/** Dotted paths compiled for {@link scanFields}: a tree of map keys (as UTF-8 bytes). */
export interface FieldPaths {
  readonly root: PathNode
  /** Number of paths: the length of the values array. */
  readonly count: number
}

interface PathNode {
  /** Children by key, as ASCII bytes. */
  children: { key: Uint8Array; node: PathNode }[]
  /** Where the value at this node goes in the values array, if a path ends here. */
  index: number
}

/**
 * Compile dotted paths (`metrics.loss`) for {@link scanFields}; undefined if one cannot be
 * scanned for (an empty or non-ASCII segment), or if one path ends where another goes on
 * (`metrics` and `metrics.loss`: the first needs the map built).
 */
export function fieldPaths(paths: readonly string[]): FieldPaths | undefined {
  const root: PathNode = { children: [], index: -1 }
  for (let i = 0; i < paths.length; i++) {
    let node = root
    for (const segment of paths[i]!.split('.')) {
      if (segment === '' || !/^[\x20-\x7e]+$/.test(segment)) return undefined
      if (node.index >= 0) return undefined
      let child = node.children.find((c) => Buffer.from(c.key).toString('latin1') === segment)?.node
      if (!child) {
        child = { children: [], index: -1 }
        node.children.push({ key: new Uint8Array(Buffer.from(segment, 'latin1')), node: child })
      }
      node = child
    }
    if (node.index >= 0 || node.children.length > 0) return undefined
    node.index = i
  }
  return { root, count: paths.length }
}

const EMPTY = new Uint8Array(0)
const UNSUPPORTED = new Error('not read by the field scan')
const textDecoder = new TextDecoder()

// The block being scanned. Module state, as in dag-cbor-decode.ts: the scan is synchronous and
// never re-entered, and this keeps it free of allocation.
let data: Uint8Array = EMPTY
let pos = 0
let view: DataView | undefined
let buffer: Buffer | undefined

/** A map of `n` entries whose wanted keys are `node`'s children (pos: at its first key). */
function map(n: number, node: PathNode, out: unknown[]): void {
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
    const child = find(children, key, length)
    if (child === undefined) skip()
    else if (child.index >= 0) out[child.index] = scalar()
    else {
      // The path goes on: only through a map.
      if (pos >= data.length || data[pos]! >>> 5 !== 5) throw UNSUPPORTED
      const initial = data[pos++]!
      map(argument(initial & 31), child, out)
    }
  }
}

function find(children: PathNode['children'], at: number, length: number): PathNode | undefined {
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
function scalar(): unknown {
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

/** Move past one item, checking what the decoder checks (as its `skip` does), without building it. */
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

/** The argument of an item (a value, length or tag), in its shortest form as strict decoding wants. */
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

/** UTF-8 text as the decoder reads it: ASCII through Buffer's latin1 reader, the rest through TextDecoder. */
function text(n: number): string {
  const start = need(n)
  const end = start + n
  for (let i = start; i < end; i++) if (data[i]! & 0x80) return textDecoder.decode(data.subarray(start, end))
  buffer ??= Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return (buffer as Buffer & { latin1Slice(start: number, end: number): string }).latin1Slice(start, end)
}
