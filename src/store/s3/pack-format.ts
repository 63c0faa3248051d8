import { encode as encodeCbor } from '@ipld/dag-cbor'
import { varint } from 'multiformats'
import { cidFromBytes, cidToString, type CID } from '../../codec/cid.js'
import { CorruptBlockError, PedigreeError } from '../../errors.js'

/*
 * A pack is two objects:
 *   packs/<id>.car  a CAR v1 file (header with no roots, then one section per block:
 *                   varint(length of CID + bytes), CID, bytes) that any IPFS tool reads
 *   packs/<id>.idx  where each block's section is in it:
 *                   "PDGPIDX1", u32 count, then per block: u8 CID length, CID,
 *                   u32 offset (high), u32 offset (low), u32 section length (big-endian)
 * `<id>` is `t/<ms>-<sha>`: the writer's clock when it began the pack (milliseconds since
 * 1970, 13 digits) and the sha-256 of the CAR bytes (hex). Keys then sort by age, so a reader
 * lists only the packs written since it last looked (S3's StartAfter), not the whole store;
 * the hash makes writing the same pack twice harmless. Stores written before 2026-12 have
 * packs named by the hash alone (`packs/<sha>.car`): read as ever, found by a full listing.
 * The index is written after the CAR: a pack without an index (a crash between the two) is
 * invisible, never half-read.
 */

const MAGIC = new TextEncoder().encode('PDGPIDX1')
const CAR_HEADER = (() => {
  const header = encodeCbor({ roots: [], version: 1 })
  const out = new Uint8Array(varint.encodingLength(header.length) + header.length)
  varint.encodeTo(header.length, out, 0)
  out.set(header, out.length - header.length)
  return out
})()

/** Where a block's CAR section is inside a pack object. */
export interface PackSection {
  cid: CID
  offset: number
  length: number
}

/** The CAR bytes of a pack holding `blocks`, and where each one's section is. */
export function encodePack(blocks: Iterable<{ cid: CID; bytes: Uint8Array }>): { car: Uint8Array; sections: PackSection[] } {
  const sections: PackSection[] = []
  const list = [...blocks]
  let size = CAR_HEADER.length
  for (const { cid, bytes } of list) {
    const body = cid.bytes.length + bytes.length
    const length = varint.encodingLength(body) + body
    sections.push({ cid, offset: size, length })
    size += length
  }
  const car = new Uint8Array(size)
  car.set(CAR_HEADER, 0)
  list.forEach(({ cid, bytes }, i) => {
    let at = sections[i]!.offset
    varint.encodeTo(cid.bytes.length + bytes.length, car, at)
    at += varint.encodingLength(cid.bytes.length + bytes.length)
    car.set(cid.bytes, at)
    car.set(bytes, at + cid.bytes.length)
  })
  return { car, sections }
}

export function encodePackIndex(sections: readonly PackSection[]): Uint8Array {
  let size = MAGIC.length + 4
  for (const s of sections) size += 1 + s.cid.bytes.length + 12
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  out.set(MAGIC, 0)
  view.setUint32(MAGIC.length, sections.length)
  let at = MAGIC.length + 4
  for (const s of sections) {
    out[at] = s.cid.bytes.length
    out.set(s.cid.bytes, at + 1)
    at += 1 + s.cid.bytes.length
    view.setUint32(at, Math.floor(s.offset / 2 ** 32))
    view.setUint32(at + 4, s.offset >>> 0)
    view.setUint32(at + 8, s.length)
    at += 12
  }
  return out
}

/** The sections an index object lists; ERR_CORRUPT naming the index object if it is malformed. */
export function decodePackIndex(key: string, bytes: Uint8Array): PackSection[] {
  const bad = (why: string): PedigreeError => new PedigreeError('ERR_CORRUPT', `corrupt pack index ${key}: ${why}`, { pack: key, reason: why })
  if (bytes.length < MAGIC.length + 4 || MAGIC.some((b, i) => bytes[i] !== b)) throw bad('not a pedigree pack index')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const count = view.getUint32(MAGIC.length)
  const out: PackSection[] = []
  let at = MAGIC.length + 4
  for (let i = 0; i < count; i++) {
    if (at >= bytes.length) throw bad(`truncated after ${i} of ${count} entries`)
    const cidLength = bytes[at]!
    if (at + 1 + cidLength + 12 > bytes.length) throw bad(`truncated after ${i} of ${count} entries`)
    let cid: CID
    try {
      cid = cidFromBytes(bytes.slice(at + 1, at + 1 + cidLength))
    } catch (e) {
      throw bad(`entry ${i} holds no valid CID (${(e as Error).message})`)
    }
    at += 1 + cidLength
    const offset = view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4)
    const length = view.getUint32(at + 8)
    at += 12
    out.push({ cid, offset, length })
  }
  if (at !== bytes.length) throw bad(`${bytes.length - at} bytes after the last entry`)
  return out
}

