import { equals } from 'multiformats/bytes'
import { CID, DAG_CBOR, MAX_BLOCK_SIZE, RAW, cidFor, cidFromDigest, cidToString, sha256Matches } from './cid.js'
import { decodeDagCbor } from './dag-cbor-decode.js'
import { encodeDagCbor } from './dag-cbor-encode.js'
import { sha256Async } from './hash-worker.js'
import { CorruptBlockError, InvalidInputError } from '../errors.js'

/** A block: bytes and the CID that names them. */
export interface Block {
  cid: CID
  bytes: Uint8Array
}

/** Encode a structured node as dag-cbor and name it. Throws if it would exceed the block limit. */
export function encodeNode(value: unknown): Block {
  return encodeNodeLinked(value).block
}

/**
 * {@link encodeNode}, also telling whether the value holds any link (a CID), which the encoder
 * sees anyway: a caller that must check links walks only the values that have some.
 */
export function encodeNodeLinked(value: unknown): { block: Block; linked: boolean } {
  let encoded: { bytes: Uint8Array; linked: boolean }
  try {
    encoded = encodeDagCbor(value)
  } catch (e) {
    throw new InvalidInputError(`cannot encode node as dag-cbor: ${(e as Error).message}`, {}, { cause: e })
  }
  const { bytes, linked } = encoded
  if (bytes.length > MAX_BLOCK_SIZE) {
    throw new InvalidInputError(`node encodes to ${bytes.length} bytes, over the ${MAX_BLOCK_SIZE}-byte block limit`, {
      size: bytes.length,
    })
  }
  return { block: { cid: cidFor(DAG_CBOR, bytes), bytes }, linked }
}

/** Name raw bytes (a small file or a chunk of a large one). */
export function rawBlock(bytes: Uint8Array): Block {
  if (bytes.length > MAX_BLOCK_SIZE) {
    throw new InvalidInputError(`raw block of ${bytes.length} bytes is over the ${MAX_BLOCK_SIZE}-byte block limit`)
  }
  return { cid: cidFor(RAW, bytes), bytes }
}

/** {@link rawBlock}, hashing on the hashing worker when that pays (see hash-worker.ts): for large chunks. */
export async function rawBlockAsync(bytes: Uint8Array): Promise<Block> {
  if (bytes.length > MAX_BLOCK_SIZE) {
    throw new InvalidInputError(`raw block of ${bytes.length} bytes is over the ${MAX_BLOCK_SIZE}-byte block limit`)
  }
  return { cid: cidFromDigest(RAW, await sha256Async(bytes)), bytes }
}

/** Check that `bytes` hash to `cid`; throws CorruptBlockError naming the CID otherwise. */
export function verifyBlock(cid: CID, bytes: Uint8Array): void {
  if (bytes.length > MAX_BLOCK_SIZE) throw new CorruptBlockError(cidToString(cid), `block of ${bytes.length} bytes is over the block limit`)
  if (!sha256Matches(bytes, cid.multihash.digest)) {
    throw new CorruptBlockError(cidToString(cid), 'bytes do not match the hash in the CID')
  }
}

/** {@link verifyBlock}, hashing on the hashing worker when that pays (see hash-worker.ts): for large blocks. */
export async function verifyBlockAsync(cid: CID, bytes: Uint8Array): Promise<void> {
  if (bytes.length > MAX_BLOCK_SIZE) throw new CorruptBlockError(cidToString(cid), `block of ${bytes.length} bytes is over the block limit`)
  if (!equals(await sha256Async(bytes), cid.multihash.digest)) {
    throw new CorruptBlockError(cidToString(cid), 'bytes do not match the hash in the CID')
  }
}

/** Decode a dag-cbor block after checking its hash. Raw blocks decode to their bytes. */
export function decodeBlock<T = unknown>(cid: CID, bytes: Uint8Array): T {
  verifyBlock(cid, bytes)
  return decodeBlockUnchecked<T>(cid, bytes)
}

/** Decode without re-hashing: only for bytes this process wrote or already verified. */
export function decodeBlockUnchecked<T = unknown>(cid: CID, bytes: Uint8Array): T {
  if (cid.code === RAW) return bytes as T
  if (cid.code !== DAG_CBOR) throw new CorruptBlockError(cidToString(cid), `unsupported codec 0x${cid.code.toString(16)}`)
  try {
    return decodeDagCbor<T>(bytes)
  } catch (e) {
    throw new CorruptBlockError(cidToString(cid), `not valid dag-cbor: ${(e as Error).message}`, { cause: e })
  }
}

/** Every CID linked from a decoded dag-cbor value, depth first, in encounter order. */
export function* linksOf(value: unknown): Generator<[path: string, cid: CID]> {
  yield* linkList(value)
}

/** {@link linksOf} as an array: the field path (`inputs.0`) and CID of every link. */
export function linkList(value: unknown): Array<[path: string, cid: CID]> {
  const found: Array<[string, CID]> = []
  // A plain recursive walk, paths spelled out only for the links found: a generator per level
  // (yield*) and a path string per field cost ~10x more, which shows when a commit or an
  // index walks 100k records that mostly have no links at all.
  if (value !== null && typeof value === 'object') collectLinks(value, [], found)
  return found
}

/**
 * A record's block as pedigree's own encoder made it (on this thread, or on ingest's encoding
 * worker), with every link it holds: its bytes are the record's dag-cbor and hash to its CID.
 * A commit stores it as it is, where a block from elsewhere is hashed and decoded again. Made
 * only inside pedigree (the package exports neither this class nor this module).
 */
export class EncodedRecord implements Block {
  constructor(
    readonly cid: CID,
    readonly bytes: Uint8Array,
    /** Field path and CID of each link, as {@link linkList} gives them. */
    readonly links: ReadonlyArray<readonly [path: string, cid: CID]>,
  ) {}
}

/** Encode a record, keeping its links: {@link encodeNodeLinked} as an {@link EncodedRecord}. */
export function encodeRecord(value: unknown): EncodedRecord {
  const { block, linked } = encodeNodeLinked(value)
  return new EncodedRecord(block.cid, block.bytes, linked ? linkList(value) : NO_LINKS)
}

const NO_LINKS: ReadonlyArray<readonly [string, CID]> = Object.freeze([])

function collectLinks(value: object, trail: string[], found: Array<[string, CID]>): void {
  const cid = CID.asCID(value)
  if (cid) {
    found.push([trail.join('.'), cid])
    return
  }
  if (value instanceof Uint8Array) return
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i]
      if (v === null || typeof v !== 'object') continue
      trail.push(String(i))
      collectLinks(v, trail, found)
      trail.pop()
    }
    return
  }
  const obj = value as Record<string, unknown>
  for (const k of Object.keys(obj)) {
    const v = obj[k]
    if (v === null || typeof v !== 'object') continue
    trail.push(k)
    collectLinks(v, trail, found)
    trail.pop()
  }
}
