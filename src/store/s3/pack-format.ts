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
 * `<id>` is the sha-256 of the CAR bytes (hex), so writing the same pack twice is harmless.
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
