import { cidFromBytes, DAG_CBOR, RAW, type CID } from '../codec/cid.js'
import type { EntryKind, TreeEntry } from './tree.js'

/**
 * A tree node as its block's bytes and where each item lies in them, for the diff: a diff of
 * two large trees reads ~100 differing leaves per side and finds nearly all of their entries
 * equal. Decoding them built a CID (five objects and typed-array views) and a map for every
 * entry, ~20 MB of garbage for 100 changes in a million entries; here an entry costs nothing
 * until it is reported, and two entries are compared as bytes (dag-cbor is deterministic: the
 * same entry is always the same bytes).
 *
 * Only the exact shape the tree writes is read this way (see {@link scanTreeNode}); any other
 * block, valid or not, is left to the decoder and checkTreeNode, which decide its value or its
 * error as before. What a RawNode gives (keys, CIDs, entries) equals what decoding gives.
 */
export class RawNode {
  readonly raw = true
  private latin1: Buffer | undefined
  constructor(
    readonly level: number,
    readonly bytes: Uint8Array,
    /** Items in the node (entries of a leaf, children of an internal node). */
    readonly length: number,
    /** {@link FIELDS} offsets per item (see ITEM_START…). */
    readonly at: Int32Array,
    /** Per item: a leaf entry's size, an internal child's count. */
    readonly numbers: Float64Array,
  ) {}

  /** The item's key (path, or greatest path under the child). */
  key(i: number): string {
    return this.text(this.at[i * FIELDS + KEY_START]!, this.at[i * FIELDS + KEY_END]!)
  }

  /** The CID of a leaf entry or of a child. */
  cid(i: number): CID {
    return cidFromBytes(this.bytes.slice(this.at[i * FIELDS + CID_START]!, this.at[i * FIELDS + CID_END]!))
  }

  /** The bytes of a leaf entry's or a child's CID: a view into the node, no CID made. */
  cidBytes(i: number): Uint8Array {
    const start = this.at[i * FIELDS + CID_START]!
    // A plain view (a Buffer's subarray costs more: the store gives Buffers).
    return new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + start, this.at[i * FIELDS + CID_END]! - start)
  }

  /** A leaf entry's kind. */
  kind(i: number): EntryKind {
    const o = i * FIELDS
    return this.text(this.at[o + KIND_START]!, this.at[o + KIND_END]!) as EntryKind
  }

  /** A leaf's entry, as decoding the node gives it. */
  entry(i: number): TreeEntry {
    const o = i * FIELDS
    return { cid: this.cid(i), kind: this.text(this.at[o + KIND_START]!, this.at[o + KIND_END]!) as EntryKind, size: this.numbers[i]! }
  }

  /** Decoded text, as the dag-cbor decoder makes it (ASCII through latin1, the rest through TextDecoder). */
  private text(start: number, end: number): string {
    const b = this.bytes
    // The kinds first: they repeat on every entry (one string, not one per entry).
    if (end - start === 6 && b[start] === 0x72 && spells(b, start, 'record')) return 'record'
    if (end - start === 4 && b[start] === 0x66 && spells(b, start, 'file')) return 'file'
    for (let i = start; i < end; i++) if (b[i]! & 0x80) return textDecoder.decode(b.subarray(start, end))
    this.latin1 ??= Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    return (this.latin1 as Buffer & { latin1Slice(start: number, end: number): string }).latin1Slice(start, end)
  }
}

/** Whether the bytes at `start` spell the ASCII `word`. */
function spells(b: Uint8Array, start: number, word: string): boolean {
  for (let i = 0; i < word.length; i++) if (b[start + i] !== word.charCodeAt(i)) return false
  return true
}

/** Whether item `i` of `x` and item `j` of `y` are the same bytes: same key and same value. */
export function sameItemBytes(x: RawNode, i: number, y: RawNode, j: number): boolean {
  return sameRange(x, i, ITEM_START, ITEM_END, y, j)
}

