import type { Stats } from 'node:fs'
import { lstat, open, readFile as readWholeFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { CID, DAG_CBOR, MAX_BLOCK_SIZE, cidToString } from '../codec/cid.js'
import { EncodedRecord, decodeBlock, encodeNode, encodeRecord, linkList, rawBlock, verifyBlock, type Block } from '../codec/block.js'
import { ConflictError, InvalidInputError, NotFoundError, PedigreeError, RefusedError, StoreError } from '../errors.js'
import { checkPerson, commitNode, type Commit, type Person } from '../model/commit.js'
import { readLocalFile, writeFile } from '../model/file.js'
import { headerLength, parseSafetensors, tensorCutPoints } from '../model/safetensors.js'
import type { RecordValue } from '../model/record.js'
import { type TreeEdit, type TreeEntry } from '../model/tree.js'
import { isStoreFolderName, validateTreePath } from '../model/tree-path.js'
import { TAG_PREFIX, checkRefName } from '../refs/ref-name.js'
import type { Repository } from './repository.js'
import { indexCommit } from './link-index.js'

/** One change to the tree of the new commit. */
export type CommitEdit =
  /** A file or a directory (recursively) from the local file system, stored at `path` (or under it). */
  | { type: 'file'; path: string; source: string }
  /** Bytes given in memory. */
  | { type: 'bytes'; path: string; bytes: Uint8Array }
  /** Bytes from a stream (stdin, a network body), stored as they arrive. */
  | { type: 'stream'; path: string; stream: AsyncIterable<Uint8Array> }
  /**
   * A record (a JSON-compatible map, CIDs for links). `block`, when the caller has it already
   * (ingest encodes each record to name its path), is the record's encoding, `encodeNode(value)`:
   * it is stored as given, which saves encoding the record twice. A block alone (no value) is
   * a record already encoded as dag-cbor; it is checked against its CID and decoded.
   */
  | { type: 'record'; path: string; value: RecordValue; block?: Block }
  | { type: 'record'; path: string; value?: undefined; block: Block }
  /** Remove the entry at `path`, or every entry under `path/`. */
  | { type: 'remove'; path: string }

export interface CommitProgress {
  phase: 'store' | 'commit'
  bytes: number
  totalBytes?: number
  path?: string
}

export interface CommitOptions {
  /** The ref to advance (created if new). */
  ref: string
  edits: CommitEdit[]
  message?: string
  author: Person
  /** Milliseconds since the epoch (default: now). */
  time?: number
  meta?: Record<string, unknown>
  /** Commit even when the tree does not change. */
  allowEmpty?: boolean
  /** Accept record links to CIDs that are not in the store. */
  allowDangling?: boolean
  /**
   * The ref value the caller based its edits on (null: the ref must be new). When set,
   * a moved ref is a ConflictError. When unset, the edits are re-applied on top of
   * whatever the ref holds, retrying up to `retries` times, so concurrent writers to
   * one ref all land.
   */
  expect?: CID | null
  retries?: number
  onProgress?: (p: CommitProgress) => void
}

export interface CommitResult {
  cid: CID
  ref: string
  commit: Commit
  /** The previous value of the ref (null if it was created). */
  parent: CID | null
  changes: { added: number; modified: number; removed: number }
  /**
   * Entries of committed folders that were not committed: symbolic links and special files (a
   * link may lead outside the folder; commit the file it names with its own DEST=SRC), and
   * stores' `.pedigree` folders. Paths are as in the tree.
   */
  skipped: SkippedSource[]
}

/** An entry of a committed folder left out of the commit, and why. */
export interface SkippedSource {
  path: string
  reason: 'symlink' | 'special file' | 'store folder'
}

/**
 * Store the contents named by `edits`, build the new tree on top of the ref's current
 * tree, write the commit, and compare-and-swap the ref to it. Blocks are written before
 * the ref moves, so a crash leaves the ref on a complete DAG.
 *
 * @example
 * await commit(repo, { ref: 'main', author: { name: 'ana' }, message: 'epoch 3',
 *   edits: [{ type: 'file', path: 'model/weights.pt', source: './weights.pt' }] })
 */
export async function commit(repo: Repository, options: CommitOptions): Promise<CommitResult> {
  const { ref, edits, message = '', author, meta, allowEmpty = false, allowDangling = false, retries = 50, onProgress } = options
  checkRefName(ref)
  checkPerson(author, 'the author')
  if (typeof message !== 'string') throw new InvalidInputError('the commit message is not a string')
  if (options.time !== undefined && !Number.isSafeInteger(options.time)) throw new InvalidInputError(`the commit time ${String(options.time)} is not a whole number of milliseconds since the epoch`)
  if (ref.startsWith(TAG_PREFIX) && (await repo.refs.get(ref))) {
    throw new RefusedError(`refusing to commit on '${ref}': tags do not move (commit on a branch, then \`pedigree tag --force\`)`, { ref })
  }
  const skipped: SkippedSource[] = []
  const plan = await planEdits(edits, { allowEmpty, skipped })
  const written = await storeContents(repo, plan, { allowDangling, onProgress, previous: previousVersions(repo, ref) })
  for (let attempt = 0; ; attempt++) {
    const old = options.expect !== undefined ? options.expect : ((await repo.refs.get(ref)) ?? null)
    const parent = old ? await repo.readCommit(old) : undefined
    const baseTree = parent ? parent.tree : await repo.trees.empty()
    const treeEdits = await expandRemovals(repo, baseTree, written)
    const { root: tree, changes } = await repo.trees.editCounted(baseTree, treeEdits)
    if (tree.equals(baseTree) && !allowEmpty && parent) {
      throw new PedigreeError('ERR_NOTHING_TO_COMMIT', `nothing to commit: the tree of '${ref}' would not change (use --allow-empty)`, { ref })
    }
    const node = commitNode({ tree, parents: old ? [old] : [], author, time: options.time ?? Date.now(), message, meta })
    const block = encodeNode(node)
    await repo.blocks.put(block)
    try {
      await repo.refs.update(ref, { next: block.cid, expect: old, who: author, message: `commit: ${firstLine(message)}` })
    } catch (e) {
      if (e instanceof ConflictError && options.expect === undefined && attempt < retries) {
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 5 * 2 ** attempt)))
        continue
      }
      throw e
    }
    onProgress?.({ phase: 'commit', bytes: 0 })
    // The derived indexes follow the ref; a crash in between is caught up by ensureIndexed.
    await indexCommit(repo, block.cid, written.filter((w): w is Extract<Written, { entry: TreeEntry }> => 'entry' in w))
    return { cid: block.cid, ref, commit: node, parent: old, changes, skipped }
  }
}

