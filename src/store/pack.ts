import { mkdir, open, readdir, stat, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { CID } from '../codec/cid.js'
import type { Encoding } from '../codec/compress.js'
import { CorruptBlockError, StoreError } from '../errors.js'

/**
 * Pack files: large blocks appended to a few big files instead of each being a LevelDB value
 * (which LevelDB would copy into its log, then into a table, then again at every compaction).
 *
 * Layout, under `<root>/packs/`:
 *
 *     pack-000001.dat, pack-000002.dat, …   append-only; a new one starts past `target` bytes
 *     header  16 bytes   "PDGPACK\n", u32 format (1), u32 reserved (0)
 *     record  u8 n, n bytes CID (binary), u8 encoding, u32 size, u32 stored length,
 *             then the stored bytes                                   (integers big-endian)
 *
 * Each record carries its CID, so a pack alone says what it holds (an index could be rebuilt
 * from the packs). The index lives elsewhere (LevelDB, beside small blocks): CID → pack,
 * offset of the stored bytes, stored length, size, encoding. Its owner also records where the
 * current pack ends, in the same atomic batch as the index entries; this module trusts that
 * record at open and nothing else.
 *
 * Crash safety (DESIGN.md, invariant 2) is shared with the index's owner: appended bytes are
 * made durable by {@link PackFiles.sync} (fdatasync of every pack written since the last sync)
 * before the index entries that make them findable are written, and those before any ref that
 * reaches them. A crash in between leaves bytes past the recorded end that nothing indexes:
 * {@link PackFiles.open} cuts the current pack back to the recorded end and deletes packs
 * numbered after it (created, never indexed). A pack shorter than the recorded end (a damaged
 * disk) is left as it is, its missing blocks read as corrupt, and new records go to a new
 * pack, so nothing indexed is ever overwritten.
 */

export const PACKS_DIRNAME = 'packs'
const MAGIC = 'PDGPACK\n'
const FORMAT = 1
export const PACK_HEADER_BYTES = 16
/** Blocks read with one positioned read when at most this far apart in a pack. */
const COALESCE_GAP = 64 * 1024
/** Longest single read when coalescing. */
const MAX_READ = 16 * 1024 * 1024
/** Pack files kept open for reading. */
const MAX_OPEN_READERS = 16
/** Buffers per writev call (under IOV_MAX = 1024). */
const MAX_IOV = 512

/** Where a block's stored bytes are. */
export interface PackLocation {
  pack: number
  /** Offset of the stored bytes (after the record header) in the pack. */
  offset: number
  /** Length of the stored bytes. */
  stored: number
  /** Length of the block. */
  size: number
  encoding: Encoding
}

/** The current pack and where its next record goes: what the index's owner records. */
export interface PackState {
  pack: number
  end: number
}

/** What a sync must cover: the packs written since the last one, and the state it makes durable. */
export interface SyncPoint {
  state: PackState
  handles: FileHandle[]
  /** The packs already retired when the point was taken: no byte can be appended to them since, so the sync may close them. */
  retired: FileHandle[]
}

/** A block to append, already encoded for storage. */
export interface PackRecord {
  cid: CID
  encoding: Encoding
  size: number
  bytes: Uint8Array
}

export const packFileName = (pack: number): string => `pack-${String(pack).padStart(6, '0')}.dat`
const packNumber = (name: string): number | undefined => {
  const m = /^pack-(\d{6,})\.dat$/.exec(name)
  return m ? Number(m[1]) : undefined
}

/**
 * The pack files of one store. Appends must be serialised by the caller (one at a time);
 * reads may run at any time, concurrently with an append.
 */
export class PackFiles {
  private writer?: { pack: number; fh: FileHandle }
  /** Packs rolled over since the last sync: still to be made durable, then closed. */
  private retired: FileHandle[] = []
  /** Whether the current writer has bytes not yet covered by a sync. */
  private dirty = false
  /** True when the next append must start a new pack (none yet, or the current one is damaged). */
  private mustRoll: boolean
  private readonly readers = new Map<number, { fh: Promise<FileHandle>; users: number }>()
  private closed = false

  private constructor(
    readonly dir: string,
    private state: PackState,
    mustRoll: boolean,
    private readonly target: number,
  ) {
    this.mustRoll = mustRoll
  }

  /**
   * Open the packs under `root`, given the state the index recorded last (undefined: no block
   * was ever packed), discarding whatever a crash left past it.
   */
  static async open(root: string, recorded: PackState | undefined, { target }: { target: number }): Promise<PackFiles> {
    const dir = join(root, PACKS_DIRNAME)
    const created = await mkdir(dir, { recursive: true })
    if (created) await syncDir(root)
    const current = recorded?.pack ?? 0
    let removed = false
    for (const name of await readdir(dir)) {
      const n = packNumber(name)
      if (n !== undefined && n > current) {
        await unlink(join(dir, name))
        removed = true
      }
    }
    if (removed) await syncDir(dir)
    if (!recorded) return new PackFiles(dir, { pack: 0, end: 0 }, true, target)
    const path = join(dir, packFileName(recorded.pack))
    const size = await stat(path).then(
      (s) => s.size,
      () => -1,
    )
    if (size < recorded.end) return new PackFiles(dir, recorded, true, target)
    if (size > recorded.end) {
      const fh = await open(path, 'r+')
      try {
        await fh.truncate(recorded.end)
        await fh.datasync()
      } finally {
        await fh.close()
      }
    }
    return new PackFiles(dir, { ...recorded }, false, target)
  }

  /**
   * Append records (written, not yet durable: see {@link sync}). Returns where each record's
   * stored bytes are. On failure the state is as before the call. Appends must not overlap.
   */
  async append(records: readonly PackRecord[]): Promise<PackLocation[]> {
    if (this.closed) throw new StoreError(`the store is closed; cannot append to ${this.dir}`, { location: this.dir })
    const before = { ...this.state }
    const mustRollBefore = this.mustRoll
    try {
      const locations: PackLocation[] = []
      let group: Uint8Array[] = []
      let groupStart = this.state.end
      for (const r of records) {
        const header = recordHeader(r)
        const need = header.length + r.bytes.length
        if (this.mustRoll || (this.state.end + need > this.target && this.state.end > PACK_HEADER_BYTES)) {
          await this.writeGroup(group, groupStart)
          group = []
          await this.roll()
          groupStart = this.state.end
        }
        group.push(header, r.bytes)
        locations.push({ pack: this.state.pack, offset: this.state.end + header.length, stored: r.bytes.length, size: r.size, encoding: r.encoding })
        this.state.end += need
      }
      await this.writeGroup(group, groupStart)
      return locations
    } catch (e) {
      this.reset(before, mustRollBefore)
      throw new StoreError(`cannot append to the pack files in ${this.dir}: ${(e as Error).message}`, { location: this.dir }, { cause: e })
    }
  }

  /**
   * Where appends have reached, and what must be made durable for everything appended so far
   * to be: call it between appends, then `sync` the point (appends may go on meanwhile) before
   * recording its state with the index entries.
   */
  syncPoint(): SyncPoint {
    const retired = [...this.retired]
    const handles = [...retired]
    if (this.writer && this.dirty) handles.push(this.writer.fh)
    this.dirty = false
    return { state: { ...this.state }, handles, retired }
  }

  /** Make a sync point durable (fdatasync of each pack it names), then close the packs it retired. */
  async sync(point: SyncPoint): Promise<void> {
    for (const fh of point.handles) await fh.datasync()
    // Only packs retired before the point: the pack being written at the point may have had
    // bytes appended since (then been retired), which the next sync point must still cover.
    const done = new Set(point.retired)
    const closing = this.retired.filter((fh) => done.has(fh))
    this.retired = this.retired.filter((fh) => !done.has(fh))
    await Promise.all(closing.map((fh) => fh.close()))
  }

  private reset(state: PackState, mustRoll: boolean): void {
    this.state = { ...state }
    this.mustRoll = mustRoll
  }

  /** The stored bytes at each location, in order (adjacent records are read together). */
  async read(cids: readonly string[], locations: readonly PackLocation[]): Promise<Uint8Array[]> {
    const out = new Array<Uint8Array>(locations.length)
    const order = locations.map((_, i) => i).sort((a, b) => locations[a]!.pack - locations[b]!.pack || locations[a]!.offset - locations[b]!.offset)
    const runs: number[][] = []
    for (const i of order) {
      const run = runs[runs.length - 1]
      const last = run ? locations[run[run.length - 1]!]! : undefined
      const first = run ? locations[run[0]!]! : undefined
      const loc = locations[i]!
      if (
        run &&
        last!.pack === loc.pack &&
        loc.offset >= last!.offset &&
        loc.offset - (last!.offset + last!.stored) <= COALESCE_GAP &&
        loc.offset + loc.stored - first!.offset <= MAX_READ
      ) {
        run.push(i)
      } else {
        runs.push([i])
      }
    }
    await Promise.all(
      runs.map(async (run) => {
        const first = locations[run[0]!]!
        const end = Math.max(...run.map((i) => locations[i]!.offset + locations[i]!.stored))
        const buf = await this.readRange(first.pack, first.offset, end - first.offset, cids[run[0]!]!)
        for (const i of run) {
          const loc = locations[i]!
          const from = loc.offset - first.offset
          if (from + loc.stored > buf.length) {
            throw new CorruptBlockError(cids[i]!, `pack ${packFileName(loc.pack)} ends before the block's bytes (offset ${loc.offset}, ${loc.stored} bytes)`)
          }
          out[i] = buf.subarray(from, from + loc.stored)
        }
      }),
    )
    return out
  }

  /** Close every open pack file. */
  async close(): Promise<void> {
    this.closed = true
    const handles = [...this.readers.values()].map((r) => r.fh)
    this.readers.clear()
    await Promise.all(handles.map((h) => h.then((fh) => fh.close()).catch(() => {})))
    const w = this.writer
    this.writer = undefined
    const retired = this.retired
    this.retired = []
    await Promise.all([w?.fh.close(), ...retired.map((fh) => fh.close())])
  }

  // ---------------------------------------------------------------------------------

  private async writeGroup(buffers: Uint8Array[], position: number): Promise<void> {
    if (buffers.length === 0) return
    const fh = await this.writerHandle()
    let pos = position
    for (let i = 0; i < buffers.length; i += MAX_IOV) {
      const part = buffers.slice(i, i + MAX_IOV)
      const want = part.reduce((n, b) => n + b.length, 0)
      const { bytesWritten } = await fh.writev(part as NodeJS.ArrayBufferView[], pos)
      if (bytesWritten !== want) throw new Error(`short write: ${bytesWritten} of ${want} bytes`)
      pos += want
    }
    this.dirty = true
  }

  private async writerHandle(): Promise<FileHandle> {
    if (this.writer && this.writer.pack === this.state.pack) return this.writer.fh
    this.retireWriter()
    const fh = await open(join(this.dir, packFileName(this.state.pack)), 'r+')
    this.writer = { pack: this.state.pack, fh }
    return fh
  }

  /** Start the next pack: created empty (truncating what an interrupted roll left), header durable, directory entry durable. */
  private async roll(): Promise<void> {
    if (this.closed) throw new Error('the store is closed')
    const pack = this.state.pack + 1
    this.retireWriter()
    const fh = await open(join(this.dir, packFileName(pack)), 'w+')
    try {
      const header = new Uint8Array(PACK_HEADER_BYTES)
      header.set(new TextEncoder().encode(MAGIC), 0)
      new DataView(header.buffer).setUint32(8, FORMAT)
      await fh.write(header, 0, header.length, 0)
      await fh.datasync()
      await syncDir(this.dir)
    } catch (e) {
      await fh.close().catch(() => {})
      throw e
    }
    this.writer = { pack, fh }
    this.state = { pack, end: PACK_HEADER_BYTES }
    this.mustRoll = false
  }

  /**
   * Stop appending to the current pack. It is closed once a sync has covered it (never at
   * once: a sync point taken earlier may still be about to fdatasync it).
   */
  private retireWriter(): void {
    if (this.writer) this.retired.push(this.writer.fh)
    this.writer = undefined
    this.dirty = false
  }

  private async readRange(pack: number, offset: number, length: number, cid: string): Promise<Buffer> {
    const reader = this.acquire(pack)
    try {
      let fh: FileHandle
      try {
        fh = await reader.fh
      } catch (e) {
        this.readers.delete(pack)
        throw new CorruptBlockError(cid, `cannot open ${packFileName(pack)}: ${(e as Error).message}`, { cause: e })
      }
      const buf = Buffer.allocUnsafe(length)
      let got = 0
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got)
        if (bytesRead === 0) break
        got += bytesRead
      }
      return got === length ? buf : buf.subarray(0, got)
    } finally {
      reader.users--
    }
  }

  private acquire(pack: number): { fh: Promise<FileHandle>; users: number } {
    if (this.closed) throw new StoreError(`the store is closed; cannot read ${packFileName(pack)}`, { location: this.dir })
    let reader = this.readers.get(pack)
    if (!reader) {
      if (this.readers.size >= MAX_OPEN_READERS) {
        for (const [n, r] of this.readers) {
          if (r.users > 0) continue
          this.readers.delete(n)
          r.fh.then((fh) => fh.close()).catch(() => {})
          break
        }
      }
      reader = { fh: open(join(this.dir, packFileName(pack)), 'r'), users: 0 }
      reader.fh.catch(() => {})
      this.readers.set(pack, reader)
    } else {
      // Most recently used last, so eviction takes the least recently used idle one.
      this.readers.delete(pack)
      this.readers.set(pack, reader)
    }
    reader.users++
    return reader
  }
}

function recordHeader(r: PackRecord): Uint8Array {
  const cid = r.cid.bytes
  const header = new Uint8Array(1 + cid.length + 1 + 4 + 4)
  const view = new DataView(header.buffer)
  header[0] = cid.length
  header.set(cid, 1)
  header[1 + cid.length] = r.encoding
  view.setUint32(2 + cid.length, r.size)
  view.setUint32(6 + cid.length, r.bytes.length)
  return header
}

/** Make a directory's entries (a created or removed file) durable. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}
