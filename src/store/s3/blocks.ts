import type { Block } from '../../codec/block.js'
import { CID, cidToString, sha256 } from '../../codec/cid.js'
import { varint } from 'multiformats'
import { NotFoundError } from '../../errors.js'
import { Mutex } from '../../util/mutex.js'
import type { BlockSizes, Blockstore, BlockstoreSupports } from '../blockstore.js'
import type { S3Bucket } from './bucket.js'
import {
  MERGED_PREFIX,
  PACK_LOG_PREFIX,
  blockOfSection,
  decodeMergedIndex,
  decodePackIndex,
  encodeMergedIndex,
  encodePack,
  encodePackIndex,
  mergedIndexName,
  packId,
  parseMergedIndexName,
  timeDigits,
  type MergedIndexName,
  type MergedSection,
} from './pack-format.js'
import { pool } from './pool.js'

const MiB = 1024 * 1024

/** A pack is written once this many bytes of blocks wait (default; `packTarget` changes it). */
export const DEFAULT_S3_PACK_TARGET = 16 * MiB
/** Sections of one pack closer than this are read with one ranged GET. */
const READ_GAP = 256 * 1024
/** A ranged GET reads at most about this much. */
const READ_SPAN = 8 * MiB
/** A read of few blocks fetches this much of the pack from the first one on, and keeps the rest. */
const READ_AHEAD = 512 * 1024
/** Bytes of recently written and read blocks kept in memory. */
const CACHE_BYTES = 64 * MiB
/**
 * A block found missing by a listing is taken as missing, without listing again, for this long
 * (records may link to blocks that are not in the store; each lookup must not cost a LIST).
 */
const ABSENT_MS = 1000
const MAX_ABSENT = 100_000
/** `hasMany` lists the packs again for at most this many missing blocks (see there). */
const RELIST_HAS_MAX = 64

const PACKS = 'packs/'
/**
 * How far a pack's name may lag its appearance in a listing: its writer's clock behind the
 * reader's, plus the time its upload took (a pack is named when it is begun). A listing
 * started at t therefore finds every pack named before t - CLOCK_SLACK_MS, and the next one
 * lists only the packs named from then on.
 */
export const CLOCK_SLACK_MS = 10 * 60_000
/**
 * A block still not found after listing the newest packs may be in a pack whose name lags more
 * than that (a writer's clock far behind, a store written by an older pedigree): every pack is
 * listed, at most once in this long.
 */
const FULL_LISTING_MS = 60_000
/**
 * A process that knows more packs than this beyond those of the merged index it read or wrote
 * writes a merged index of every pack it knows (see pack-format.ts).
 */
export const DEFAULT_MERGE_AT = 64

export interface S3BlockstoreOptions {
  /** Bytes of blocks gathered into one pack before it is written (default {@link DEFAULT_S3_PACK_TARGET}). */
  packTarget?: number
  /** Requests in flight at once when reading packs (default 8). */
  concurrency?: number
  /** Packs loaded one by one beyond the merged index before a new merged index is written (default {@link DEFAULT_MERGE_AT}). */
  mergeAt?: number
  /** The clock that names packs (ms since 1970; tests set a writer's clock behind). */
  clock?: () => number
}

interface Location {
  /** Pack id (the name of its .car and .idx objects). */
  pack: string
  offset: number
  length: number
}

const key = (cid: CID): string => cidToString(cid)

/**
 * Blocks in packs in an S3 bucket (layout: pack-format.ts and docs/s3.md). Writes wait in
 * memory until {@link DEFAULT_S3_PACK_TARGET} bytes gather, a ref is about to move
 * ({@link flush}, called by the ref cells), or the store closes; then one CAR object and its
 * index object are written, in that order (a full pack uploads in the background while the
 * writer goes on; a failure is thrown to the next writer, and the blocks wait to be retried).
 * Every read sees the waiting blocks.
 *
 * Reads use an in-memory map of every pack index (CID → pack, offset, length). Every commit
 * writes a pack, so a store that takes many small commits has many: a process that knows more
 * than `mergeAt` packs beyond its merged index writes a merged index of all it knows, for the
 * next reader (derived data: the packs' own indexes stay, and a merged index that cannot be
 * written or read only costs the requests it would have saved). Packs are named by when they
 * were begun, so the map is loaded on first use with a LIST of one key (the merged index
 * covering most packs) and its GET, then a LIST of the packs begun since and a GET of each of
 * their indexes; when a block is not found (another writer may have added a pack since), the
 * packs begun since the last listing are listed. Sections next to each other in a pack are
 * fetched with one ranged GET. A section that does not hold the CID its index claims is
 * ERR_CORRUPT.
 */