/**
 * The block bytes of a CAR section read at the place an index gave for `cid`. The section must
 * hold exactly that CID and be exactly as long as the index said: an index that lies about its
 * pack (another block's place, a wrong length, past the end) fails here with CorruptBlockError
 * naming the CID, before any caller sees the bytes. The bytes themselves are hashed by the
 * readers that verify (decodeBlock), as with every backend.
 */
export function blockOfSection(cid: CID, pack: string, section: Uint8Array, expectedLength: number): Uint8Array {
  const fail = (why: string): CorruptBlockError => new CorruptBlockError(cidToString(cid), `pack ${pack} does not hold it where its index says (${why})`)
  if (section.length !== expectedLength) throw fail(`read ${section.length} of ${expectedLength} bytes`)
  let body: number
  let used: number
  try {
    ;[body, used] = varint.decode(section, 0)
  } catch {
    throw fail('no section length')
  }
  if (used + body !== section.length) throw fail(`the section there is ${used + body} bytes long, not ${section.length}`)
  const want = cid.bytes
  for (let i = 0; i < want.length; i++) {
    if (section[used + i] !== want[i]) throw fail('another block is there')
  }
  return section.subarray(used + want.length)
}

/*
 * A merged index, packs/m/<10 digits>-<13 digits>-<sha-256 of the object, hex>.midx: the sections of many packs
 * in one object, so that a reader of a store that took many small commits makes one GET
 * instead of one per pack. Derived from the packs' own indexes (which stay), written blind by
 * any process that loaded many of them, and ignored if it cannot be read:
 *   "PDGMIDX1", u32 pack count, per pack: u8 id length, id (UTF-8);
 *   u32 section count, per section: u8 length, the block's CID as text (ASCII, as the store
 *   keys it), u32 pack number (in the list above), u32 offset (high), u32 offset (low),
 *   u32 section length (big-endian)
 * The first number is 9999999999 minus the number of packs it covers, so that the one covering
 * most comes first in a listing (one LIST of a single key finds it). The second is the time
 * (the writer's clock, ms) before which it holds every pack named `t/<ms>-…`: a reader lists
 * the packs named from then on. (Stores written before 2026-12 have merged indexes named
 * packs/<count>-<sha>.midx, without that time: found by a full listing.)
 * CIDs are kept as text because the readers' map is keyed by it (no CID is made or printed
 * for the ~100k entries of a store of 100k records).
 */

const MERGED_MAGIC = new TextEncoder().encode('PDGMIDX1')
const utf8 = new TextEncoder()
/** A CIDv1 in base32 or a CIDv0 in base58btc, as cidToString writes them. */
const CID_TEXT = /^(?:b[a-z2-7]{10,250}|Qm[1-9A-HJ-NP-Za-km-z]{44})$/

/** A section of a merged index: a block (by its CID's text), its pack, and where it is in it. */
export interface MergedSection {
  key: string
  pack: string
  offset: number
  length: number
}

