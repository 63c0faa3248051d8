import type { CID } from '../codec/cid.js'
import { NotFoundError } from '../errors.js'
import type { Person } from '../model/commit.js'
import { REMOTE_PREFIX } from '../refs/ref-name.js'
import { ensureIndexed } from '../repo/link-index.js'
import type { Repository } from '../repo/repository.js'
import { isAncestor } from './ancestry.js'
import { checkComplete } from './complete.js'
import { connect, type ConnectOptions } from './connect.js'
import { download } from './download.js'
import { missingOf } from './errors.js'
import { DEFAULT_BATCH } from './negotiate.js'
import { refValues } from './receive.js'
import { trackingRef } from './remote.js'
import type { RemoteRef, SyncProgress, TransferStats, Transport } from './transport.js'

export interface FetchOptions extends ConnectOptions {
  /** Refs of the remote to fetch (default: all of them except its own `remotes/…`). */
  refs?: string[]
  /** Recorded in the reflog of the tracking refs. */
  who: Person
  /** CIDs per round trip. */
  batchSize?: number
  onProgress?: (p: SyncProgress) => void
}

export interface FetchedRef {
  /** The ref's name on the remote. */
  ref: string
  /** The local ref that now records it: `remotes/<remote>/<ref>`. */
  tracking: string
  old: CID | null
  new: CID
  status: 'new' | 'fast-forward' | 'forced' | 'up-to-date'
}

export interface FetchResult extends TransferStats {
  remote: string
  url: string
  refs: FetchedRef[]
}

/**
 * Copy what this store lacks of a remote's refs and record them as `remotes/<remote>/<ref>`.
 * Every block is verified as it arrives, and the whole DAG under each ref is checked present
 * before any tracking ref moves; a bad or missing block fails naming its CID with no ref moved
 * (blocks that verified stay, so a second fetch resumes). Local branches are not touched
 * (see pull).
 *
 * @example
 * const r = await fetch(repo, { remote: 'hpc', who: { name: 'ana' } })
 */
export async function fetch(repo: Repository, options: FetchOptions): Promise<FetchResult> {
  const conn = await connect(repo, options)
  try {
    const refs = await fetchInto(repo, conn.transport, { ...options, remote: conn.remote, url: conn.url })
    return { remote: conn.remote, url: conn.url, refs, ...conn.transport.stats('received') }
  } finally {
    await conn.close()
  }
}

/** The refs a fetch takes from a remote's list: the named ones (NotFoundError if absent), or all but `remotes/…`. */
export function selectRefs(remoteRefs: readonly RemoteRef[], names: readonly string[] | undefined, url: string): RemoteRef[] {
  if (!names || names.length === 0) return remoteRefs.filter((r) => !r.name.startsWith(REMOTE_PREFIX))
  return names.map((name) => {
    const found = remoteRefs.find((r) => r.name === name) ?? remoteRefs.find((r) => r.name === `tags/${name}`)
    if (!found) throw new NotFoundError('ref', name, `not on the remote ${url}`, { url })
    return found
  })
}

/** Fetch through an open transport (clone uses it on a store it just made). */
export async function fetchInto(
  repo: Repository,
  t: Transport,
  { refs: names, who, batchSize = DEFAULT_BATCH, onProgress, remote, url }: Omit<FetchOptions, 'remote'> & { remote: string; url: string },
): Promise<FetchedRef[]> {
  const selected = selectRefs(await t.listRefs(), names, url)
  const heads = selected.map((r) => r.cid)
  const where = `the remote '${remote}' (${url})`
  const known = await refValues(repo)
  await download(repo.blocks, t, heads, { known, batchSize, where, onProgress })
  await checkWithRepair(repo, t, heads, { known, batchSize, where, onProgress })

  const out: FetchedRef[] = []
  for (const r of selected) {
    const tracking = trackingRef(remote, r.name)
    const old = (await repo.refs.get(tracking)) ?? null
    const status: FetchedRef['status'] = !old ? 'new' : old.equals(r.cid) ? 'up-to-date' : (await isAncestor(repo.blocks, old, r.cid)) ? 'fast-forward' : 'forced'
    await repo.refs.update(tracking, { next: r.cid, expect: old, who, message: `fetch: ${url} ${r.name}`, remoteTracking: true })
    out.push({ ref: r.name, tracking, old, new: r.cid, status })
  }
  await ensureIndexed(repo)
  return out
}

/**
 * Check the DAGs under `heads` are whole in this store; fetch whatever the check finds
 * missing (blocks "had" only partially, after an interrupted transfer) and check again.
 */
async function checkWithRepair(
  repo: Repository,
  t: Transport,
  heads: CID[],
  o: { known: CID[]; batchSize: number; where: string; onProgress?: (p: SyncProgress) => void },
): Promise<void> {
  for (;;) {
    try {
      await checkComplete(repo.blocks, heads, {
        known: o.known,
        where: `the DAG from ${o.where} is incomplete in this store`,
        onProgress: (n) => o.onProgress?.({ phase: 'verify', blocks: n, bytes: 0 }),
      })
      return
    } catch (e) {
      const lacking = missingOf(e)
      if (!lacking) throw e
      const got = await download(repo.blocks, t, [], { known: o.known, lacking, batchSize: o.batchSize, where: o.where, onProgress: o.onProgress })
      // Each pass stores something new, so this ends.
      if (got.blocks === 0) throw e
    }
  }
}