export class S3Blockstore implements Blockstore {
  readonly supports: BlockstoreSupports = { delete: false, prefixScan: false }
  /** Packs this store wrote (tests and benchmarks count objects). */
  packsWritten = 0
  /** Merged pack indexes this store wrote. */
  mergesWritten = 0
  private readonly index = new Map<string, Location>()
  private readonly loadedPacks = new Set<string>()
  private pending = new Map<string, Block>()
  private pendingBytes = 0
  /** Blocks of the pack being uploaded: still readable from here until its index is written. */
  private uploading = new Map<string, Block>()
  private loaded?: Promise<void>
  private refreshing?: Promise<void>
  /** When the last completed listing of the packs started (performance.now()). */
  private listedAt = -Infinity
  /** Blocks a listing did not find, with when that listing started. */
  private readonly absent = new Map<string, number>()
  private readonly flushes = new Mutex()
  /** The pack uploading in the background, if any, and how the last such upload failed. */
  private background?: Promise<void>
  private backgroundFailure?: unknown
  /** Recently written or read blocks (least recently used first), at most CACHE_BYTES. */
  private readonly cache = new Map<string, Uint8Array>()
  private cacheBytes = 0

  /** Packs known from the merged index this process loaded or wrote (the most packs of one). */
  private mergedPacks = 0
  /** Whether that merged index is one under packs/m/ (one that tells since when to list). */
  private mergedListable = false
  /** Merged indexes that could not be read (gone, corrupt): passed over from then on. */
  private readonly unreadableMerged = new Set<string>()
  /** A merged index could not be written: this process does not try again. */
  private mergeFailed = false
  /**
   * Every pack named `t/<ms>-…` with ms below this is known (writers' clocks): the next
   * listing starts there. -Infinity before the first listing.
   */
  private completeBefore = -Infinity
  /** When the last listing of every pack started (performance.now()). */
  private fullyListedAt = -Infinity

  private readonly packTarget: number
  private readonly concurrency: number
  private readonly mergeAt: number
  private readonly clock: () => number

  constructor(
    private readonly bucket: S3Bucket,
    { packTarget = DEFAULT_S3_PACK_TARGET, concurrency = 8, mergeAt = DEFAULT_MERGE_AT, clock = Date.now }: S3BlockstoreOptions = {},
  ) {
    this.packTarget = packTarget
    this.concurrency = concurrency
    this.mergeAt = mergeAt
    this.clock = clock
  }

  async get(cid: CID): Promise<Uint8Array> {
    const [bytes] = await this.getMany([cid])
    if (!bytes) throw new NotFoundError('block', key(cid))
    return bytes
  }

  async tryGet(cid: CID): Promise<Uint8Array | undefined> {
    return (await this.getMany([cid]))[0]
  }

  async getMany(cids: readonly CID[]): Promise<(Uint8Array | undefined)[]> {
    if (cids.length === 0) return []
    // Asked before the first listing: that listing, if this call waits for it, is fresh enough.
    const asked = performance.now()
    await this.ready()
    const out = new Array<Uint8Array | undefined>(cids.length).fill(undefined)
    const reads: { i: number; cid: CID; at: Location }[] = []
    const resolve = (indices: Iterable<number>): number[] => {
      const missing: number[] = []
      for (const i of indices) {
        const k = key(cids[i]!)
        const waiting = this.pending.get(k) ?? this.uploading.get(k)
        if (waiting) {
          out[i] = waiting.bytes
          continue
        }
        const cached = this.cache.get(k)
        if (cached) {
          out[i] = cached
          this.cache.delete(k) // most recently used: to the end
          this.cache.set(k, cached)
          continue
        }
        const at = this.index.get(k)
        if (at) reads.push({ i, cid: cids[i]!, at })
        else missing.push(i)
      }
      return missing
    }
    const missing = resolve(cids.keys())
    if (missing.length > 0 && (await this.relist(missing.map((i) => key(cids[i]!)), asked))) resolve(missing)
    await this.read(reads, out)
    return out
  }