export function encodeMergedIndex(packs: readonly string[], sections: readonly MergedSection[]): Uint8Array {
  const number = new Map(packs.map((p, i) => [p, i]))
  const ids = packs.map((p) => utf8.encode(p))
  let size = MERGED_MAGIC.length + 4 + 4
  for (const id of ids) {
    if (id.length > 255) throw new PedigreeError('ERR_INVALID_INPUT', `pack id too long for a merged index: ${id.length} bytes`)
    size += 1 + id.length
  }
  for (const s of sections) {
    if (!CID_TEXT.test(s.key)) throw new PedigreeError('ERR_INVALID_INPUT', `not a CID for a merged index: ${s.key.slice(0, 80)}`)
    size += 1 + s.key.length + 16
  }
  const out = Buffer.alloc(size)
  out.set(MERGED_MAGIC, 0)
  let at = MERGED_MAGIC.length
  out.writeUInt32BE(ids.length, at)
  at += 4
  for (const id of ids) {
    out[at] = id.length
    out.set(id, at + 1)
    at += 1 + id.length
  }
  out.writeUInt32BE(sections.length, at)
  at += 4
  for (const s of sections) {
    const n = number.get(s.pack)
    if (n === undefined) throw new PedigreeError('ERR_INVALID_INPUT', `section of ${s.key} is in pack ${s.pack}, which the merged index does not list`)
    out[at] = s.key.length
    out.write(s.key, at + 1, 'latin1')
    at += 1 + s.key.length
    out.writeUInt32BE(n, at)
    out.writeUInt32BE(Math.floor(s.offset / 2 ** 32), at + 4)
    out.writeUInt32BE(s.offset >>> 0, at + 8)
    out.writeUInt32BE(s.length, at + 12)
    at += 16
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
}

/** The packs a merged index covers and its sections; ERR_CORRUPT naming the object if it is malformed. */
export function decodeMergedIndex(key: string, bytes: Uint8Array): { packs: string[]; sections: MergedSection[] } {
  const bad = (why: string): PedigreeError => new PedigreeError('ERR_CORRUPT', `corrupt merged pack index ${key}: ${why}`, { index: key, reason: why })
  if (bytes.length < MERGED_MAGIC.length + 8 || MERGED_MAGIC.some((b, i) => bytes[i] !== b)) throw bad('not a pedigree merged pack index')
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let at = MERGED_MAGIC.length
  const packCount = b.readUInt32BE(at)
  at += 4
  const packs: string[] = []
  for (let i = 0; i < packCount; i++) {
    if (at >= b.length || at + 1 + b[at]! > b.length) throw bad(`truncated in pack ${i} of ${packCount}`)
    try {
      packs.push(decoder.decode(b.subarray(at + 1, at + 1 + b[at]!)))
    } catch {
      throw bad(`pack ${i} has no valid name`)
    }
    at += 1 + b[at]!
  }
  if (at + 4 > b.length) throw bad('truncated before the sections')
  const count = b.readUInt32BE(at)
  at += 4
  const sections: MergedSection[] = []
  for (let i = 0; i < count; i++) {
    if (at >= b.length || at + 1 + b[at]! + 16 > b.length) throw bad(`truncated after ${i} of ${count} sections`)
    const text = b.toString('latin1', at + 1, at + 1 + b[at]!)
    if (!CID_TEXT.test(text)) throw bad(`section ${i} holds no CID`)
    at += 1 + text.length
    const pack = packs[b.readUInt32BE(at)]
    if (pack === undefined) throw bad(`section ${i} names pack ${b.readUInt32BE(at)} of ${packs.length}`)
    const offset = b.readUInt32BE(at + 4) * 2 ** 32 + b.readUInt32BE(at + 8)
    const length = b.readUInt32BE(at + 12)
    at += 16
    sections.push({ key: text, pack, offset, length })
  }
  if (at !== b.length) throw bad(`${b.length - at} bytes after the last section`)
  return { packs, sections }
}

const INVERTED = 9_999_999_999

/** A merged index's name under packs/, what it covers, and since when it holds every pack. */
export interface MergedIndexName {
  /** Packs it covers. */
  count: number
  /** Every pack named `t/<ms>-…` with ms below this is in it; undefined for the names of older stores. */
  completeBefore?: number
}

/**
 * The name under packs/ of a merged index (`m/<inverted count>-<ms>-<sha>.midx`, or the
 * `<count>-<sha>.midx` of stores written before 2026-12) → what it covers; undefined for any
 * other name.
 */
export function parseMergedIndexName(name: string): MergedIndexName | undefined {
  let m = /^m\/(\d{10})-(\d{13})-[0-9a-f]{64}\.midx$/.exec(name)
  if (m) return { count: INVERTED - Number(m[1]), completeBefore: Number(m[2]) }
  m = /^(\d{10})-[0-9a-f]{64}\.midx$/.exec(name)
  return m ? { count: Number(m[1]) } : undefined
}

/**
 * The name (under packs/) of a merged index covering `packCount` packs, holding every pack
 * named before `completeBefore` (ms), whose bytes hash to `digestHex`.
 */
export function mergedIndexName(packCount: number, completeBefore: number, digestHex: string): string {
  return `${MERGED_PREFIX}${String(INVERTED - packCount).padStart(10, '0')}-${timeDigits(completeBefore)}-${digestHex}.midx`
}

/** Where merged indexes are, under packs/ (listed first, one key). */
export const MERGED_PREFIX = 'm/'
/** Where packs are, under packs/, in the order they were begun. */
export const PACK_LOG_PREFIX = 't/'

/** The id of a pack begun at `time` (ms) whose CAR bytes hash to `digestHex`. */
export function packId(time: number, digestHex: string): string {
  return `${PACK_LOG_PREFIX}${timeDigits(time)}-${digestHex}`
}

/** When a pack was begun (ms, its writer's clock); undefined for the hash-only ids of stores written before 2026-12. */
export function packTime(id: string): number | undefined {
  const m = /^t\/(\d{13})-[0-9a-f]{64}$/.exec(id)
  return m ? Number(m[1]) : undefined
}

/** The 13 digits of a time in ms in a key (clamped to what 13 digits hold). */
export function timeDigits(ms: number): string {
  return String(Math.min(9_999_999_999_999, Math.max(0, Math.floor(ms)))).padStart(13, '0')
}
