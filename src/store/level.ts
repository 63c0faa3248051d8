import { unlinkSync, writeFileSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { hostname } from 'node:os'
import { Level } from 'level'
import type { AbstractSublevel } from 'abstract-level'
import { CID, cidToString } from '../codec/cid.js'
import { verifyBlock, type Block } from '../codec/block.js'
import { applyDelta, encodeDelta, parseDelta } from '../codec/delta.js'
import { smallBytes } from '../codec/slab.js'
import { ENCODING_DEFLATE_RAW, ENCODING_DELTA, ENCODING_NONE, decodeStored, decodeStoredAsync, encodeStored, encodeStoredAsync, type Encoding } from '../codec/compress.js'
import { CorruptBlockError, InvalidInputError, NotFoundError, StoreError, StoreLockedError } from '../errors.js'
import { Mutex } from '../util/mutex.js'
import type { BlockSizes, Blockstore, BlockstoreSupports, PutOptions } from './blockstore.js'
import { PackFiles, type PackLocation, type PackState } from './pack.js'
import type { ConfigCells, RefCells, RefLogRecord } from './ref-cells.js'
import type { Store } from './store.js'
import { LevelIndexCells } from './index-cells.js'

type Sub<V> = AbstractSublevel<Level<string, unknown>, string | Uint8Array, string, V>

/**
 * A block's key: its CID in base32 (what `cid.toString()` gives), encoded afresh each time.
 * `CID#toString` would cache the text on the CID through a WeakMap entry and a Map per CID,
 * about 1.7 KB of garbage (or of memory, for CIDs kept alive) for every block read or written.
 */
const key = (cid: CID): string => cidToString(cid)

/**
 * Keys from `prefix` on; callers stop at the first key that does not start with it. An upper
 * bound of `prefix + '\xff'` would miss names with characters above U+00FF (UTF-8 keys sort
 * by bytes, and 'ÿ' encodes as c3 bf), such as `models/中`.
 */
const prefixRange = (prefix: string): { gte?: string } => (prefix ? { gte: prefix } : {})
const HOLDER_FILE = 'holder.json'

/** Remove holder.json if it is there (unlinkSync: rmSync loads fs's whole rimraf module). */
function removeHolder(path: string): void {
  try {
    unlinkSync(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
  }
}

const KiB = 1024

/** Blocks of at least this many bytes go to pack files; smaller ones stay LevelDB values. */
export const DEFAULT_PACK_THRESHOLD = 16 * KiB
/** A pack file is closed and the next one started once it passes this size. */
export const DEFAULT_PACK_TARGET = 1024 * 1024 * KiB

export interface LevelStoreOptions {
  /** How long to wait for another process to release the store, in ms (default 10 s). */
  lockTimeoutMs?: number
  /** Called once when the store is busy and we start waiting (the CLI prints it). */
  onWait?: (message: string) => void
  /** Written beside the database so a waiting process can say who holds it. */
  holder?: string
  /**
   * Blocks of at least this many bytes are appended to pack files rather than kept as LevelDB
   * values (default {@link DEFAULT_PACK_THRESHOLD}). Changing it never moves stored blocks;
   * both kinds are read whatever it is.
   */
  packThreshold?: number
  /** Size past which a new pack file is started (default {@link DEFAULT_PACK_TARGET}; tests use less). */
  packTarget?: number
}

/** The directory inside a `.pedigree` folder that holds the LevelDB files. */
export const levelDir = (root: string): string => join(root, 'store')

/**
 * The stored form of blocks, kept under the `m` sublevel so that a store written before it
 * (untagged values) is refused instead of misread.
 */
const BLOCKS_FORMAT = 'tagged values and packs, 1'

/*
 * One keyspace for every block (sublevel `b`, key: the CID in base32), so that `has`, `hasMany`
 * and `cids({ prefix })` are single LevelDB lookups and range scans whatever a block's size.
 * The value's first byte says where the bytes are:
 *   0x00  the block's bytes follow
 *   0x01  u32 size (big-endian), then the block deflated (raw deflate)
 *   0x02  in a pack: u8 encoding, u32 pack, u32 offset (high), u32 offset (low), u32 stored
 *         length, u32 size (see pack.ts)
 */
const TAG_INLINE = 0
const TAG_INLINE_DEFLATED = 1
const TAG_PACKED = 2
const PACKED_BYTES = 22
const META_FORMAT = 'format'
const META_PACK = 'pack'

function inlineValue(bytes: Uint8Array, compress = true): Uint8Array {
  // Small blocks (tree nodes, records) cost per call, not per byte: compress whenever it pays,
  // unless the writer asked not to (tree nodes: inflating on every read costs more than it saves).
  const { encoding, bytes: stored } = compress ? encodeStored(bytes, { fast: false }) : { encoding: ENCODING_NONE, bytes }
  if (encoding === ENCODING_NONE) {
    const value = smallBytes(1 + bytes.length) // in a slab: most are a few hundred bytes, one per block
    value[0] = TAG_INLINE
    value.set(bytes, 1)
    return value
  }
  const value = new Uint8Array(5 + stored.length)
  value[0] = TAG_INLINE_DEFLATED
  new DataView(value.buffer).setUint32(1, bytes.length)
  value.set(stored, 5)
  return value
}

function packedValue(loc: PackLocation): Uint8Array {
  const value = new Uint8Array(PACKED_BYTES)
  const view = new DataView(value.buffer)
  value[0] = TAG_PACKED
  value[1] = loc.encoding
  view.setUint32(2, loc.pack)
  view.setUint32(6, Math.floor(loc.offset / 2 ** 32))
  view.setUint32(10, loc.offset >>> 0)
  view.setUint32(14, loc.stored)
  view.setUint32(18, loc.size)
  return value
}

function packedLocation(cid: string, value: Uint8Array): PackLocation {
  if (value.length !== PACKED_BYTES) throw new CorruptBlockError(cid, `pack index entry of ${value.length} bytes, expected ${PACKED_BYTES}`)
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength)
  return {
    encoding: value[1] as Encoding,
    pack: view.getUint32(2),
    offset: view.getUint32(6) * 2 ** 32 + view.getUint32(10),
    stored: view.getUint32(14),
    size: view.getUint32(18),
  }
}

/** Size and stored size of a block from its index value, without reading a pack. */
function sizesOf(cid: string, value: Uint8Array): BlockSizes {
  switch (value[0]) {
    case TAG_INLINE:
      return { size: value.length - 1, stored: value.length - 1 }
    case TAG_INLINE_DEFLATED:
      return { size: new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(1), stored: value.length - 5 }
    case TAG_PACKED: {
      const loc = packedLocation(cid, value)
      return { size: loc.size, stored: loc.stored }
    }
    default:
      throw unknownTag(cid, value)
  }
}

const unknownTag = (cid: string, value: Uint8Array): CorruptBlockError =>
  new CorruptBlockError(cid, value.length === 0 ? 'empty index entry' : `unknown index entry tag 0x${value[0]!.toString(16)}`)

/**
 * A delta is kept only if it is at most this fraction of the block: below it, the bytes saved
 * are worth reading the base as well whenever the block is read.
 */
const MAX_DELTA_RATIO = 0.75

/** Reads of at most this many blocks (with nothing pending) use LevelDB's synchronous get. */
const SYNC_READ_MAX = 8

/** Unflushed pack bytes at which a flush starts in the background. */
const FLUSH_BYTES = 64 * 1024 * KiB
/** Unflushed pack bytes at which writers wait for the flush (bounds what a crash can discard). */
const MAX_UNFLUSHED_BYTES = 256 * 1024 * KiB
/** Index entries waiting at which a flush starts in the background. */
const FLUSH_ENTRIES = 16_384
/** Index entries waiting at which writers wait for the flush (bounds the memory they take). */
const MAX_PENDING_ENTRIES = 4 * FLUSH_ENTRIES

/**
 * Blocks in LevelDB and pack files. Small blocks are LevelDB values; blocks of at least
 * `packThreshold` bytes are appended to pack files (see pack.ts), and LevelDB keeps their
 * location. Either may be stored deflated when that pays (codec/compress.ts). A packed block
 * whose writer names a similar block (PutOptions.deltaBase) may be stored as a delta against
 * it (codec/delta.ts), when that is much smaller. A delta's base is always a block stored
 * whole (a base that is itself a delta is replaced by its own base), so a read needs at most
 * one more block; nothing is ever deleted, so a base stays as long as the store.
 *
 * Pack appends are write-behind: `putMany` returns once the bytes are written, and their index
 * entries wait in memory (where every read sees them) until a flush makes the packs durable
 * (fdatasync) and only then writes the entries to LevelDB in one batch. A flush runs before
 * any ref moves (the ref cells call {@link flush}), on close, before `cids()`, and in the
 * background every {@link FLUSH_BYTES}; so a file costs one fdatasync per 64 MiB instead of
 * one per batch, and a commit of many files one in all. Small blocks wait in the same queue
 * (and are flushed in the background every {@link FLUSH_ENTRIES}), so a commit of 100k records
 * goes on encoding while LevelDB writes the previous ones, and what LevelDB holds after any
 * crash is what a prefix of the `putMany` calls wrote: a crash discards only blocks that no
 * ref reaches. If a flush fails, the blockstore
 * refuses every later write and flush (so no ref can move onto blocks that may be lost).
 */
class LevelBlockstore implements Blockstore {
  readonly supports: BlockstoreSupports = { delete: false, prefixScan: true }
  /** Pack appends and the pending map, one change at a time. */
  private readonly appends = new Mutex()
  /** One flush at a time, so that the recorded pack end only grows. */
  private readonly flushes = new Mutex()
  /** Index values written to packs (or queued behind them) but not yet to LevelDB, by key, in order. */
  private readonly pending = new Map<string, Uint8Array>()
  private unflushedBytes = 0
  private background?: Promise<void>
  private failed?: StoreError

  constructor(
    private readonly root: Level<string, unknown>,
    private readonly db: Sub<Uint8Array>,
    private readonly meta: Sub<string>,
    private readonly packs: PackFiles,
    private readonly packThreshold: number,
  ) {}

  async get(cid: CID): Promise<Uint8Array> {
    const bytes = await this.tryGet(cid)
    if (!bytes) throw new NotFoundError('block', key(cid))
    return bytes
  }
  async tryGet(cid: CID): Promise<Uint8Array | undefined> {
    return (await this.getMany([cid]))[0]
  }
  async getMany(cids: readonly CID[]): Promise<(Uint8Array | undefined)[]> {
    if (cids.length === 0) return []
    const keys = cids.map(key)
    return this.decode(keys, await this.values(keys))
  }
  async has(cid: CID): Promise<boolean> {
    const k = key(cid)
    return this.pending.has(k) || this.db.has(k)
  }
  async hasMany(cids: readonly CID[]): Promise<boolean[]> {
    const keys = cids.map(key)
    // Pending first: an entry leaves the map only after LevelDB has it.
    const inPending = keys.map((k) => this.pending.has(k))
    const rest = keys.filter((_, i) => !inPending[i])
    const found = rest.length > 0 ? await this.db.hasMany(rest) : []
    let j = 0
    return inPending.map((p) => p || found[j++]!)
  }
  async put(block: Block): Promise<void> {
    await this.putMany([block])
  }

  /**
   * Small blocks become LevelDB values, queued with the pending pack entries (write-behind).
   * Large ones not yet stored are encoded (in the thread pool, concurrently with other
   * writers), then appended to the current pack; their index entries wait for a flush.
   */
  async putMany(blocks: readonly Block[], { compress = true, deltaBase }: PutOptions = {}): Promise<void> {
    this.throwIfFailed()
    if (blocks.length === 0) return
    const unique = new Map<string, Block>()
    for (const b of blocks) unique.set(key(b.cid), b)
    const small: Array<[string, Uint8Array]> = []
    const large: Array<[string, Block]> = []
    for (const [k, b] of unique) {
      if (b.bytes.length < this.packThreshold) small.push([k, inlineValue(b.bytes, compress)])
      else large.push([k, b])
    }
    const encoded = await Promise.all(
      large.map(async ([k, b]) => {
        if (!compress) return { k, b, stored: { encoding: ENCODING_NONE as Encoding, bytes: b.bytes } }
        const base = deltaBase?.(b)
        const delta = base && (await this.deltaAgainst(b, base))
        return { k, b, stored: delta ? { encoding: ENCODING_DELTA as Encoding, bytes: delta } : await encodeStoredAsync(b.bytes) }
      }),
    )
    await this.appends.run(async () => {
      this.throwIfFailed()
      let todo = encoded.filter((e) => !this.pending.has(e.k))
      if (todo.length > 0) {
        // Skip what is stored already (callers usually asked first; another writer may have added it since).
        const present = await this.db.hasMany(todo.map((e) => e.k))
        todo = todo.filter((_, i) => !present[i])
      }
      if (todo.length > 0) {
        const locations = await this.packs.append(
          todo.map((e) => ({ cid: e.b.cid, encoding: e.stored.encoding, size: e.b.bytes.length, bytes: e.stored.bytes })),
        )
        todo.forEach((e, i) => {
          this.pending.set(e.k, packedValue(locations[i]!))
          this.unflushedBytes += e.stored.bytes.length
        })
      }
      for (const [k, value] of small) this.pending.set(k, value)
    })
    if (this.unflushedBytes >= MAX_UNFLUSHED_BYTES || this.pending.size >= MAX_PENDING_ENTRIES) await this.flush()
    else if ((this.unflushedBytes >= FLUSH_BYTES || this.pending.size >= FLUSH_ENTRIES) && !this.background) {
      this.background = this.flush().finally(() => (this.background = undefined))
      // A failure is kept in `failed` and thrown to the next writer and to the next ref update.
      this.background.catch(() => {})
    }
  }

  /**
   * Make every block written so far durable and visible in LevelDB: fdatasync the packs
   * written since the last flush, then write their index entries (and the small blocks queued
   * behind them) in one batch with the new pack end. Cheap when nothing is pending.
   */
  async flush(): Promise<void> {
    this.throwIfFailed()
    if (this.pending.size === 0 && !this.background) return
    await this.flushes.run(async () => {
      this.throwIfFailed()
      const snapshot = await this.appends.run(async () => {
        if (this.pending.size === 0) return undefined
        this.unflushedBytes = 0
        return { entries: [...this.pending], point: this.packs.syncPoint() }
      })
      if (!snapshot) return
      try {
        await this.packs.sync(snapshot.point)
        const ops: unknown[] = snapshot.entries.map(([k, value]) => ({ type: 'put', sublevel: this.db, key: k, value }))
        ops.push({ type: 'put', sublevel: this.meta, key: META_PACK, value: JSON.stringify(snapshot.point.state) })
        await this.batch(ops)
      } catch (e) {
        this.failed = new StoreError(
          `cannot make blocks durable in ${this.packs.dir}: ${(e as Error).message}; the store refuses further writes until it is reopened`,
          { location: this.packs.dir },
          { cause: e },
        )
        throw this.failed
      }
      await this.appends.run(async () => {
        for (const [k, value] of snapshot.entries) if (this.pending.get(k) === value) this.pending.delete(k)
      })
    })
  }

  async *cids({ prefix = '' }: { prefix?: string } = {}): AsyncIterable<CID> {
    // One ordered keyspace to scan: make what is pending part of it first.
    if (!this.failed) await this.flush()
    for await (const k of this.db.keys(prefixRange(prefix))) {
      if (!(k as string).startsWith(prefix)) break
      yield CID.parse(k as string)
    }
  }

  async storedSizes(cids: readonly CID[]): Promise<(BlockSizes | undefined)[]> {
    if (cids.length === 0) return []
    const keys = cids.map(key)
    const values = await this.values(keys)
    return values.map((v, i) => (v === undefined ? undefined : sizesOf(keys[i]!, v)))
  }

  /** Flush what is pending, wait for appends in progress, then close the pack files. */
  async close(): Promise<void> {
    try {
      if (!this.failed) await this.flush()
    } finally {
      await this.appends.run(() => this.packs.close())
    }
  }

  /**
   * The stored form of `block` as a delta against `similar` (or against the base `similar` is
   * itself stored against), or undefined when that is not small enough or the base cannot be
   * read intact: the block is then stored whole, so a failure here costs only bytes.
   */
  private async deltaAgainst(block: Block, similar: CID): Promise<Uint8Array | undefined> {
    try {
      let base = similar
      let k = key(base)
      let [value] = await this.values([k])
      if (value?.[0] === TAG_PACKED && value[1] === ENCODING_DELTA) {
        const [stored] = await this.packs.read([k], [packedLocation(k, value)])
        base = parseDelta(stored!).base
        k = key(base)
        ;[value] = await this.values([k])
        if (value?.[0] === TAG_PACKED && value[1] === ENCODING_DELTA) return undefined
      }
      if (value === undefined || base.equals(block.cid)) return undefined
      const [bytes] = await this.decode([k], [value])
      verifyBlock(base, bytes!)
      return encodeDelta(base, bytes!, block.bytes, block.bytes.length * MAX_DELTA_RATIO)
    } catch {
      return undefined
    }
  }

  private throwIfFailed(): void {
    if (this.failed) throw this.failed
  }

  /** Index values by key: pending ones first (an entry leaves the map only after LevelDB has it). */
  private async values(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (this.pending.size === 0 && keys.length > SYNC_READ_MAX) return (await this.db.getMany(keys as string[])) as (Uint8Array | undefined)[]
    const out = this.pending.size === 0 ? new Array<Uint8Array | undefined>(keys.length) : keys.map((k) => this.pending.get(k))
    const missing: number[] = []
    for (let i = 0; i < out.length; i++) if (out[i] === undefined) missing.push(i)
    if (missing.length === 0) return out
    // A walk that reads a few blocks at a time (lineage, log: ~24 reads in `log -n 20`) waits
    // mostly for round trips to LevelDB's thread pool: a few keys are read synchronously
    // instead (a cached table block makes that a few µs; lineage of depth 100 went from ~53 to ~47 ms).
    if (missing.length <= SYNC_READ_MAX) {
      for (const i of missing) out[i] = this.db.getSync(keys[i]!)
      return out
    }
    const got = (await this.db.getMany(missing.map((i) => keys[i]!))) as (Uint8Array | undefined)[]
    missing.forEach((i, j) => (out[i] = got[j]))
    return out
  }

  private async batch(ops: unknown[]): Promise<void> {
    if (ops.length === 0) return
    try {
      // Synced: the index entries must be on disk before any later write (the ref that reaches
      // them) can be; unsynced pages of LevelDB's log may reach the disk in any order.
      await this.root.batch(ops as never, { sync: true })
    } catch (e) {
      throw new StoreError(`cannot write blocks to the store: ${(e as Error).message}`, {}, { cause: e })
    }
  }

  /** The blocks from their index values, reading packs (adjacent records at once) as needed. */
  private async decode(keys: readonly string[], values: readonly (Uint8Array | undefined)[]): Promise<(Uint8Array | undefined)[]> {
    const out = new Array<Uint8Array | undefined>(values.length).fill(undefined)
    const packed: number[] = []
    const locations: PackLocation[] = []
    for (let i = 0; i < values.length; i++) {
      const value = values[i]
      if (value === undefined) continue
      switch (value[0]) {
        case TAG_INLINE:
          out[i] = value.subarray(1)
          break
        case TAG_INLINE_DEFLATED: {
          const size = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(1)
          out[i] = decodeStored(keys[i]!, ENCODING_DEFLATE_RAW, value.subarray(5), size)
          break
        }
        case TAG_PACKED:
          packed.push(i)
          locations.push(packedLocation(keys[i]!, value))
          break
        default:
          throw unknownTag(keys[i]!, value)
      }
    }
    if (packed.length === 0) return out
    const stored = await this.packs.read(
      packed.map((i) => keys[i]!),
      locations,
    )
    const deltas: Delta[] = []
    await Promise.all(
      packed.map(async (i, j) => {
        const loc = locations[j]!
        if (loc.encoding !== ENCODING_DELTA) out[i] = await decodeStoredAsync(keys[i]!, loc.encoding, stored[j]!, loc.size)
        else deltas.push({ i, size: loc.size, ...parsedDelta(keys[i]!, stored[j]!) })
      }),
    )
    if (deltas.length > 0) await this.applyDeltas(keys, deltas, out)
    return out
  }

  /** Rebuild delta-stored blocks from their bases, read with one lookup (bases are stored whole). */
  private async applyDeltas(keys: readonly string[], deltas: readonly Delta[], out: Array<Uint8Array | undefined>): Promise<void> {
    const baseKeys = deltas.map((d) => key(d.base))
    const baseValues = await this.values(baseKeys)
    baseValues.forEach((value, j) => {
      const cid = keys[deltas[j]!.i]!
      if (value === undefined) throw new CorruptBlockError(cid, `it is stored as a delta against ${baseKeys[j]}, which is missing`)
      if (value[0] === TAG_PACKED && value[1] === ENCODING_DELTA) throw new CorruptBlockError(cid, `its delta base ${baseKeys[j]} is itself a delta`)
    })
    const bases = await this.decode(baseKeys, baseValues)
    deltas.forEach((d, j) => {
      const cid = keys[d.i]!
      try {
        out[d.i] = applyDelta(bases[j]!, d.ops, d.size)
      } catch (e) {
        throw new CorruptBlockError(cid, `its delta against ${baseKeys[j]} does not apply: ${(e as Error).message}`, { cause: e })
      }
    })
  }
}

/** A block read as a delta: its place in the answer, its size, its base and the operations. */
interface Delta {
  i: number
  size: number
  base: CID
  ops: Uint8Array
}

function parsedDelta(cid: string, stored: Uint8Array): { base: CID; ops: Uint8Array } {
  try {
    return parseDelta(stored)
  } catch (e) {
    throw new CorruptBlockError(cid, `its stored delta is malformed: ${(e as Error).message}`, { cause: e })
  }
}

const logKey = (name: string, seq: number): string => `${name}\x00${String(seq).padStart(12, '0')}`

class LevelRefCells implements RefCells {
  private readonly mutex = new Mutex()
  constructor(
    private readonly root: Level<string, unknown>,
    private readonly values: Sub<string>,
    private readonly logs: Sub<RefLogRecord>,
    /** Makes every block written so far durable: a ref must never reach blocks a crash could lose. */
    private readonly beforeUpdate: () => Promise<void>,
  ) {}

  async get(name: string): Promise<string | undefined> {
    return this.values.getSync(name) ?? undefined
  }
  async *list(prefix = ''): AsyncIterable<[string, string]> {
    for await (const [k, v] of this.values.iterator(prefixRange(prefix))) {
      if (!(k as string).startsWith(prefix)) break
      yield [k as string, v as string]
    }
  }
  async compareAndSwap(name: string, record: RefLogRecord): Promise<boolean> {
    await this.beforeUpdate()
    return this.mutex.run(async () => {
      const current = (await this.values.get(name)) ?? null
      if (current !== record.old) return false
      let seq = 0
      for await (const k of this.logs.keys({ gte: `${name}\x00`, lt: `${name}\x01`, reverse: true, limit: 1 })) {
        seq = Number((k as string).slice(name.length + 1)) + 1
      }
      // The ref and its log line land in one atomic LevelDB batch: a crash keeps both or neither.
      // Synced, so that a ref update once reported done survives a power cut too.
      await this.root.batch([
        record.new === null
          ? { type: 'del', sublevel: this.values, key: name }
          : { type: 'put', sublevel: this.values, key: name, value: record.new },
        { type: 'put', sublevel: this.logs, key: logKey(name, seq), value: record },
      ] as never, { sync: true })
      return true
    })
  }
  async *log(name: string): AsyncIterable<RefLogRecord> {
    for await (const v of this.logs.values({ gte: `${name}\x00`, lt: `${name}\x01` })) yield v as RefLogRecord
  }
  async *logged(): AsyncIterable<string> {
    let last: string | undefined
    for await (const k of this.logs.keys()) {
      const name = (k as string).slice(0, (k as string).indexOf('\x00'))
      if (name !== last) yield name
      last = name
    }
  }
}

class LevelConfigCells implements ConfigCells {
  // Values are JSON text in a utf8 sublevel (the same bytes level's 'json' encoding writes),
  // because abstract-level refuses a null value and null is a JSON value like any other.
  constructor(private readonly db: Sub<string>) {}
  async get<T>(k: string): Promise<T | undefined> {
    const text = await this.db.get(k)
    return text === undefined ? undefined : (JSON.parse(text) as T)
  }
  async set(k: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value) as string | undefined
    if (text === undefined) throw new InvalidInputError(`config value for '${k}' is not JSON (got ${typeof value})`, { key: k })
    await this.db.put(k, text)
  }
  async delete(k: string): Promise<void> {
    await this.db.del(k)
  }
  async *entries(prefix = ''): AsyncIterable<[string, unknown]> {
    for await (const [k, v] of this.db.iterator(prefixRange(prefix))) {
      if (!(k as string).startsWith(prefix)) break
      yield [k as string, JSON.parse(v as string)]
    }
  }
}

