import type { CID } from '../codec/cid.js'
import { InvalidInputError, NotFoundError, PedigreeError } from '../errors.js'
import type { Person } from '../model/commit.js'
import { REMOTE_PREFIX, isValidRefName } from '../refs/ref-name.js'
import type { Repository } from '../repo/repository.js'
import { normalizeRemoteUrl } from './open-transport.js'

/** What the store's config keeps about a remote (key `remote.<name>`). */
export interface RemoteConfig {
  url: string
}

export interface Remote extends RemoteConfig {
  name: string
}

/** A ref that records what a remote had when last seen. */
export interface TrackingRef {
  /** The ref's name on the remote (`main`). */
  ref: string
  /** The local ref that tracks it (`remotes/origin/main`). */
  tracking: string
  cid: CID
}

const CONFIG_PREFIX = 'remote.'

/** Remote names: a letter or digit, then letters, digits, `.`, `_`, `-` (they become one ref-name component). */
export function checkRemoteName(name: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(name) || /^(\/|\.\.?\/|~)/.test(name)) {
    name = name.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1…@') // never repeat credentials
    throw new InvalidInputError(
      `invalid remote name '${name}': that is a URL or a path; add it under a name first (pedigree remote add <name> ${name}), then use the name`,
      { name },
    )
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.endsWith('.lock') || name.endsWith('.') || !isValidRefName(`${REMOTE_PREFIX}${name}/x`)) {
    throw new InvalidInputError(`invalid remote name '${name}': use letters, digits, '.', '_' and '-', starting with a letter or digit`, { name })
  }
  return name
}

/** The local ref that tracks `ref` on `remote`. */
export function trackingRef(remote: string, ref: string): string {
  return `${REMOTE_PREFIX}${remote}/${ref}`
}

/**
 * Remember a remote under `name`. A path is kept absolute (resolved against `base`, by
 * default the current directory); nothing is contacted.
 *
 * @example
 * await addRemote(repo, 'hpc', '/mnt/hpc/.pedigree')
 */
export async function addRemote(repo: Repository, name: string, url: string, { base = process.cwd() }: { base?: string } = {}): Promise<Remote> {
  checkRemoteName(name)
  const key = CONFIG_PREFIX + name
  if ((await repo.store.config.get(key)) !== undefined) {
    throw new PedigreeError('ERR_EXISTS', `a remote named '${name}' already exists; remove it first (pedigree remote remove ${name})`, { name })
  }
  const config: RemoteConfig = { url: normalizeRemoteUrl(url, base) }
  await repo.store.config.set(key, config)
  return { name, ...config }
}

/** Every remote, sorted by name. */
export async function listRemotes(repo: Repository): Promise<Remote[]> {
  const out: Remote[] = []
  for await (const [key, value] of repo.store.config.entries(CONFIG_PREFIX)) {
    const url = (value as Partial<RemoteConfig> | null)?.url
    if (typeof url === 'string') out.push({ name: key.slice(CONFIG_PREFIX.length), url })
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** The remote named `name`; NotFoundError if there is none. */
export async function getRemote(repo: Repository, name: string): Promise<Remote> {
  checkRemoteName(name)
  const value = await repo.store.config.get<Partial<RemoteConfig>>(CONFIG_PREFIX + name)
  if (!value || typeof value.url !== 'string') {
    throw new NotFoundError('remote', name, `add it with \`pedigree remote add ${name} <path-or-url>\``)
  }
  return { name, url: value.url }
}

/** The refs that track what `name` had when last seen. */
export async function trackingRefs(repo: Repository, name: string): Promise<TrackingRef[]> {
  const prefix = trackingRef(name, '')
  const out: TrackingRef[] = []
  for await (const { name: tracking, cid } of repo.refs.list(prefix)) out.push({ ref: tracking.slice(prefix.length), tracking, cid })
  return out
}

/** A remote with the refs that track it (read locally; the remote is not contacted). */
export async function showRemote(repo: Repository, name: string): Promise<Remote & { refs: TrackingRef[] }> {
  const remote = await getRemote(repo, name)
  return { ...remote, refs: await trackingRefs(repo, name) }
}

/**
 * Forget a remote and delete the refs that track it (their reflogs remain, so what they
 * pointed at stays findable).
 */
export async function removeRemote(repo: Repository, name: string, { who }: { who: Person }): Promise<Remote & { removedRefs: string[] }> {
  const remote = await getRemote(repo, name)
  const removed: string[] = []
  for (const t of await trackingRefs(repo, name)) {
    await repo.refs.update(t.tracking, { next: null, expect: t.cid, who, message: `remote remove ${name}`, remoteTracking: true })
    removed.push(t.tracking)
  }
  await repo.store.config.delete(CONFIG_PREFIX + name)
  return { ...remote, removedRefs: removed }
}