/** Whether the values of two leaf entries (everything after the path) are the same bytes. */
export function sameValueBytes(x: RawNode, i: number, y: RawNode, j: number): boolean {
  return sameRange(x, i, KEY_END, ITEM_END, y, j)
}

/** Whether two items' CIDs are the same bytes. */
export function sameCidBytes(x: RawNode, i: number, y: RawNode, j: number): boolean {
  return sameRange(x, i, CID_START, CID_END, y, j)
}

function sameRange(x: RawNode, i: number, from: number, to: number, y: RawNode, j: number): boolean {
  const xs = x.at[i * FIELDS + from]!
  const n = x.at[i * FIELDS + to]! - xs
  const ys = y.at[j * FIELDS + from]!
  if (y.at[j * FIELDS + to]! - ys !== n) return false
  const a = x.bytes
  const b = y.bytes
  // Digests differ in their last bytes as much as anywhere; paths that differ share a prefix.
  if (n > 0 && a[xs + n - 1] !== b[ys + n - 1]) return false
  for (let k = 0; k < n; k++) if (a[xs + k] !== b[ys + k]) return false
  return true
}

const FIELDS = 8
const ITEM_START = 0
const KEY_START = 1
const KEY_END = 2 // a leaf entry's value starts here
const CID_START = 3
const CID_END = 4
const KIND_START = 5
const KIND_END = 6
const ITEM_END = 7

const textDecoder = new TextDecoder()

const bytesOf = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'))
const concat = (...parts: (number[] | Uint8Array)[]): Uint8Array => Uint8Array.from(parts.flatMap((x) => [...x]))
/** a3 "kind" "tree" "level": the start of every tree node. */
const HEAD = concat([0xa3, 0x64], bytesOf('kind'), [0x64], bytesOf('tree'), [0x65], bytesOf('level'))
const ENTRIES = concat([0x67], bytesOf('entries'))
const CHILDREN = concat([0x68], bytesOf('children'))
/** An entry's value up to its link: {"cid": */
const ENTRY_CID = concat([0xa3, 0x63], bytesOf('cid'))
/** Tag 42, a 37-byte string, 0x00, CID version 1. */
const LINK = Uint8Array.from([0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01])
const KIND = concat([0x64], bytesOf('kind'))
const SIZE = concat([0x64], bytesOf('size'))

/**
 * The node in `bytes` (already verified against its CID) if it has exactly the shape the tree
 * writes: `{kind: "tree", level, entries: [[path, {cid, kind, size}]…]}` or `{kind: "tree",
 * level, children: [[path, cid, count]…]}`, in dag-cbor's strict form, with CIDv1 sha2-256
 * dag-cbor or raw links. Undefined for anything else (decode that block instead): then the
 * decoder and the node check give the value or the error, exactly as for any block.
 *
 * One function with local state and small helpers V8 inlines: a cold diff runs it ~350 times,
 * much of that before it is optimised. Every read checks that its bytes are there first.
 */
