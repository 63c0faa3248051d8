import type { Blockstore } from './blockstore.js'
import type { ConfigCells, IndexCells, RefCells } from './ref-cells.js'

/** A whole backend: blocks, refs, config, and derived indexes, with one lifetime. */
export interface Store {
  /** Where it lives, for messages (a directory, `memory:`, `s3://…`). */
  readonly location: string
  readonly blocks: Blockstore
  readonly refs: RefCells
  readonly config: ConfigCells
  /** Derived, rebuildable indexes (reverse links, paths). */
  readonly index: IndexCells
  close(): Promise<void>
}