  async has(cid: CID): Promise<boolean> {
    return (await this.hasMany([cid]))[0]!
  }

  async hasMany(cids: readonly CID[]): Promise<boolean[]> {
    const asked = performance.now()
    await this.ready()
    const keys = cids.map(key)
    let out = keys.map((k) => this.known(k))
    const missing = keys.filter((_, i) => !out[i])
    // A few named blocks (the links a commit checks) may be another process's fresh work: look
    // again. A batch of new data being deduplicated is not worth a listing per batch.
    if (missing.length > 0 && missing.length <= RELIST_HAS_MAX && (await this.relist(missing, asked))) out = keys.map((k) => this.known(k))
    return out
  }

  /**
   * Whether each block is in a pack this process has listed, or is waiting to be written,
   * without listing again for the ones that are not: for a push's negotiation, where a block
   * another writer stored since the listing is only sent once more (and stored once).
   */
  async hasManyListed(cids: readonly CID[]): Promise<boolean[]> {
    await this.ready()
    return cids.map((cid) => this.known(key(cid)))
  }

  /** Where block `k` is, unless a pack read or written earlier already holds it (the first place stays). */
  private place(k: string, at: Location): void {
    if (!this.index.has(k)) this.index.set(k, at)
  }

  /** Whether the block is waiting to be written, being written, or in a listed pack. */
  private known(k: string): boolean {
    return this.pending.has(k) || this.uploading.has(k) || this.index.has(k)
  }

  /**
   * Blocks `missing` were not found by a read that began at `asked`. Another process may have
   * written them since: list the packs begun since the last listing (once for all of them, a
   * listing that starts after `asked`) unless each was found missing by a listing moments ago;
   * if some are still missing, list every pack (at most once a minute: see FULL_LISTING_MS).
   * Returns whether it listed; remembers what is still missing.
   */
  private async relist(missing: readonly string[], asked: number): Promise<boolean> {
    const unknown = missing.some((k) => !(asked - (this.absent.get(k) ?? -Infinity) < ABSENT_MS))
    let listed = unknown && this.listedAt < asked
    if (listed) await this.refreshAfter(asked)
    if (unknown && performance.now() - this.fullyListedAt > FULL_LISTING_MS && missing.some((k) => !this.index.has(k))) {
      const now = performance.now()
      while (this.fullyListedAt < now) await this.refresh('all')
      listed = true
    }
    if (this.absent.size + missing.length > MAX_ABSENT) this.absent.clear()
    for (const k of missing) if (!this.index.has(k)) this.absent.set(k, this.listedAt)
    return listed
  }

  async put(block: Block): Promise<void> {
    await this.putMany([block])
  }

  async putMany(blocks: readonly Block[]): Promise<void> {
    if (blocks.length === 0) return
    await this.ready()
    for (const b of blocks) {
      const k = key(b.cid)
      if (this.pending.has(k) || this.uploading.has(k) || this.index.has(k)) continue
      // Copy: a writer may reuse its buffer, which must not change a block waiting here.
      this.pending.set(k, { cid: b.cid, bytes: new Uint8Array(b.bytes) })
      this.pendingBytes += b.bytes.length
    }
    if (this.pendingBytes < this.packTarget) return
    // One pack uploads behind the writer while it goes on (memory: two packs at most).
    if (this.background) await this.background
    this.throwBackgroundFailure()
    if (this.pendingBytes >= this.packTarget && !this.background) {
      this.background = this.writePack()
        .catch((e: unknown) => {
          this.backgroundFailure = e
        })
        .finally(() => {
          this.background = undefined
        })
    }
  }

  /**
   * Write every waiting block as one pack: the CAR object, then its index. Only then are the
   * blocks in the store for other processes, and only then may a ref reach them. On failure
   * the blocks wait again (a later flush retries them) and the error is thrown.
   */
  async flush(): Promise<void> {
    await this.writePack()
    // Whatever a background upload failed to write was retried and written just now.
    this.backgroundFailure = undefined
  }

