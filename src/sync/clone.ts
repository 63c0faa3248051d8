import { existsSync } from 'node:fs'
import { lstat, readdir, rm, stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { CID } from '../codec/cid.js'
import { InvalidInputError, PedigreeError } from '../errors.js'
import type { Person } from '../model/commit.js'
import { FORMAT_FILE, Repository, STORE_DIRNAME, type OpenOptions } from '../repo/repository.js'
import { fetchInto, type FetchedRef } from './fetch.js'
import { normalizeRemoteUrl, openTransport } from './open-transport.js'
import { addRemote, listRemotes } from './remote.js'
import { CountingTransport } from './stats.js'
import type { SyncProgress, TransferStats, Transport } from './transport.js'

export interface CloneOptions {
  who: Person
  /** Name of the remote recorded in the new store (default `origin`). */
  remote?: string
  /** Use this transport instead of opening `url` (tests; the caller closes it). */
  transport?: Transport
  /** How to open the stores (lock wait, message while waiting). */
  open?: OpenOptions
  /** Resolve a relative path URL against this (default: the current directory). */
  base?: string
  batchSize?: number
  onProgress?: (p: SyncProgress) => void
  /**
   * Stop the clone (Ctrl-C): the transfer is cut, what was received is written out and kept,
   * and the clone fails with ERR_INTERRUPTED; the same clone run again resumes it.
   */
  signal?: AbortSignal
}

export interface CloneResult extends TransferStats {
  /** The new store (its `.pedigree` folder). */
  location: string
  remote: string
  url: string
  /** Local refs created, one per remote ref (its `remotes/…` aside). */
  refs: { ref: string; cid: CID }[]
  tracking: FetchedRef[]
  /** True when this finished a clone that an earlier, interrupted one had begun. */
  resumed: boolean
}

/**
 * Make a new store at `location` (a `.pedigree` folder) holding everything a remote has:
 * every ref is fetched (verified as for fetch) and set locally under the same name, and the
 * remote is recorded as `origin`. The remote is reached before anything is created; if the
 * transfer fails, the new store is removed again.
 *
 * A store at `location` that an interrupted clone of the same URL left behind (the remote
 * recorded, no refs yet: the process was killed before it could clean up) is resumed: only
 * the blocks it lacks are fetched, and nothing of it is removed if this attempt fails too.
 * Any other existing store or non-empty folder is refused (ERR_EXISTS).
 *
 * @example
 * await clone('/mnt/beamline/.pedigree', './mirror/.pedigree', { who: { name: 'ana' } })
 */
export async function clone(url: string, location: string, options: CloneOptions): Promise<CloneResult> {
  const { who, remote = 'origin', open, base = process.cwd(), batchSize, onProgress, signal } = options
  const normalized = normalizeRemoteUrl(url, base)
  const root = resolve(location)
  const target = await cloneTarget(root, normalized, remote, open)
  let inner: Transport
  try {
    inner = options.transport ?? (await openTransport(normalized, { open, local: root }))
  } catch (e) {
    await target.repo?.close()
    throw e
  }
  const t = new CountingTransport(inner)
  let repo: Repository | undefined = target.repo
  // Cutting the transport ends the transfer with an error, which lands in the catch below.
  const stop = (): void => void inner.close().catch(() => {})
  signal?.addEventListener('abort', stop, { once: true })
  try {
    if (signal?.aborted) throw new Error('aborted before it began')
    if (!repo) {
      repo = await Repository.init(root, open)
      await addRemote(repo, remote, normalized, { base })
    } else if (!target.remoteRecorded) await addRemote(repo, remote, normalized, { base })
    const tracking = await fetchInto(repo, t, { who, batchSize, onProgress, remote, url: normalized })
    const refs: CloneResult['refs'] = []
    for (const r of tracking) {
      await repo.refs.update(r.ref, { next: r.new, expect: null, who, message: `clone: ${normalized} ${r.ref}` })
      refs.push({ ref: r.ref, cid: r.new })
    }
    return { location: root, remote, url: normalized, refs, tracking, resumed: target.repo !== undefined, ...t.stats('received') }
  } catch (e) {
    if (signal?.aborted && repo) {
      // Interrupted: keep what was received (closing writes it out) for the next run to resume.
      await repo.close().catch(() => {})
      repo = undefined
      throw new PedigreeError('ERR_INTERRUPTED', `the clone of ${normalized} into ${root} was interrupted; what was received is kept: run the same clone again to resume it`, {
        location: root,
        url: normalized,
      }, { cause: e })
    }
    await repo?.close().catch(() => {})
    repo = undefined
    // A resumed store is kept as it was found (with what this attempt added): it was not made here.
    if (!target.repo) {
      if (target.created) await rm(target.created, { recursive: true, force: true })
      else for (const name of await readdir(root).catch(() => [])) await rm(join(root, name), { recursive: true, force: true })
    }
    throw e
  } finally {
    signal?.removeEventListener('abort', stop)
    await repo?.close()
    if (!options.transport) await inner.close()
  }
}

/** Where a clone goes: a folder to create (`created`: the outermost one), an empty folder, or a store to resume. */
interface CloneTarget {
  /** The outermost folder this clone creates (removed again if it fails). */
  created?: string
  /** The store an interrupted clone of the same URL left, opened. */
  repo?: Repository
  /** Whether that store already records the remote. */
  remoteRecorded?: boolean
}

/**
 * Check where a clone may go. A folder that does not exist is created (from its outermost
 * missing parent); an empty folder is used; a store left by an interrupted clone of `url`
 * is resumed. Anything else is refused, before the remote is contacted: a file, a folder with
 * other files, a store with refs or another remote.
 */
async function cloneTarget(root: string, url: string, remote: string, open: OpenOptions | undefined): Promise<CloneTarget> {
  const kind = await kindOf(root)
  if (kind === 'missing') return { created: await outermostMissing(root) }
  if (kind !== 'folder') throw notAFolder(root, root, kind)
  const entries = await readdir(root).catch((e: NodeJS.ErrnoException) => {
    throw cannotClone(root, e)
  })
  if (entries.length === 0) return {}
  if (!existsSync(join(root, FORMAT_FILE))) {
    throw new PedigreeError('ERR_EXISTS', `cannot clone into ${root}: it exists and is not an empty folder`, { location: root })
  }
  const repo = await Repository.open(root, open)
  try {
    const remotes = await listRemotes(repo)
    const others = remotes.filter((r) => r.name !== remote || r.url !== url)
    const refs = repo.refs.list()[Symbol.asyncIterator]()
    const hasRefs = !(await refs.next()).done
    await refs.return?.(undefined)
    if (hasRefs || others.length > 0) {
      const from = remotes.find((r) => r.name === remote)
      const why = from && from.url !== url ? `it is a clone of ${from.url}` : hasRefs ? 'a store with refs is there' : 'a store with other remotes is there'
      throw new PedigreeError(
        'ERR_EXISTS',
        `cannot clone into ${root}: ${why}; to update it, run \`pedigree fetch\` or \`pedigree pull\` there, or clone into another folder`,
        { location: root },
      )
    }
    return { repo, remoteRecorded: remotes.length > 0 }
  } catch (e) {
    await repo.close().catch(() => {})
    throw e
  }
}

/** The outermost folder that creating `root` will make; refused if a parent on the way is not a folder. */
async function outermostMissing(root: string): Promise<string> {
  let top = root
  for (;;) {
    const parent = dirname(top)
    if (parent === top) return top
    const kind = await kindOf(parent)
    if (kind === 'folder') return top
    if (kind !== 'missing') throw notAFolder(root, parent, kind)
    top = parent
  }
}

type PathKind = 'missing' | 'folder' | 'file' | 'dangling link'

/** What is at `path` (following a symbolic link); other failures (EACCES, ENOTDIR…) are thrown as a clear error. */
async function kindOf(path: string): Promise<PathKind> {
  try {
    return (await stat(path)).isDirectory() ? 'folder' : 'file'
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    // ENOTDIR: a parent is a file; the walk up from here finds and names it.
    if (code === 'ENOTDIR') return 'missing'
    if (code !== 'ENOENT') throw cannotClone(path, e as NodeJS.ErrnoException)
    // A symbolic link to nothing: creating the folder would fail, and removing it is not ours to do.
    return (await lstat(path).then(() => true, () => false)) ? 'dangling link' : 'missing'
  }
}

function notAFolder(root: string, at: string, kind: PathKind): PedigreeError {
  const what = kind === 'file' ? 'a file, not a folder' : 'a symbolic link to nothing'
  return new InvalidInputError(`cannot clone into ${root}: ${at === root ? 'it' : at} is ${what}`, { location: root, path: at })
}

/** A folder that cannot be used, for a reason the OS gave (ENOTDIR on the way, EACCES, a dangling link…). */
function cannotClone(root: string, e: NodeJS.ErrnoException): PedigreeError {
  const reason =
    e.code === 'ENOTDIR' ? 'a part of the path is a file, not a folder' : e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' : e.code === 'ELOOP' ? 'too many symbolic links' : e.message
  return new InvalidInputError(`cannot clone into ${root}: ${reason}`, { location: root, reason: e.code ?? e.message }, { cause: e })
}

/**
 * The folder a clone goes to when none is given, named after the source: `/data/beamline7/.pedigree`
 * and `/data/beamline7` give `beamline7`; `s3://bucket/campaigns/x` gives `x`; `http://host:8080`
 * gives `host` and `http://host:8080/lab` gives `lab` (never a name with a colon in it).
 */
export function defaultCloneDir(url: string): string {
  const web = /^(https?|s3):\/\/([^/?#]*)([^?#]*)/i.exec(url)
  if (web) {
    const segment = web[3]!.split('/').filter(Boolean).pop()
    const host = web[2]!.startsWith('[') ? '' : web[2]!.replace(/:\d*$/, '') // an IPv6 literal names no folder
    const name = (segment ?? host).replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '')
    return name.replace(/\.pedigree$/, '') || 'clone'
  }
  const path = url.replace(/^file:\/\//i, '').replace(/\/+$/, '')
  const name = basename(path) === STORE_DIRNAME ? basename(path.slice(0, -STORE_DIRNAME.length - 1)) : basename(path)
  return name.replace(/\.pedigree$/, '') || 'clone'
}
