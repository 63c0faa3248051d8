import { hash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
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

/**
 * sha2-256 of the bytes, through node:crypto (several times faster than a JS implementation).
 * The one-shot `hash` skips creating a Hash object: ~25% faster for a small record.
 */
export function sha256(bytes: Uint8Array): Uint8Array {
  return hash('sha256', bytes, 'buffer')
}

/**
 * The CIDv1 (sha2-256) that names `bytes` under `codec`. For the codecs of a store (whose codes
 * are one-byte varints) the CID's 36 bytes are written at once, the digest arriving as a
 * 'binary' string: no intermediate Buffer, multihash or re-encoding per block.
 */
export function cidFor(codec: number, bytes: Uint8Array): CID {
  if (codec !== DAG_CBOR && codec !== RAW) return CID.createV1(codec, Digest.create(SHA2_256, sha256(bytes)))
  const digest = hash('sha256', bytes, 'binary')
  const cid = new Uint8Array(36)
  cid[0] = 1
  cid[1] = codec
  cid[2] = SHA2_256
  cid[3] = 32
  for (let i = 0; i < 32; i++) cid[4 + i] = digest.charCodeAt(i)
  return cidFromBytes(cid)
}

/**
 * Whether sha2-256 of `bytes` is `digest`. The hash comes back as a 32-character 'binary' (latin1) string
 * (one character per byte) rather than a Buffer: a Buffer has a backing store of its own that
 * the garbage collector must free, about half the cost of hashing a small record.
 */
export function sha256Matches(bytes: Uint8Array, digest: Uint8Array): boolean {
  const text = hash('sha256', bytes, 'binary')
  if (text.length !== digest.length) return false
  for (let i = 0; i < digest.length; i++) if (text.charCodeAt(i) !== digest[i]) return false
  return true
}

/**
 * The CID whose binary form is `bytes` (which it keeps: pass bytes nobody will change), as
 * `CID.decode` gives it. The one form a pedigree store holds (CIDv1, dag-cbor or raw,
 * sha2-256: 36 bytes) is built directly; `CID.decode` parses four varints and then encodes
 * the same bytes again into a new buffer, which costs more than the rest of reading a tree
 * entry. Anything else goes through `CID.decode`.
 */
export function cidFromBytes(bytes: Uint8Array): CID {
  if (bytes.length === 36 && startsWithStoreCid(bytes)) {
    return new CID(1, bytes[1]!, new Digest.Digest(SHA2_256, 32, bytes.subarray(4), bytes.subarray(2)), bytes) as CID
  }
  return CID.decode(bytes)
}

/** Whether `bytes` start with a CID of the one form a pedigree store holds: CIDv1, dag-cbor or raw, sha2-256 (36 bytes). */
export function startsWithStoreCid(bytes: Uint8Array): boolean {
  return bytes.length >= 36 && bytes[0] === 1 && (bytes[1] === DAG_CBOR || bytes[1] === RAW) && bytes[2] === SHA2_256 && bytes[3] === 32
}

/**
 * The CID at the start of `bytes` and the bytes after it, as `CID.decodeFirst` gives them.
 * The one form a pedigree store holds is copied out (36 bytes), so that the CID does not keep
 * a larger buffer (a request body, a stream chunk) alive; anything else goes through
 * `CID.decodeFirst`, which throws on malformed bytes.
 */
export function cidFirst(bytes: Uint8Array): [CID, Uint8Array] {
  if (startsWithStoreCid(bytes)) return [cidFromBytes(bytes.slice(0, 36)), bytes.subarray(36)]
  return CID.decodeFirst(bytes) as [CID, Uint8Array]
}

/** CID of a digest that was computed elsewhere (for example while streaming a file). */
export function cidFromDigest(codec: number, digest: Uint8Array): CID {
  return CID.createV1(codec, Digest.create(SHA2_256, digest))
}

/**
 * The canonical text form: base32 lower case, `bafy…` for dag-cbor, `bafk…` for raw. Encoded
 * afresh (what `cid.toString()` gives): `CID#toString` caches the text on the CID through a
 * WeakMap entry and a Map per CID, ~1.7 KB for every CID ever printed or used as a key.
 */
export function cidToString(cid: CID): string {
  // A CIDv0 (a `Qm…` link inside a record) has one text form, base58btc.
  return cid.version === 1 ? base32Multibase(cid.bytes) : cid.toString()
}

/**
 * Whether two CIDs are the same, either of them possibly absent (two absent ones are the
 * same): their bytes compared from the end, where digests differ, with no CID method called.
 */
export function sameCid(a: CID | null | undefined, b: CID | null | undefined): boolean {
  if (!a || !b) return !a && !b
  if (a === b) return true
  const x = a.bytes
  const y = b.bytes
  if (x.length !== y.length) return false
  for (let i = x.length - 1; i >= 0; i--) if (x[i] !== y[i]) return false
  return true
}

/**
 * A compact string that is equal for equal CIDs and different for different ones (the CID's
 * bytes, one character per byte), for Map and Set keys. Not for display: see cidToString.
 */
export function cidKey(cid: CID): string {
  const b = cid.bytes
  return b.length <= 64 ? String.fromCharCode.apply(null, b as unknown as number[]) : Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1')
}

const BASE32_ALPHABET = Buffer.from('abcdefghijklmnopqrstuvwxyz234567', 'latin1')
let base32Scratch = Buffer.alloc(128)

/**
 * `bytes` in multibase base32 (`b` then RFC 4648 lower case, unpadded): what multiformats'
 * `base32.encode` gives. Written as ASCII codes into a reused buffer and read back as one
 * latin1 string: ~10x faster than the generic encoder, which builds the string a character
 * at a time. Every block key of a store is this text, so a commit of 100k records makes
 * several hundred thousand of them.
 */
export function base32Multibase(bytes: Uint8Array): string {
  const need = 2 + Math.ceil((bytes.length * 8) / 5)
  if (base32Scratch.length < need) base32Scratch = Buffer.alloc(need * 2)
  const out = base32Scratch
  out[0] = 0x62 // 'b'
  let o = 1
  let bits = 0
  let acc = 0
  for (let i = 0; i < bytes.length; i++) {
    acc = ((acc & 0xff) << 8) | bytes[i]!
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out[o++] = BASE32_ALPHABET[(acc >>> bits) & 31]!
    }
  }
  if (bits > 0) out[o++] = BASE32_ALPHABET[(acc << (5 - bits)) & 31]!
  return out.toString('latin1', 0, o)
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

/** Shortest abbreviated CID accepted as a revision (DESIGN.md). */
export const MIN_CID_PREFIX = 12

/**
 * True if a revision parser reads `text` as a CID, or an abbreviated one, of a block a store
 * can hold: every such CID (CIDv1, sha2-256, dag-cbor or raw, base32) begins `bafyrei` or
 * `bafkrei`, and an abbreviation has at least MIN_CID_PREFIX characters. Ref names are held to
 * the same test, so that no ref can stand in for a block.
 *
 * @example
 * readsAsStoreCid('bafyreicddwj5irc') // true
 * readsAsStoreCid('baselinemodels') // false: no block's CID begins so
 */
export function readsAsStoreCid(text: string): boolean {
  return text.length >= MIN_CID_PREFIX && /^baf[yk]rei[a-z2-7]*$/.test(text)
}

/** Coerce whatever multiformats handed us (CID, link, `asCID`-able value) into a CID, or undefined. */
export function asCid(value: unknown): CID | undefined {
  return CID.asCID(value as CID) ?? undefined
}