type PlannedEdit =
  | { type: 'file'; path: string; source: string; size: number }
  | { type: 'bytes'; path: string; bytes: Uint8Array }
  | { type: 'stream'; path: string; stream: AsyncIterable<Uint8Array> }
  | { type: 'record'; path: string; value: RecordValue; block?: Block }
  | { type: 'record'; path: string; value?: undefined; block: Block }
  | { type: 'remove'; path: string }

/** Check every path and source before anything is written, expanding directories. */
async function planEdits(edits: CommitEdit[], { allowEmpty, skipped }: { allowEmpty: boolean; skipped: SkippedSource[] }): Promise<PlannedEdit[]> {
  const plan: PlannedEdit[] = []
  // A path may be removed and written in one commit (`--rm a a=file` turns the folder `a`
  // into a file); written twice or removed twice, it is a mistake.
  const seen = new Set<string>()
  const add = (e: PlannedEdit): void => {
    validateTreePath(e.path, { removing: e.type === 'remove' })
    const key = `${e.type === 'remove' ? '-' : '+'}${e.path}`
    if (seen.has(key)) throw new InvalidInputError(`path '${e.path}' is given more than once`, { path: e.path })
    seen.add(key)
    plan.push(e)
  }
  for (const e of edits) {
    if (e.type !== 'file') {
      add(e)
      continue
    }
    const info = await stat(e.source).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new NotFoundError('source path', e.source, undefined, { path: e.path })
      throw new InvalidInputError(`cannot read ${e.source}: ${err.message}`, { source: e.source }, { cause: err })
    })
    if (info.isDirectory()) {
      // A folder given the empty path is committed at the root of the tree (`pedigree commit .`).
      const under = (relative: string): string => (e.path === '' ? relative : `${e.path}/${relative}`)
      const files = await listFiles(e.source, '', (relative, reason) => skipped.push({ path: under(relative), reason }))
      if (files.length === 0) throw new InvalidInputError(`directory ${e.source} has no files to commit`, { source: e.source })
      for (const f of files) add({ type: 'file', path: under(f.relative), source: f.absolute, size: f.size })
    } else if (info.isFile()) add({ type: 'file', path: e.path, source: e.source, size: info.size })
    else throw new InvalidInputError(`${e.source} is neither a file nor a directory`, { source: e.source })
  }
  if (plan.length === 0 && !allowEmpty) throw new InvalidInputError('no changes given: name files, records or --rm paths to commit (or use --allow-empty)')
  return plan
}