export function scanTreeNode(bytes: Uint8Array): RawNode | undefined {
  const d = bytes
  const end = d.length
  let p = match(d, 0, HEAD)
  if (p < 0 || p >= end || d[p]! >>> 5 !== 0) return undefined
  const level = argumentAt(d, p)
  if (level < 0 || level > 64) return undefined
  p = match(d, p + argumentLength(d, p), level === 0 ? ENTRIES : CHILDREN)
  if (p < 0 || p >= end || d[p]! >>> 5 !== 4) return undefined
  const n = argumentAt(d, p)
  if (n < 0) return undefined
  p += argumentLength(d, p)
  if (n > end - p || (level > 0 && n === 0)) return undefined
  const at = new Int32Array(n * FIELDS)
  const numbers = new Float64Array(n)
  const head = level === 0 ? 0x82 : 0x83
  for (let i = 0, o = 0; i < n; i++, o += FIELDS) {
    at[o + ITEM_START] = p
    if (p >= end || d[p] !== head) return undefined
    p++
    // The key: a text string.
    if (p >= end || d[p]! >>> 5 !== 3) return undefined
    let k = argumentAt(d, p)
    if (k < 0) return undefined
    p += argumentLength(d, p)
    if (k > end - p) return undefined
    at[o + KEY_START] = p
    p += k
    at[o + KEY_END] = p
    // The link: tag 42, 0x00, CIDv1, dag-cbor or raw, sha2-256, 32 bytes.
    if (level === 0) p = match(d, p, ENTRY_CID)
    if (p >= 0) p = match(d, p, LINK)
    if (p < 0 || 35 > end - p) return undefined
    if ((d[p] !== DAG_CBOR && d[p] !== RAW) || d[p + 1] !== 0x12 || d[p + 2] !== 0x20) return undefined
    at[o + CID_START] = p - 1
    p += 35
    at[o + CID_END] = p
    if (level === 0) {
      // "kind": a text string, then "size".
      p = match(d, p, KIND)
      if (p < 0 || p >= end || d[p]! >>> 5 !== 3) return undefined
      k = argumentAt(d, p)
      if (k < 0) return undefined
      p += argumentLength(d, p)
      if (k > end - p) return undefined
      at[o + KIND_START] = p
      p += k
      at[o + KIND_END] = p
      p = match(d, p, SIZE)
      if (p < 0) return undefined
    }
    // The size or count: an unsigned integer.
    if (p >= end || d[p]! >>> 5 !== 0) return undefined
    const v = argumentAt(d, p)
    if (v < 0) return undefined
    numbers[i] = v
    p += argumentLength(d, p)
    at[o + ITEM_END] = p
  }
  return p === end ? new RawNode(level, bytes, n, at, numbers) : undefined
}

/** Where `bs` ends if the bytes at `p` are `bs`, else -1. */
function match(d: Uint8Array, p: number, bs: Uint8Array): number {
  if (p < 0 || bs.length > d.length - p) return -1
  for (let i = 0; i < bs.length; i++) if (d[p + i] !== bs[i]) return -1
  return p + bs.length
}

/** Bytes taken by the head of the item at `p` (its first byte and its argument). */
function argumentLength(d: Uint8Array, p: number): number {
  const minor = d[p]! & 31
  return minor < 24 ? 1 : minor === 24 ? 2 : minor === 25 ? 3 : minor === 26 ? 5 : 9
}

/** The argument of the item at `p` (a value or length), -1 if past the end or not in the shortest form (the decoder's rules, dag-cbor-decode.ts). */
function argumentAt(d: Uint8Array, p: number): number {
  const end = d.length
  if (p >= end) return -1
  const minor = d[p]! & 31
  if (minor < 24) return minor
  let n: number
  switch (minor) {
    case 24:
      if (p + 2 > end) return -1
      n = d[p + 1]!
      return n < 24 ? -1 : n
    case 25:
      if (p + 3 > end) return -1
      n = (d[p + 1]! << 8) | d[p + 2]!
      return n < 0x100 ? -1 : n
    case 26:
      if (p + 5 > end) return -1
      n = d[p + 1]! * 0x1000000 + ((d[p + 2]! << 16) | (d[p + 3]! << 8) | d[p + 4]!)
      return n < 0x10000 ? -1 : n
    case 27: {
      if (p + 9 > end) return -1
      const hi = d[p + 1]! * 0x1000000 + ((d[p + 2]! << 16) | (d[p + 3]! << 8) | d[p + 4]!)
      const lo = d[p + 5]! * 0x1000000 + ((d[p + 6]! << 16) | (d[p + 7]! << 8) | d[p + 8]!)
      // Below 2^32 is not the shortest form; from about 2^53 on, the decoder makes BigInts.
      return hi === 0 || hi >= 0x1fffff ? -1 : hi * 0x100000000 + lo
    }
    default:
      return -1
  }
}
