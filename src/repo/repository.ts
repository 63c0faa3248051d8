import { readFile, stat, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import type { CID } from '../codec/cid.js'
import { decodeBlock } from '../codec/block.js'
import { NotFoundError, PedigreeError, StoreLockedError } from '../errors.js'
import { checkCommit, type Commit } from '../model/commit.js'
import { ProllyTree } from '../model/tree.js'
import { Refs } from '../refs/refs.js'
import { DAEMON_FILE } from '../store/daemon-file.js'
import { openLevelStore, type LevelStoreOptions } from '../store/level.js'
import { openMemoryStore } from '../store/memory.js'
import type { Store } from '../store/store.js'
import type { S3StoreOptions } from '../store/s3/store.js'
import { isS3Url } from '../store/s3/url.js'
import type { ReflogEntry } from '../refs/refs.js'
import type { CheckoutOptions, CheckoutResult } from './checkout.js'
import type { CommitOptions, CommitResult } from './commit.js'
import type { DiffItem, DiffOptions } from './diff.js'
import type { FsckOptions, FsckResult } from './fsck.js'
import { log, type LogEntry, type LogOptions } from './log.js'
import { ls, type LsEntry, type LsOptions } from './ls.js'
import { resolveCommit, resolveEntry, refNameFor, shadowedTag, type ResolvedCommit, type ResolvedEntry } from './resolve.js'
import { deleteRef, setRef, type SetRefOptions } from './set-ref.js'
import type { ShowOptions, ShowResult } from './show.js'
import type { TagOptions, TagResult } from './tag.js'
import type { IngestOptions, IngestResult } from './ingest.js'
import type { LineageOptions } from './lineage.js'
import type { LineageGraph } from './lineage-graph.js'
import type { InvalidateOptions, InvalidateResult } from './invalidate.js'
import type { TaintedEntry, TaintedOptions } from './tainted.js'
import type { ExportProvOptions } from './export-prov.js'
import type { ProvJson } from './prov.js'
import type { QueryOptions, QueryRow } from './query.js'
import type { DuOptions, DuResult } from './du.js'
import type { RecordValue } from '../model/record.js'
import type { Person } from '../model/commit.js'
import { makeDirs } from '../util/make-dirs.js'

/** Name of the folder that holds a store, found upward from the working directory. */
export const STORE_DIRNAME = '.pedigree'
/** The file that marks a folder as a pedigree store (it holds the format version). */
export const FORMAT_FILE = 'FORMAT'
const FORMAT = 'pedigree store format 1\n'
/** In a `.pedigree` folder whose store lives elsewhere (S3): the store's URL. */
const STORE_FILE = 'STORE'

export interface OpenOptions extends LevelStoreOptions {
  /** How to reach a store in S3 (default: the usual AWS environment). */
  s3?: S3StoreOptions
  /**
   * False: open a local store's LevelDB directly even when a `pedigree daemon` (or `pedigree
   * serve`) announces itself in the store's DAEMON file (the daemon itself does, and tests).
   * Default true: route every call through the daemon when one answers (docs/daemon.md).
   */
  daemon?: boolean
}

/** What `Repository.init` may do beyond opening. */
export interface InitOptions extends OpenOptions {
  /**
   * Keep the blocks and refs at this URL (`s3://bucket/prefix`, created there) and only a
   * pointer to it in the `.pedigree` folder, so that commands run in that folder use it.
   */
  store?: string
}

/**
 * A pedigree repository: a store (blocks, refs, config) and the operations on it.
 * Each operation lives in its own module under src/repo/; the methods here are the
 * typed library surface over them.
 *
 * @example
 * const repo = await Repository.init('/data/.pedigree')
 * await repo.commit({ ref: 'main', message: 'first run', author: { name: 'beamline-7' },
 *   edits: [{ type: 'record', path: 'runs/1.json', value: { loss: 0.31 } }] })
 * for await (const entry of repo.log({ from: 'main' })) console.log(entry.commit.message)
 * await repo.close()
 */
export class Repository {
  readonly refs: Refs
  readonly trees: ProllyTree

  constructor(readonly store: Store) {
    this.refs = new Refs(store.refs)
    this.trees = new ProllyTree(store.blocks)
  }

  get blocks(): Store['blocks'] {
    return this.store.blocks
  }

  /** Where the store lives (a directory, or `memory:`). */
  get location(): string {
    return this.store.location
  }

  /**
   * Create a store in `dir` (the `.pedigree` folder itself, or an `s3://bucket/prefix` URL).
   * With `store`, the blocks and refs go to that URL and `dir` only points at it. Refuses if
   * a store is already there.
   */
  static async init(dir: string, options: InitOptions = {}): Promise<Repository> {
    if (isS3Url(dir)) return Repository.initS3(dir, options)
    const root = resolve(dir)
    if (existsSync(join(root, FORMAT_FILE))) {
      throw new PedigreeError('ERR_EXISTS', `a pedigree store already exists at ${root}`, { location: root })
    }
    if (options.store !== undefined) {
      // The remote store first: if it cannot be created, nothing is left behind here.
      const repo = await Repository.initS3(options.store, options)
      try {
        await makeDirs(root, 'store folder')
        await writeFile(join(root, STORE_FILE), `${repo.location}\n`)
        await writeFile(join(root, FORMAT_FILE), FORMAT)
      } catch (e) {
        await repo.close().catch(() => {})
        throw e
      }
      return repo
    }
    await makeDirs(root, 'store folder')
    const store = await openLevelStore(root, options)
    await writeFile(join(root, FORMAT_FILE), FORMAT)
    const repo = new Repository(store)
    await repo.trees.empty()
    return repo
  }

  /**
   * Open the store in `dir` (the `.pedigree` folder, a folder that contains one, or an
   * `s3://bucket/prefix` URL). A `.pedigree` folder made by `init` with `store` opens the
   * store it points at.
   */
  static async open(dir: string, options: OpenOptions = {}): Promise<Repository> {
    if (isS3Url(dir)) return Repository.openS3(dir, options)
    const root = await storeRoot(resolve(dir))
    const pointer = join(root, STORE_FILE)
    if (existsSync(pointer)) return Repository.openS3((await readFile(pointer, 'utf8')).trim(), options)
    if (options.daemon === false) return new Repository(await openLevelStore(root, options))
    const served = await Repository.openThroughDaemon(root)
    if (served) return served
    try {
      return new Repository(await openLevelStore(root, options))
    } catch (e) {
      // A daemon may have taken the store while we waited for its lock: go through it then.
      if (e instanceof StoreLockedError) {
        const late = await Repository.openThroughDaemon(root)
        if (late) return late
      }
      throw e
    }
  }

  /**
   * The store at `root` through the daemon its DAEMON file names, if that file is current and
   * the daemon answers; undefined otherwise (no daemon, a stale file from one that was killed,
   * one that does not answer), and the caller opens the store itself.
   */
  private static async openThroughDaemon(root: string): Promise<Repository | undefined> {
    // The client (and node:http) is loaded only when a daemon announced itself.
    if (!existsSync(join(root, DAEMON_FILE))) return undefined
    const { openDaemonStore, readDaemonFile } = await import('../store/daemon.js')
    const info = await readDaemonFile(root)
    if (!info) return undefined
    try {
      return new Repository(await openDaemonStore(info.socket, root))
    } catch {
      return undefined
    }
  }

  private static async initS3(url: string, options: OpenOptions): Promise<Repository> {
    const { initS3Store } = await import('../store/s3/store.js')
    const repo = new Repository(await initS3Store(url, options.s3))
    try {
      await repo.trees.empty()
    } catch (e) {
      await repo.close().catch(() => {})
      throw e
    }
    return repo
  }

  private static async openS3(url: string, options: OpenOptions): Promise<Repository> {
    // The AWS SDK is loaded only here: commands on a local store never pay for it.
    const { openS3Store } = await import('../store/s3/store.js')
    return new Repository(await openS3Store(url, options.s3))
  }

  /** A repository in memory (tests, scratch work). */
  static memory(): Repository {
    return new Repository(openMemoryStore())
  }

  /** The nearest `.pedigree` folder at or above `start`, or undefined. */
  static find(start: string): string | undefined {
    let dir = resolve(start)
    for (;;) {
      const candidate = join(dir, STORE_DIRNAME)
      if (existsSync(join(candidate, FORMAT_FILE))) return candidate
      const parent = dirname(dir)
      if (parent === dir) return undefined
      dir = parent
    }
  }

  async close(): Promise<void> {
    await this.store.close()
  }

  /** Read and verify one block, decoding dag-cbor. */
  async readNode<T = unknown>(cid: CID): Promise<T> {
    return decodeBlock<T>(cid, await this.blocks.get(cid))
  }

  /** Read, verify and check the shape of a commit. */
  async readCommit(cid: CID): Promise<Commit> {
    return checkCommit(cid, await this.readNode(cid))
  }

  // The operations, each implemented in its own module (see there for details). Verbs other
  // than log, resolve and refs are imported when first called, so that every command loads
  // only the modules it uses (start-up is most of the time of a short command such as log).

  /** Store files and records and advance a ref to a new commit. */
  async commit(options: CommitOptions): Promise<CommitResult> {
    const { commit } = await import('./commit.js')
    return commit(this, options)
  }
  /** Commits reachable from a revision, newest first. */
  log(options?: LogOptions): AsyncGenerator<LogEntry> {
    return log(this, options)
  }
  /** A commit and its changes, or the record or file at `<rev>:<path>`. */
  async show(rev: string, options?: ShowOptions): Promise<ShowResult> {
    const { show } = await import('./show.js')
    return show(this, rev, options)
  }
  /** Entries of a revision's tree. */
  ls(rev: string, options?: LsOptions): AsyncGenerator<LsEntry> {
    return ls(this, rev, options)
  }
  /** Changes between two revisions. */
  async *diff(a: string, b: string, options?: DiffOptions): AsyncGenerator<DiffItem> {
    const { diff } = await import('./diff.js')
    yield* diff(this, a, b, options)
  }
  /** Write a revision's files and records into a directory. */
  async checkout(rev: string, options: CheckoutOptions): Promise<CheckoutResult> {
    const { checkout } = await import('./checkout.js')
    return checkout(this, rev, options)
  }
  /** Verify everything reachable from every ref and reflog entry. */
  async fsck(options?: FsckOptions): Promise<FsckResult> {
    const { fsck } = await import('./fsck.js')
    return fsck(this, options)
  }
  /** Name a commit under `tags/`. */
  async tag(name: string, rev: string, options: TagOptions): Promise<TagResult> {
    const { tag } = await import('./tag.js')
    return tag(this, name, rev, options)
  }
  /** Point a ref at a revision. */
  setRef(name: string, rev: string, options: SetRefOptions): Promise<{ ref: string; old: CID | null; new: CID }> {
    return setRef(this, name, rev, options)
  }
  /** Delete a ref (its reflog remains). */
  deleteRef(name: string, options: SetRefOptions): Promise<{ ref: string; old: CID }> {
    return deleteRef(this, name, options)
  }
  /** The reflog of a ref, newest first. */
  async reflog(name: string): Promise<ReflogEntry[]> {
    return this.refs.reflog(await refNameFor(this, name))
  }
  /** Resolve a revision (`main~2`, `tags/v1`, a CID prefix, `main@{1}`) to a commit. */
  resolve(rev: string): Promise<ResolvedCommit> {
    return resolveCommit(this, rev)
  }
  /** Commit a stream of records (JSON Lines text or objects) in batches. */
  async ingest(source: AsyncIterable<string | RecordValue>, options: IngestOptions): Promise<IngestResult> {
    const { ingest } = await import('./ingest.js')
    return ingest(this, source, options)
  }
  /**
   * Commit one record at `path` on `ref` (a workflow step recording what it did).
   *
   * @example
   * await repo.record('tasks/7.json', { type: 'task', used: inputCid, loss: 0.1 }, { ref: 'main', author: { name: 'parsl' } })
   */
  async record(path: string, value: RecordValue, options: { ref?: string; author: Person; message?: string; meta?: Record<string, unknown> }): Promise<CommitResult> {
    const { commit } = await import('./commit.js')
    return commit(this, {
      ref: options.ref ?? 'main',
      author: options.author,
      message: options.message ?? `record ${path}`,
      meta: options.meta,
      edits: [{ type: 'record', path, value }],
    })
  }
  /** The provenance graph around `<rev>:<path>` (or a CID), upstream, downstream or both. */
  async lineage(spec: string, options?: LineageOptions): Promise<LineageGraph> {
    const { lineage } = await import('./lineage.js')
    return lineage(this, spec, options)
  }
  /** Declare a node wrong (append-only); everything downstream becomes tainted. */
  async invalidate(spec: string, options: InvalidateOptions): Promise<InvalidateResult> {
    const { invalidate } = await import('./invalidate.js')
    return invalidate(this, spec, options)
  }
  /** Entries of a revision that are invalidated or derived from something invalidated. */
  async tainted(rev?: string, options?: TaintedOptions): Promise<TaintedEntry[]> {
    const { tainted } = await import('./tainted.js')
    return tainted(this, rev, options)
  }
  /** Drop and rebuild the derived indexes (reverse links, paths) from blocks and refs. */
  async rebuildIndex(options?: { onProgress?: (commits: number) => void }): Promise<number> {
    const { rebuildIndex } = await import('./link-index.js')
    return rebuildIndex(this, options)
  }
  /** The W3C PROV-JSON document of a revision's records and files (or those under `paths`). */
  async exportProv(rev: string, options?: ExportProvOptions): Promise<ProvJson> {
    const { exportProv } = await import('./export-prov.js')
    return exportProv(this, rev, options)
  }
  /** Find, sort, project and aggregate the records of a revision (MongoDB-style query documents). */
  async *query(rev: string, options?: QueryOptions): AsyncGenerator<QueryRow> {
    const { query } = await import('./query.js')
    yield* query(this, rev, options)
  }
  /** Logical versus stored bytes per ref and for the whole store. */
  async du(options?: DuOptions): Promise<DuResult> {
    const { du } = await import('./du.js')
    return du(this, options)
  }
  /** Resolve `<rev>:<path>` to a tree entry. */
  resolveEntry(spec: string): Promise<ResolvedEntry> {
    return resolveEntry(this, spec)
  }
  /** The tag `rev` does not mean because a ref has its name (`tags/v1` for `v1`), if any. */
  shadowedTag(rev: string): Promise<string | undefined> {
    return shadowedTag(this, rev)
  }
}

/** The `.pedigree` folder that `dir` is or contains; NotFoundError if neither. */
export async function storeRoot(dir: string): Promise<string> {
  if (existsSync(join(dir, FORMAT_FILE))) return dir
  if (existsSync(join(dir, STORE_DIRNAME, FORMAT_FILE))) return join(dir, STORE_DIRNAME)
  const exists = await stat(dir).then(
    () => true,
    () => false,
  )
  throw new NotFoundError('pedigree store', dir, exists ? 'the folder is not a pedigree store; run `pedigree init`' : 'no such folder; run `pedigree init`')
}

export async function readFormat(dir: string): Promise<string> {
  return readFile(join(dir, FORMAT_FILE), 'utf8')
}