/**
 * The regular files under `dir`, depth first in name order. Symlinks and special files are
 * skipped (a link could lead outside the folder), and so are stores' `.pedigree` folders (a
 * store's live database is not data, and no tree may hold one); each skip is reported.
 */
async function listFiles(
  dir: string,
  prefix: string,
  skip: (relative: string, reason: SkippedSource['reason']) => void,
): Promise<{ relative: string; absolute: string; size: number }[]> {
  const out: { relative: string; absolute: string; size: number }[] = []
  const names = (await readdir(dir)).sort()
  // lstat a few hundred at a time: one by one, a folder of 20,000 files waits on each in turn.
  const infos: Stats[] = []
  for (let i = 0; i < names.length; i += 256) infos.push(...(await Promise.all(names.slice(i, i + 256).map((name) => lstat(join(dir, name))))))
  for (const [i, name] of names.entries()) {
    const absolute = join(dir, name)
    const info = infos[i]!
    const relative = prefix ? `${prefix}/${name}` : name
    if (isStoreFolderName(name)) skip(relative, 'store folder')
    else if (info.isDirectory()) out.push(...(await listFiles(absolute, relative, skip)))
    else if (info.isFile()) out.push({ relative, absolute, size: info.size })
    else skip(relative, info.isSymbolicLink() ? 'symlink' : 'special file')
  }
  return out
}

type Written = { path: string; entry: TreeEntry; links?: EncodedRecord['links'] } | { path: string; remove: true }

/** A file must be as long when read as when it was listed: otherwise it was being written. */
function checkUnchanged(e: { source: string; size: number }, read: number): void {
  if (read !== e.size) throw new InvalidInputError(`${e.source} changed while it was read (${e.size} bytes before, ${read} read); nothing was committed`, { source: e.source })
}

/** Files up to this size are read whole and stored as one raw block in the commit's batches. */
const SMALL_FILE_BYTES = 64 * 1024
/** Small files read ahead of their turn. */
const SMALL_FILE_READ_AHEAD = 16

