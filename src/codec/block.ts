import * as dagCbor from '@ipld/dag-cbor'
import { equals } from 'multiformats/bytes'
import { CID, DAG_CBOR, MAX_BLOCK_SIZE, RAW, cidFor, cidToString, sha256 } from './cid.js'
import { CorruptBlockError, InvalidInputError } from '../errors.js'

/** A block: bytes and the CID that names them. */
export interface Block {
  cid: CID
  bytes: Uint8Array
}

/** Encode a structured node as dag-cbor and name it. Throws if it would exceed the block limit. */
export function encodeNode(value: unknown): Block {
  let bytes: Uint8Array
  try {
    bytes = dagCbor.encode(value)
  } catch (e) {
    throw new InvalidInputError(`cannot encode node as dag-cbor: ${(e as Error).message}`, {}, { cause: e })
  }
  if (bytes.length > MAX_BLOCK_SIZE) {
    throw new InvalidInputError(`node encodes to ${bytes.length} bytes, over the ${MAX_BLOCK_SIZE}-byte block limit`, {
      size: bytes.length,
    })
  }
  return { cid: cidFor(DAG_CBOR, bytes), bytes }
}

/** Name raw bytes (a small file or a chunk of a large one). */
export function rawBlock(bytes: Uint8Array): Block {
  if (bytes.length > MAX_BLOCK_SIZE) {
    throw new InvalidInputError(`raw block of ${bytes.length} bytes is over the ${MAX_BLOCK_SIZE}-byte block limit`)
  }
  return { cid: cidFor(RAW, bytes), bytes }
}

/** Check that `bytes` hash to `cid`; throws CorruptBlockError naming the CID otherwise. */
export function verifyBlock(cid: CID, bytes: Uint8Array): void {
  if (bytes.length > MAX_BLOCK_SIZE) throw new CorruptBlockError(cidToString(cid), `block of ${bytes.length} bytes is over the block limit`)
  if (!equals(sha256(bytes), cid.multihash.digest)) {
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
    return dagCbor.decode<T>(bytes)
  } catch (e) {
    throw new CorruptBlockError(cidToString(cid), `not valid dag-cbor: ${(e as Error).message}`, { cause: e })
  }
}

/** Every CID linked from a decoded dag-cbor value, depth first, in encounter order. */
export function* linksOf(value: unknown): Generator<[path: string, cid: CID]> {
  yield* walkLinks(value, '')
}

function* walkLinks(value: unknown, path: string): Generator<[string, CID]> {
  if (value === null || typeof value !== 'object') return
  const cid = CID.asCID(value)
  if (cid) {
    yield [path, cid]
    return
  }
  if (value instanceof Uint8Array) return
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) yield* walkLinks(value[i], path ? `${path}.${i}` : String(i))
    return
  }
  for (const [k, v] of Object.entries(value)) yield* walkLinks(v, path ? `${path}.${k}` : k)
}
