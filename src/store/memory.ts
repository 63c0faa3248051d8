import { CID, cidToString } from '../codec/cid.js'
import type { Block } from '../codec/block.js'
import { NotFoundError } from '../errors.js'
import type { BlockSizes, Blockstore, BlockstoreSupports } from './blockstore.js'
import type { ConfigCells, RefCells, RefLogRecord } from './ref-cells.js'
import type { Store } from './store.js'
import { MemoryIndexCells } from './index-cells.js'

// Encoded afresh: `cid.toString()` would cache the text on every CID used as a key (see codec/cid.ts).
const key = (cid: CID): string => cidToString(cid)

/** Blocks in a Map: for tests, and as a scratch store. */
export class MemoryBlockstore implements Blockstore {
  readonly supports: BlockstoreSupports = { delete: true, prefixScan: false }
  private readonly blocks = new Map<string, Uint8Array>()

  async get(cid: CID): Promise<Uint8Array> {
    const bytes = this.blocks.get(key(cid))
    if (!bytes) throw new NotFoundError('block', key(cid))
    return bytes
  }
  async tryGet(cid: CID): Promise<Uint8Array | undefined> {
    return this.blocks.get(key(cid))
  }
  async getMany(cids: readonly CID[]): Promise<(Uint8Array | undefined)[]> {
    return cids.map((c) => this.blocks.get(key(c)))
  }
  async has(cid: CID): Promise<boolean> {
    return this.blocks.has(key(cid))
  }
  async hasMany(cids: readonly CID[]): Promise<boolean[]> {
    return cids.map((c) => this.blocks.has(key(c)))
  }
  async put(block: Block): Promise<void> {
    // Copy: a writer may reuse its buffer (a chunker reading a file), which must not change a stored block.
    this.blocks.set(key(block.cid), new Uint8Array(block.bytes))
  }
  async putMany(blocks: readonly Block[]): Promise<void> {
    for (const b of blocks) this.blocks.set(key(b.cid), new Uint8Array(b.bytes))
  }
  async *cids({ prefix = '' }: { prefix?: string } = {}): AsyncIterable<CID> {
    for (const k of [...this.blocks.keys()].sort()) if (k.startsWith(prefix)) yield CID.parse(k)
  }
  /** Kept as given: the stored size is the size. */
  async storedSizes(cids: readonly CID[]): Promise<(BlockSizes | undefined)[]> {
    return cids.map((c) => {
      const bytes = this.blocks.get(key(c))
      return bytes ? { size: bytes.length, stored: bytes.length } : undefined
    })
  }
  /** Test hook: replace stored bytes without changing the CID, as disk corruption would. */
  corrupt(cid: CID, bytes: Uint8Array): void {
    this.blocks.set(key(cid), new Uint8Array(bytes))
  }
}

export class MemoryRefCells implements RefCells {
  private readonly values = new Map<string, string>()
  private readonly logs = new Map<string, RefLogRecord[]>()

  async get(name: string): Promise<string | undefined> {
    return this.values.get(name)
  }
  async *list(prefix = ''): AsyncIterable<[string, string]> {
    const names = [...this.values.keys()].filter((n) => n.startsWith(prefix)).sort()
    for (const n of names) yield [n, this.values.get(n)!]
  }
  async compareAndSwap(name: string, record: RefLogRecord): Promise<boolean> {
    // Single-threaded JS: no await between read and write, so this is atomic.
    if ((this.values.get(name) ?? null) !== record.old) return false
    if (record.new === null) this.values.delete(name)
    else this.values.set(name, record.new)
    const log = this.logs.get(name) ?? []
    // Deep copies in and out: the log is append-only, so neither the writer's object nor a
    // reader's may alter a stored line (the level backend gets this from serialising).
    log.push(structuredClone(record))
    this.logs.set(name, log)
    return true
  }
  async *log(name: string): AsyncIterable<RefLogRecord> {
    for (const line of this.logs.get(name) ?? []) yield structuredClone(line)
  }
  async *logged(): AsyncIterable<string> {
    yield* [...this.logs.keys()].sort()
  }
}

export class MemoryConfigCells implements ConfigCells {
  private readonly values = new Map<string, unknown>()
  async get<T>(key: string): Promise<T | undefined> {
    const v = this.values.get(key)
    return v === undefined ? undefined : (structuredClone(v) as T)
  }
  async set(key: string, value: unknown): Promise<void> {
    this.values.set(key, structuredClone(value))
  }
  async delete(key: string): Promise<void> {
    this.values.delete(key)
  }
  async *entries(prefix = ''): AsyncIterable<[string, unknown]> {
    for (const k of [...this.values.keys()].sort()) if (k.startsWith(prefix)) yield [k, structuredClone(this.values.get(k))]
  }
}

/** A whole store in memory; nothing survives the process. */
export function openMemoryStore(): Store & { blocks: MemoryBlockstore } {
  return {
    location: 'memory:',
    blocks: new MemoryBlockstore(),
    refs: new MemoryRefCells(),
    config: new MemoryConfigCells(),
    index: new MemoryIndexCells(),
    async close() {},
  }
}