/** Write the blocks of every file and record; returns tree edits (removals still unexpanded). */
async function storeContents(
  repo: Repository,
  plan: PlannedEdit[],
  {
    allowDangling,
    onProgress,
    previous,
  }: { allowDangling: boolean; onProgress?: (p: CommitProgress) => void; previous: (path: string) => Promise<CID | undefined> },
): Promise<Written[]> {
  const out: Written[] = []
  const totalBytes = plan.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0)
  let done = 0
  let pending: Block[] = []
  let pendingBytes = 0
  const links = new Map<string, CID>()
  const flush = async (): Promise<void> => {
    if (pending.length) await repo.blocks.putMany(pending)
    pending = []
    pendingBytes = 0
  }
  // Small files are read a few at a time ahead of their turn (each costs an open, a read and
  // a close on libuv's threads: one by one, 20,000 of them mostly wait).
  const smallAhead = new Map<PlannedEdit, Promise<Uint8Array>>()
  const readAhead = (from: number): void => {
    for (let i = from; i < plan.length && smallAhead.size < SMALL_FILE_READ_AHEAD; i++) {
      const e = plan[i]!
      if (e.type === 'file' && e.size <= SMALL_FILE_BYTES && !smallAhead.has(e)) {
        const bytes = readWholeFile(e.source)
        bytes.catch(() => {}) // awaited in its turn
        smallAhead.set(e, bytes)
      }
    }
  }
  for (const [index, e] of plan.entries()) {
    if (e.type === 'remove') {
      out.push({ path: e.path, remove: true })
      continue
    }
    if (e.type === 'file' && e.size <= SMALL_FILE_BYTES) {
      // One raw block, as writeFile makes of any file up to a block: batched with the records.
      readAhead(index)
      const reading = smallAhead.get(e)!
      smallAhead.delete(e)
      readAhead(index + 1)
      const bytes = await reading.catch((err: NodeJS.ErrnoException) => {
        throw new InvalidInputError(`cannot read ${e.source}: ${err.message}`, { path: e.path }, { cause: err })
      })
      checkUnchanged(e, bytes.length)
      const block = rawBlock(bytes)
      pending.push(block)
      pendingBytes += bytes.length
      if (pending.length >= 1000 || pendingBytes >= 4 << 20) await flush()
      done += bytes.length
      onProgress?.({ phase: 'store', bytes: done, totalBytes, path: e.path })
      out.push({ path: e.path, entry: { cid: block.cid, kind: 'file', size: bytes.length } })
      continue
    }
    if (e.type === 'record') {
      // The record is encoded once (here, or by the caller): its CID is its tree entry's.
      const block = recordBlock(e)
      if (!allowDangling) for (const [, cid] of block.links) links.set(cidToString(cid), cid)
      pending.push(block)
      pendingBytes += block.bytes.length
      if (pending.length >= 1000 || pendingBytes >= 4 << 20) await flush()
      out.push({ path: e.path, entry: { cid: block.cid, kind: 'record', size: block.bytes.length }, links: block.links })
      continue
    }
    const base = done
    const progress = (bytes: number): void => onProgress?.({ phase: 'store', bytes: base + bytes, totalBytes, path: e.path })
    let source: AsyncIterable<Uint8Array>
    if (e.type === 'bytes') source = once(e.bytes)
    else if (e.type === 'stream') source = e.stream
    else source = readLocalFile(e.source, { size: e.size })
    let result: { cid: CID; size: number }
    try {
      const cutPoints = await safetensorsCuts(e)
      // Only a file cut into chunks can share them with its previous version as deltas.
      const chunked = e.type === 'stream' || (e.type === 'file' ? e.size : e.bytes.length) > MAX_BLOCK_SIZE
      result = await writeFile(repo.blocks, source, {
        onProgress: progress,
        cutPoints,
        cutPolicy: 'safetensors-tensors',
        previous: chunked ? await previous(e.path) : undefined,
        expectedSize: e.type === 'file' ? e.size : e.type === 'bytes' ? e.bytes.length : undefined,
      })
    } catch (err) {
      if (err instanceof PedigreeError) throw err
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOSPC') throw new StoreError(`disk full while storing ${e.path}; the ref was not moved`, { path: e.path }, { cause: err })
      throw new InvalidInputError(`cannot read ${e.type === 'file' ? e.source : e.path}: ${(err as Error).message}`, { path: e.path }, { cause: err })
    }
    if (e.type === 'file') checkUnchanged(e, result.size)
    done += e.type === 'file' ? e.size : result.size
    out.push({ path: e.path, entry: { cid: result.cid, kind: 'file', size: result.size } })
  }
  await flush()
  if (!allowDangling && links.size > 0) {
    const cids = [...links.values()]
    const present = await repo.blocks.hasMany(cids)
    const missing = cids.filter((_, i) => !present[i])
    if (missing.length > 0) {
      throw new NotFoundError('linked CID', cidToString(missing[0]!), `${missing.length} link(s) point at blocks not in this store; use --allow-dangling to commit anyway`, {
        missing: missing.map(cidToString),
      })
    }
  }
  return out
}