  private throwBackgroundFailure(): void {
    const e = this.backgroundFailure
    if (e === undefined) return
    this.backgroundFailure = undefined
    throw e
  }

  private async writePack(): Promise<void> {
    await this.flushes.run(async () => {
      if (this.pending.size === 0) return
      const batch = this.pending
      this.pending = new Map()
      this.pendingBytes = 0
      this.uploading = batch
      try {
        const { car, sections } = encodePack(batch.values())
        // Named by when it was begun, so that readers list only the packs begun since they last looked.
        const id = packId(this.clock(), Buffer.from(sha256(car)).toString('hex'))
        await this.bucket.put(`${PACKS}${id}.car`, car, { contentType: 'application/vnd.ipld.car' })
        await this.bucket.put(`${PACKS}${id}.idx`, encodePackIndex(sections))
        this.packsWritten++
        this.loadedPacks.add(id)
        for (const s of sections) {
          const k = key(s.cid)
          this.place(k, { pack: id, offset: s.offset, length: s.length })
        }
        // What was just written is what is read next (a push checks and indexes what it sent).
        for (const [k, b] of batch) this.remember(k, b.bytes)
        // Time for a merged index: list the packs begun since the last listing first, so that
        // it holds them too and tells readers to list from now on, not from when this process
        // last listed (a long-lived writer may have listed hours ago). The pack is written:
        // a failure here must not fail it.
        if (this.mergeDue()) await this.refresh().catch(() => {})
      } catch (e) {
        for (const [k, b] of batch) {
          if (!this.pending.has(k)) {
            this.pending.set(k, b)
            this.pendingBytes += b.bytes.length
          }
        }
        throw e
      } finally {
        this.uploading = new Map()
      }
    })
  }

  async *cids({ prefix = '' }: { prefix?: string } = {}): AsyncIterable<CID> {
    await this.ready()
    const all = new Set<string>([...this.index.keys(), ...this.pending.keys(), ...this.uploading.keys()])
    for (const k of [...all].filter((k) => k.startsWith(prefix)).sort()) yield CID.parse(k)
  }

  /** From the pack indexes, without reading blocks: packs are not compressed, so stored = size. */
  async storedSizes(cids: readonly CID[]): Promise<(BlockSizes | undefined)[]> {
    await this.ready()
    return cids.map((cid) => {
      const k = key(cid)
      const waiting = this.pending.get(k) ?? this.uploading.get(k)
      if (waiting) return { size: waiting.bytes.length, stored: waiting.bytes.length }
      const at = this.index.get(k)
      if (!at) return undefined
      const body = at.length - varintLength(at.length) - cid.bytes.length
      return { size: body, stored: body }
    })
  }

  /** Load every pack index now (opening does it lazily); returns how many packs are known. */
  async load(): Promise<number> {
    await this.ready()
    return this.loadedPacks.size
  }

  private ready(): Promise<void> {
    this.loaded ??= this.refresh().catch((e) => {
      this.loaded = undefined
      throw e
    })
    return this.loaded
  }

  /** Wait for a listing of the packs that started at or after `time`. */
  private async refreshAfter(time: number): Promise<void> {
    while (this.listedAt < time) await this.refresh()
  }

