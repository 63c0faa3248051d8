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

  /** A leaf's entry, as decoding the node gives it. */
  entry(i: number): TreeEntry {
    const o = i * FIELDS
    return { cid: this.cid(i), kind: this.text(this.at[o + KIND_START]!, this.at[o + KIND_END]!) as EntryKind, size: this.numbers[i]! }
  }

  /** Decoded text, as the dag-cbor decoder makes it (ASCII through latin1, the rest through TextDecoder). */
  private text(start: number, end: number): string {
    const b = this.bytes
    for (let i = start; i < end; i++) if (b[i]! & 0x80) return textDecoder.decode(b.subarray(start, end))
    if (end - start === 6 && b[start] === 0x72 && b[start + 1] === 0x65 && b[start + 2] === 0x63) return ascii(b, start, end, 'record')
    if (end - start === 4 && b[start] === 0x66) return ascii(b, start, end, 'file')
    this.latin1 ??= Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    return (this.latin1 as Buffer & { latin1Slice(start: number, end: number): string }).latin1Slice(start, end)
  }
}

/** `word` when the bytes spell it (kinds repeat on every entry: one string, not one per entry). */
function ascii(b: Uint8Array, start: number, end: number, word: string): string {
  for (let i = start; i < end; i++) if (b[i] !== word.charCodeAt(i - start)) return Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1')
  return word
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

// The block being scanned: module state, as in the decoder (synchronous, never re-entered).
let d: Uint8Array = new Uint8Array(0)
let p = 0
const NO = new Error('not the tree node shape')

const bytesOf = (s: string): number[] => [...Buffer.from(s, 'latin1')]
/** a3 "kind" "tree" "level": the start of every tree node. */
const HEAD = [0xa3, 0x64, ...bytesOf('kind'), 0x64, ...bytesOf('tree'), 0x65, ...bytesOf('level')]
const ENTRIES = [0x67, ...bytesOf('entries')]
const CHILDREN = [0x68, ...bytesOf('children')]
/** {"cid": tag 42, 37-byte string, 0x00, CIDv1 prefix up to the codec. */
const ENTRY_CID = [0xa3, 0x63, ...bytesOf('cid')]
const LINK = [0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01]
const SHA2_256_32 = [0x12, 0x20]
const KIND = [0x64, ...bytesOf('kind')]
const SIZE = [0x64, ...bytesOf('size')]

/**
 * The node in `bytes` (already verified against its CID) if it has exactly the shape the tree
 * writes: `{kind: "tree", level, entries: [[path, {cid, kind, size}]…]}` or `{kind: "tree",
 * level, children: [[path, cid, count]…]}`, in dag-cbor's strict form, with CIDv1 sha2-256
 * dag-cbor or raw links. Undefined for anything else (decode that block instead): then the
 * decoder and the node check give the value or the error, exactly as for any block.
 */
export function scanTreeNode(bytes: Uint8Array): RawNode | undefined {
  d = bytes
  p = 0
  try {
    literal(HEAD)
    if (p >= d.length || d[p]! >>> 5 !== 0) return undefined
    const level = argument(d[p++]! & 31)
    if (level > 64) return undefined
    literal(level === 0 ? ENTRIES : CHILDREN)
    if (p >= d.length || d[p]! >>> 5 !== 4) return undefined
    const n = argument(d[p++]! & 31)
    if (n > d.length - p || (level > 0 && n === 0)) return undefined
    const at = new Int32Array(n * FIELDS)
    const numbers = new Float64Array(n)
    for (let i = 0; i < n; i++) {
      const o = i * FIELDS
      at[o + ITEM_START] = p
      byte(level === 0 ? 0x82 : 0x83)
      text()
      at[o + KEY_START] = textStart
      at[o + KEY_END] = p
      if (level === 0) literal(ENTRY_CID)
      at[o + CID_START] = link()
      at[o + CID_END] = p
      if (level === 0) {
        literal(KIND)
        text()
        at[o + KIND_START] = textStart
        at[o + KIND_END] = p
        literal(SIZE)
      }
      if (p >= d.length || d[p]! >>> 5 !== 0) return undefined
      numbers[i] = argument(d[p++]! & 31)
      at[o + ITEM_END] = p
    }
    if (p !== d.length) return undefined
    return new RawNode(level, bytes, n, at, numbers)
  } catch {
    return undefined
  } finally {
    d = EMPTY
  }
}

const EMPTY = new Uint8Array(0)

function byte(b: number): void {
  if (p >= d.length || d[p] !== b) throw NO
  p++
}

function literal(bs: readonly number[]): void {
  if (bs.length > d.length - p) throw NO
  for (let i = 0; i < bs.length; i++) if (d[p + i] !== bs[i]) throw NO
  p += bs.length
}

/** Move past a text string, its bytes starting at `textStart` (no array returned: one per entry was most of the garbage). */
let textStart = 0
function text(): void {
  if (p >= d.length || d[p]! >>> 5 !== 3) throw NO
  const n = argument(d[p++]! & 31)
  if (n > d.length - p) throw NO
  textStart = p
  p += n
}

/** A link as the tree writes it (tag 42, 0x00, a CIDv1 dag-cbor or raw, sha2-256): where the CID's bytes start. */
function link(): number {
  literal(LINK)
  const start = p - 1
  if (p >= d.length || (d[p] !== DAG_CBOR && d[p] !== RAW)) throw NO
  p++
  literal(SHA2_256_32)
  if (32 > d.length - p) throw NO
  p += 32
  return start
}

/** An argument in its shortest form, under the decoder's rules (dag-cbor-decode.ts). */
function argument(minor: number): number {
  if (minor < 24) return minor
  let n: number
  switch (minor) {
    case 24:
      if (p + 1 > d.length) throw NO
      n = d[p]!
      p += 1
      if (n < 24) throw NO
      return n
    case 25:
      if (p + 2 > d.length) throw NO
      n = (d[p]! << 8) | d[p + 1]!
      p += 2
      if (n < 0x100) throw NO
      return n
    case 26:
      if (p + 4 > d.length) throw NO
      n = d[p]! * 0x1000000 + ((d[p + 1]! << 16) | (d[p + 2]! << 8) | d[p + 3]!)
      p += 4
      if (n < 0x10000) throw NO
      return n
    case 27: {
      if (p + 8 > d.length) throw NO
      const hi = d[p]! * 0x1000000 + ((d[p + 1]! << 16) | (d[p + 2]! << 8) | d[p + 3]!)
      const lo = d[p + 4]! * 0x1000000 + ((d[p + 5]! << 16) | (d[p + 6]! << 8) | d[p + 7]!)
      p += 8
      if (hi === 0 || hi >= 0x1fffff) throw NO
      return hi * 0x100000000 + lo
    }
    default:
      throw NO
  }
}