/**
 * The file each path holds at the ref's current head: the version a new file at that path is
 * most likely much like, named to the store as a source of delta bases. A hint only (the ref
 * may move before the commit lands), so any failure to read it is no hint.
 */
function previousVersions(repo: Repository, ref: string): (path: string) => Promise<CID | undefined> {
  let tree: Promise<CID | undefined> | undefined
  return async (path) => {
    tree ??= repo.refs
      .get(ref)
      .then(async (head) => (head ? (await repo.readCommit(head)).tree : undefined))
      .catch(() => undefined)
    const root = await tree
    if (!root) return undefined
    const entry = await repo.trees.get(root, path).catch(() => undefined)
    return entry?.kind === 'file' ? entry.cid : undefined
  }
}

/**
 * A record edit's block with its links. pedigree's own encoding is stored as it is; a caller's
 * block must be dag-cbor with bytes that hash to its CID (the store then stays consistent), and
 * its links are read from the value given with it or, without one, from the block decoded.
 */
function recordBlock(e: Extract<PlannedEdit, { type: 'record' }>): EncodedRecord {
  if (e.block instanceof EncodedRecord) return e.block
  if (!e.block) return encodeRecord(e.value)
  const { cid, bytes } = e.block
  if (cid.code !== DAG_CBOR) throw new InvalidInputError(`the block given for the record at ${e.path} is not dag-cbor`, { path: e.path })
  verifyBlock(cid, bytes)
  return new EncodedRecord(cid, bytes, linkList(e.value ?? decodeBlock(cid, bytes)))
}

async function expandRemovals(repo: Repository, tree: CID, written: Written[]): Promise<TreeEdit[]> {
  const edits: TreeEdit[] = []
  // A removal of a directory clears what was there; a path written in the same commit is kept.
  // (Built only when something is removed: a commit of 100k records removes nothing.)
  let keptPaths: Set<string> | undefined
  const kept = (): Set<string> => (keptPaths ??= new Set(written.filter((w) => !('remove' in w)).map((w) => w.path)))
  for (const w of written) {
    if (!('remove' in w)) {
      edits.push({ path: w.path, entry: w.entry })
      continue
    }
    let matched = false
    if (await repo.trees.get(tree, w.path)) {
      if (!kept().has(w.path)) edits.push({ path: w.path, entry: null })
      matched = true
    }
    for await (const [path] of repo.trees.entries(tree, { prefix: `${w.path}/` })) {
      if (!kept().has(path)) edits.push({ path, entry: null })
      matched = true
    }
    if (!matched) throw new NotFoundError('path', w.path, 'nothing to remove there', { path: w.path })
  }
  return edits
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0]!.slice(0, 100)
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

/**
 * Chunk boundaries at tensor boundaries for `.safetensors` files, so that a fine-tune that
 * rewrites some tensors shares every untouched tensor exactly. Anything that does not parse
 * as safetensors is chunked as plain bytes.
 */
async function safetensorsCuts(e: PlannedEdit): Promise<number[] | undefined> {
  if (!e.path.endsWith('.safetensors')) return undefined
  if (e.type === 'bytes') {
    const layout = parseSafetensors(e.bytes, e.bytes.length)
    return layout ? tensorCutPoints(layout) : undefined
  }
  if (e.type !== 'file') return undefined
  const handle = await open(e.source, 'r')
  try {
    const first = new Uint8Array(8)
    await handle.read(first, 0, 8, 0)
    const total = headerLength(first)
    if (total === undefined || total > e.size) return undefined
    const head = new Uint8Array(total)
    await handle.read(head, 0, total, 0)
    const layout = parseSafetensors(head, e.size)
    return layout ? tensorCutPoints(layout) : undefined
  } finally {
    await handle.close()
  }
}