  /**
   * List the packs and load the indexes not loaded yet (one refresh at a time).
   *
   * - The first listing takes the merged index under packs/m/ covering most packs (one LIST
   *   of one key, one GET), then lists the packs begun since it was written.
   * - A store without one (fewer packs than `mergeAt`, or written by an older pedigree), a
   *   merged index that cannot be read, or `mode` 'all' lists every pack.
   * - Later listings list only the packs begun since {@link completeBefore}.
   *
   * Then each pack index not known yet is read.
   */
  private refresh(mode: 'new' | 'all' = 'new'): Promise<void> {
    this.refreshing ??= (async () => {
      const started = performance.now()
      const startedClock = this.clock()
      try {
        const listed: string[] = []
        let merged: ({ name: string } & MergedIndexName) | undefined
        const take = (name: string): void => {
          if (name.endsWith('.idx')) {
            listed.push(name.slice(0, -'.idx'.length))
            return
          }
          const m = parseMergedIndexName(name)
          if (m && !this.unreadableMerged.has(name) && (!merged || m.count > merged.count)) merged = { name, ...m }
        }
        let all = mode === 'all'
        if (!all && this.completeBefore === -Infinity) {
          for await (const page of this.bucket.list(PACKS + MERGED_PREFIX, { maxKeys: 1 })) {
            for (const k of page.keys) take(k.slice(PACKS.length))
            break
          }
          const first = merged
          merged = undefined
          if (first?.completeBefore !== undefined && (await this.loadMerged(first.name, first.completeBefore))) this.completeBefore = Math.max(this.completeBefore, first.completeBefore)
          else all = true
        }
        const listing = all
          ? this.bucket.list(PACKS)
          : this.bucket.list(PACKS + PACK_LOG_PREFIX, this.completeBefore === -Infinity ? {} : { startAfter: PACKS + PACK_LOG_PREFIX + timeDigits(this.completeBefore) })
        for await (const page of listing) for (const k of page.keys) take(k.slice(PACKS.length))
        if (merged && merged.count > this.loadedPacks.size) await this.loadMerged(merged.name, merged.completeBefore)
        const fresh = listed.filter((id) => !this.loadedPacks.has(id))
        await pool(fresh, this.concurrency, async (id) => {
          const bytes = await this.bucket.get(`${PACKS}${id}.idx`)
          if (!bytes) return
          const sections = decodePackIndex(this.bucket.fullKey(`${PACKS}${id}.idx`), bytes)
          if (this.loadedPacks.has(id)) return
          this.loadedPacks.add(id)
          for (const s of sections) {
            const k = key(s.cid)
            this.place(k, { pack: id, offset: s.offset, length: s.length })
          }
        })
        // Packs named before this were visible to this listing (CLOCK_SLACK_MS), so are known now.
        this.completeBefore = Math.max(this.completeBefore, startedClock - CLOCK_SLACK_MS)
        this.listedAt = started
        if (all) this.fullyListedAt = started
        await this.mergeIfMany()
      } finally {
        this.refreshing = undefined
      }
    })()
    return this.refreshing
  }

  /**
   * Load a merged index; one that is gone or unreadable is passed over (the pack indexes are
   * read instead) and false is returned.
   */
  private async loadMerged(name: string, completeBefore: number | undefined): Promise<boolean> {
    let decoded: { packs: string[]; sections: MergedSection[] }
    try {
      const bytes = await this.bucket.get(PACKS + name)
      if (!bytes) {
        this.unreadableMerged.add(name)
        return false
      }
      decoded = decodeMergedIndex(this.bucket.fullKey(PACKS + name), bytes)
    } catch {
      this.unreadableMerged.add(name)
      return false
    }
    for (const s of decoded.sections) this.place(s.key, { pack: s.pack, offset: s.offset, length: s.length })
    for (const id of decoded.packs) this.loadedPacks.add(id)
    if (decoded.packs.length >= this.mergedPacks) {
      this.mergedPacks = decoded.packs.length
      this.mergedListable = completeBefore !== undefined
    }
    return true
  }

  /**
   * Write a merged index of every pack this process knows when more than `mergeAt` of them are
   * not in the merged index it has (read or written), or when that one is of the older kind
   * (without the time to list from): after a listing, and as a long-lived writer (a server, a
   * daemon) adds packs. It holds every pack named before {@link completeBefore}. A failure (a
   * read-only credential, say) is not an error, and not tried again: readers go on listing
   * every pack and reading the pack indexes one by one.
   */
  private async mergeIfMany(): Promise<void> {
    if (!this.mergeDue()) return
    try {
      const packs = [...this.loadedPacks]
      const sections: MergedSection[] = []
      for (const [k, at] of this.index) sections.push({ key: k, pack: at.pack, offset: at.offset, length: at.length })
      const bytes = encodeMergedIndex(packs, sections)
      const name = mergedIndexName(packs.length, this.completeBefore, Buffer.from(sha256(bytes)).toString('hex'))
      await this.bucket.put(PACKS + name, bytes, { contentType: 'application/octet-stream' })
      this.mergedPacks = packs.length
      this.mergedListable = true
      this.mergesWritten++
    } catch {
      // Derived data: nothing is lost.
      this.mergeFailed = true
    }
  }