function isLocked(e: unknown): boolean {
  const err = e as { code?: string; cause?: { code?: string } }
  return err?.code === 'LEVEL_LOCKED' || err?.cause?.code === 'LEVEL_LOCKED'
}

/**
 * Open (creating if needed) the LevelDB store under `root` (a `.pedigree` directory): LevelDB
 * in `root/store`, large blocks in pack files in `root/packs` (bytes a crash left past the last
 * indexed record are discarded here). LevelDB admits one process at a time: if another holds
 * it, wait up to `lockTimeoutMs` and then throw StoreLockedError naming the store and, when
 * known, the holder.
 */
export async function openLevelStore(root: string, options: LevelStoreOptions = {}): Promise<Store> {
  const { lockTimeoutMs = 10_000, onWait, holder, packThreshold = DEFAULT_PACK_THRESHOLD, packTarget = DEFAULT_PACK_TARGET } = options
  if (!Number.isSafeInteger(packThreshold) || packThreshold < 1) throw new InvalidInputError(`packThreshold must be a positive integer, got ${packThreshold}`)
  if (!Number.isSafeInteger(packTarget) || packTarget < 1) throw new InvalidInputError(`packTarget must be a positive integer, got ${packTarget}`)
  await mkdir(root, { recursive: true })
  const started = Date.now()
  let announced = false
  let db: Level<string, unknown>
  for (;;) {
    db = new Level<string, unknown>(levelDir(root), { keyEncoding: 'utf8', valueEncoding: 'json' })
    try {
      await db.open()
      break
    } catch (e) {
      if (!isLocked(e)) throw new StoreError(`cannot open the store at ${root}: ${(e as Error).message}`, { location: root }, { cause: e })
      const held = await readHolder(root)
      if (Date.now() - started >= lockTimeoutMs) throw new StoreLockedError(root, Date.now() - started, held)
      if (!announced && onWait) {
        onWait(`waiting for the store at ${root}, held by ${held ?? 'another process'}… (a running \`pedigree daemon\` on this store lets processes share it instead of waiting)`)
      }
      announced = true
      // LevelDB's lock has no queue: whoever tries first after it is let go gets it. Trying
      // more often the longer one has waited (every 100–200 ms at first, every 20–40 ms after
      // eight seconds) hands the store to the older waiters first, so that under many writers
      // no process waits out its timeout while newer ones keep getting in. Each try costs
      // ~0.25 ms of CPU: the floor keeps 15 waiters under a tenth of a core.
      const every = Math.max(20, 100 / (1 + (Date.now() - started) / 2000))
      await new Promise((r) => setTimeout(r, every + Math.random() * every))
    }
  }
  const holderPath = join(root, HOLDER_FILE)
  // Synchronously: a few bytes, and fs/promises' writeFile (open, write, close on the thread pool)
  // and rm cost ~0.5 ms of CPU on a cold start, in every command.
  writeFileSync(holderPath, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), what: holder ?? 'pedigree' }))
  const blocks = db.sublevel<string, Uint8Array>('b', { valueEncoding: 'view' })
  const meta = db.sublevel<string, string>('m', { valueEncoding: 'utf8' })
  const values = db.sublevel<string, string>('r', { valueEncoding: 'utf8' })
  const logs = db.sublevel<string, RefLogRecord>('l', { valueEncoding: 'json' })
  const config = db.sublevel<string, string>('c', { valueEncoding: 'utf8' })
  const index = db.sublevel<string, string>('i', { valueEncoding: 'utf8' })
  let blockstore: LevelBlockstore
  try {
    await checkBlocksFormat(root, blocks, meta)
    const recorded = await meta.get(META_PACK)
    const packs = await PackFiles.open(root, recorded === undefined ? undefined : (JSON.parse(recorded) as PackState), { target: packTarget })
    blockstore = new LevelBlockstore(db, blocks, meta, packs, packThreshold)
  } catch (e) {
    removeHolder(holderPath)
    await db.close()
    if (e instanceof StoreError) throw e
    throw new StoreError(`cannot open the store at ${root}: ${(e as Error).message}`, { location: root }, { cause: e })
  }
  return {
    location: root,
    blocks: blockstore,
    refs: new LevelRefCells(db, values, logs, () => blockstore.flush()),
    config: new LevelConfigCells(config),
    index: new LevelIndexCells(index),
    async close() {
      try {
        await blockstore.close()
      } finally {
        removeHolder(holderPath)
        await db.close()
      }
    },
  }
}

/** Refuse a store whose blocks were written in another stored form, rather than misread it. */
async function checkBlocksFormat(root: string, blocks: Sub<Uint8Array>, meta: Sub<string>): Promise<void> {
  const format = await meta.get(META_FORMAT)
  if (format === BLOCKS_FORMAT) return
  if (format !== undefined) {
    throw new StoreError(`the store at ${root} keeps its blocks as '${format}', which this version of pedigree cannot read`, { location: root, format })
  }
  for await (const _ of blocks.keys({ limit: 1 })) {
    throw new StoreError(
      `the store at ${root} was written by an earlier version of pedigree (blocks without a storage tag), which this version cannot read`,
      { location: root },
    )
  }
  await meta.put(META_FORMAT, BLOCKS_FORMAT)
}

async function readHolder(root: string): Promise<string | undefined> {
  try {
    const h = JSON.parse(await readFile(join(root, HOLDER_FILE), 'utf8')) as { pid: number; host: string; since: string; what: string }
    return `${h.what}, pid ${h.pid} on ${h.host} since ${h.since}`
  } catch {
    return undefined
  }
}
