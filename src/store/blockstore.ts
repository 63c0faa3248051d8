import type { CID } from '../codec/cid.js'
import type { Block } from '../codec/block.js'

/** What a backend can do beyond the common interface; tests read it instead of guessing. */
export interface BlockstoreSupports {
  /** Blocks can be removed (only a future explicit, dry-run-first gc would use it). */
  delete: boolean
  /** `cids({ prefix })` is answered by a range scan rather than a full listing. */
  prefixScan: boolean
}

/** A block's length (`size`) and the bytes a backend spends on it (`stored`, after compression). */
export interface BlockSizes {
  size: number
  stored: number
}

/** How a writer would like its blocks kept; a backend may ignore any of it. */
export interface PutOptions {
  /**
   * False: keep the bytes as given, never compressed (default true: compressed where the
   * backend finds it pays). For small blocks read on every walk, such as tree nodes, where
   * inflating on each read costs more than the bytes saved.
   */
  compress?: boolean
  /**
   * A block the given one is probably much like (for a chunk of a file, the chunk at the same
   * place in the file's previous version), or undefined. A backend may store the block as a
   * delta against it (codec/delta.ts) when that is much smaller; the block is still named,
   * read and sent whole. Ignored where `compress` is false.
   */
  deltaBase?: (block: Block) => CID | undefined
}

/**
 * Content-addressed block storage. A backend stores the bytes it is given under the CID
 * it is given: it does not re-hash (writers hash once; `sync` verifies what arrives from
 * outside before it calls `put`). readers re-hash with codec/block.ts (decodeBlock, verifyBlock).
 */
export interface Blockstore {
  readonly supports: BlockstoreSupports
  /** The bytes of a block; throws NotFoundError naming the CID if absent. */
  get(cid: CID): Promise<Uint8Array>
  /** The bytes of a block, or undefined if absent. */
  tryGet(cid: CID): Promise<Uint8Array | undefined>
  /** Many blocks at once, in order, undefined where absent. */
  getMany(cids: readonly CID[]): Promise<(Uint8Array | undefined)[]>
  has(cid: CID): Promise<boolean>
  hasMany(cids: readonly CID[]): Promise<boolean[]>
  put(block: Block): Promise<void>
  /** Write many blocks in one batch (atomically where the backend can). */
  putMany(blocks: readonly Block[], options?: PutOptions): Promise<void>
  /** Every CID in the store, or those whose base32 text starts with `prefix`. */
  cids(options?: { prefix?: string }): AsyncIterable<CID>
  /**
   * Size and stored size of many blocks, in order, undefined where absent, without reading
   * their bytes where the backend can (for `du`). Backends that lack it are measured by `getMany`.
   */
  storedSizes?(cids: readonly CID[]): Promise<(BlockSizes | undefined)[]>
}