  private mergeDue(): boolean {
    if (this.mergeFailed || this.completeBefore === -Infinity || this.loadedPacks.size <= this.mergeAt) return false
    return !this.mergedListable || this.loadedPacks.size - this.mergedPacks > this.mergeAt
  }

  /** Fetch sections from packs: per pack, nearby sections in one ranged GET, several GETs at once. */
  private async read(reads: { i: number; cid: CID; at: Location }[], out: (Uint8Array | undefined)[]): Promise<void> {
    if (reads.length === 0) return
    const byPack = new Map<string, typeof reads>()
    for (const r of reads) {
      const list = byPack.get(r.at.pack)
      if (list) list.push(r)
      else byPack.set(r.at.pack, [r])
    }
    const spans: { pack: string; start: number; end: number; reads: typeof reads }[] = []
    for (const [pack, list] of byPack) {
      list.sort((a, b) => a.at.offset - b.at.offset)
      let span: (typeof spans)[number] | undefined
      for (const r of list) {
        const end = r.at.offset + r.at.length
        if (span && r.at.offset - span.end <= READ_GAP && end - span.start <= READ_SPAN) {
          span.end = Math.max(span.end, end)
          span.reads.push(r)
        } else {
          span = { pack, start: r.at.offset, end, reads: [r] }
          spans.push(span)
        }
      }
    }
    // Walks read one block at a time (log, lineage, indexing what a push sent): fetch ahead.
    const ahead = spans.length <= this.concurrency
    await pool(spans, this.concurrency, async (span) => {
      const objectKey = `${PACKS}${span.pack}.car`
      const want = ahead ? Math.max(span.end - span.start, READ_AHEAD) : span.end - span.start
      // A range past the end of the object is cut at its end by the server.
      const bytes = (await this.bucket.get(objectKey, { offset: span.start, length: want })) ?? new Uint8Array(0)
      for (const r of span.reads) {
        const from = r.at.offset - span.start
        const section = bytes.subarray(from, Math.min(bytes.length, from + r.at.length))
        out[r.i] = blockOfSection(r.cid, this.bucket.fullKey(objectKey), section, r.at.length)
      }
      if (bytes.length > span.end - span.start) this.keepAhead(span.pack, span.start, span.end, bytes)
    })
  }

  /**
   * Keep the whole sections that follow `end` in bytes read from `start` of a pack, for blocks
   * whose index entry names exactly that place (any other section is left alone).
   */
  private keepAhead(pack: string, start: number, end: number, bytes: Uint8Array): void {
    let at = end - start
    while (at < bytes.length) {
      let body: number
      let used: number
      try {
        ;[body, used] = varint.decode(bytes, at)
      } catch {
        return
      }
      if (at + used + body > bytes.length || body < 36) return
      let cid: CID
      try {
        cid = CID.decodeFirst(bytes.subarray(at + used))[0] as CID
      } catch {
        return
      }
      const k = key(cid)
      const loc = this.index.get(k)
      if (loc && loc.pack === pack && loc.offset === start + at && loc.length === used + body && !this.cache.has(k)) {
        this.remember(k, bytes.slice(at + used + cid.bytes.length, at + used + body))
      }
      at += used + body
    }
  }

  private remember(k: string, bytes: Uint8Array): void {
    if (bytes.length > CACHE_BYTES / 8) return
    const old = this.cache.get(k)
    if (old) this.cacheBytes -= old.length
    this.cache.delete(k)
    this.cache.set(k, bytes)
    this.cacheBytes += bytes.length
    for (const [victim, b] of this.cache) {
      if (this.cacheBytes <= CACHE_BYTES) break
      this.cache.delete(victim)
      this.cacheBytes -= b.length
    }
  }
}

function varintLength(sectionLength: number): number {
  // The section's length prefix encodes (sectionLength - its own size): at most 5 bytes for a block.
  for (let n = 1; n <= 5; n++) if (sectionLength - n < 2 ** (7 * n)) return n
  return 5
}
