import { existsSync } from 'node:fs'
import { readdir, rm } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { CID } from '../codec/cid.js'
import { PedigreeError } from '../errors.js'
import type { Person } from '../model/commit.js'
import { Repository, STORE_DIRNAME, type OpenOptions } from '../repo/repository.js'
import { fetchInto, type FetchedRef } from './fetch.js'
import { normalizeRemoteUrl, openTransport } from './open-transport.js'
import { addRemote } from './remote.js'
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
}

export interface CloneResult extends TransferStats {
  /** The new store (its `.pedigree` folder). */
  location: string
  remote: string
  url: string
  /** Local refs created, one per remote ref (its `remotes/…` aside). */
  refs: { ref: string; cid: CID }[]
  tracking: FetchedRef[]
}

/**
 * Make a new store at `location` (a `.pedigree` folder) holding everything a remote has:
 * every ref is fetched (verified as for fetch) and set locally under the same name, and the
 * remote is recorded as `origin`. The remote is reached before anything is created; if the
 * transfer fails, the new store is removed again.
 *
 * @example
 * await clone('/mnt/beamline/.pedigree', './mirror/.pedigree', { who: { name: 'ana' } })
 */
export async function clone(url: string, location: string, options: CloneOptions): Promise<CloneResult> {
  const { who, remote = 'origin', open, base = process.cwd(), batchSize, onProgress } = options
  const normalized = normalizeRemoteUrl(url, base)
  const root = resolve(location)
  // What to remove if this fails: the folders this call creates (or the contents of an empty one).
  const created = await plannedFolders(root)
  const inner = options.transport ?? (await openTransport(normalized, { open, local: root }))
  const t = new CountingTransport(inner)
  let repo: Repository | undefined
  try {
    repo = await Repository.init(root, open)
    await addRemote(repo, remote, normalized, { base })
    const tracking = await fetchInto(repo, t, { who, batchSize, onProgress, remote, url: normalized })
    const refs: CloneResult['refs'] = []
    for (const r of tracking) {
      await repo.refs.update(r.ref, { next: r.new, expect: null, who, message: `clone: ${normalized} ${r.ref}` })
      refs.push({ ref: r.ref, cid: r.new })
    }
    return { location: root, remote, url: normalized, refs, tracking, ...t.stats('received') }
  } catch (e) {
    await repo?.close().catch(() => {})
    repo = undefined
    if (created) await rm(created, { recursive: true, force: true })
    else for (const name of await readdir(root).catch(() => [])) await rm(join(root, name), { recursive: true, force: true })
    throw e
  } finally {
    await repo?.close()
    if (!options.transport) await inner.close()
  }
}

/**
 * The outermost folder that creating `root` will make (undefined if `root` exists already,
 * which is accepted only when empty: a clone never mixes with other files).
 */
async function plannedFolders(root: string): Promise<string | undefined> {
  if (existsSync(root)) {
    const entries = await readdir(root).catch(() => undefined)
    if (entries === undefined || entries.length > 0) {
      throw new PedigreeError('ERR_EXISTS', `cannot clone into ${root}: it exists and is not an empty folder`, { location: root })
    }
    return undefined
  }
  let top = root
  while (!existsSync(dirname(top)) && dirname(top) !== top) top = dirname(top)
  return top
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
