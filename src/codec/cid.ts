import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { base32 } from 'multiformats/bases/base32'
import { InvalidInputError } from '../errors.js'

export { CID }

/** Multicodec code of dag-cbor: structured nodes (records, trees, commits, tags). */
export const DAG_CBOR = 0x71
/** Multicodec code of raw: file bytes and chunks. */
export const RAW = 0x55
/** Multihash code of sha2-256. */
export const SHA2_256 = 0x12

/** The largest block the store accepts; see DESIGN.md (IPFS exchanges blocks up to 2 MiB). */
export const MAX_BLOCK_SIZE = 1024 * 1024

/** sha2-256 of the bytes, through node:crypto (several times faster than a JS implementation). */
export function sha256(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

/** The CIDv1 (sha2-256) that names `bytes` under `codec`. */
export function cidFor(codec: number, bytes: Uint8Array): CID {
  return CID.createV1(codec, Digest.create(SHA2_256, sha256(bytes)))
}

/** CID of a digest that was computed elsewhere (for example while streaming a file). */
export function cidFromDigest(codec: number, digest: Uint8Array): CID {
  return CID.createV1(codec, Digest.create(SHA2_256, digest))
}

/** The canonical text form: base32 lower case, `bafy…` for dag-cbor, `bafk…` for raw. */
export function cidToString(cid: CID): string {
  return cid.toString(base32)
}

/**
 * Parse a full CID string. Only CIDv1 with sha2-256 under dag-cbor or raw is part of a
 * pedigree store, so anything else is refused here with the reason.
 */
export function parseCid(text: string): CID {
  let cid: CID
  try {
    cid = CID.parse(text.trim())
  } catch (e) {
    throw new InvalidInputError(`not a CID: '${text}' (${(e as Error).message})`, { cid: text }, { cause: e })
  }
  if (cid.version !== 1) throw new InvalidInputError(`unsupported CID '${text}': pedigree uses CIDv1 only`, { cid: text })
  if (cid.multihash.code !== SHA2_256) throw new InvalidInputError(`unsupported CID '${text}': hash must be sha2-256`, { cid: text })
  if (cid.code !== DAG_CBOR && cid.code !== RAW) {
    throw new InvalidInputError(`unsupported CID '${text}': codec must be dag-cbor or raw`, { cid: text })
  }
  return cid
}

/** True if `text` could be (a prefix of) a base32 CIDv1 string. */
export function looksLikeCidPrefix(text: string): boolean {
  return /^b[a-z2-7]+$/.test(text)
}

/** Coerce whatever multiformats handed us (CID, link, `asCID`-able value) into a CID, or undefined. */
export function asCid(value: unknown): CID | undefined {
  return CID.asCID(value as CID) ?? undefined
}
