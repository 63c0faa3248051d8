import { cidFirst, cidToString, parseCid, startsWithStoreCid, type CID } from './cid.js'
import { InvalidInputError } from '../errors.js'

/** CIDs in binary, one after another (each CID delimits itself). */
export function encodeCidList(cids: readonly CID[]): Uint8Array {
  let size = 0
  for (const c of cids) size += c.bytes.length
  const out = new Uint8Array(size)
  let at = 0
  for (const c of cids) {
    out.set(c.bytes, at)
    at += c.bytes.length
  }
  return out
}

/**
 * Parse a binary CID list; each CID must be one a pedigree store holds (CIDv1, sha2-256,
 * dag-cbor or raw), as for text CIDs. InvalidInputError otherwise.
 */
export function decodeCidList(bytes: Uint8Array, field = 'cids'): CID[] {
  const out: CID[] = []
  let rest = bytes
  while (rest.length > 0) {
    let cid: CID
    const at = bytes.length - rest.length
    try {
      ;[cid, rest] = cidFirst(rest)
    } catch (e) {
      throw new InvalidInputError(`'${field}': malformed binary CID list at byte ${at}`, { field }, { cause: e })
    }
    if (!startsWithStoreCid(cid.bytes)) {
      if (cid.version !== 1) throw new InvalidInputError(`'${field}': unsupported CID ${cid.toString()}: pedigree uses CIDv1 only`, { field, cid: cid.toString() })
      parseCid(cidToString(cid)) // refuses what a store cannot hold, saying why
    }
    out.push(cid)
  }
  return out
}
