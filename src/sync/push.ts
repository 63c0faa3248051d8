import { cidToString, type CID } from '../codec/cid.js'
import { ConflictError, NotFoundError, PedigreeError, RefusedError } from '../errors.js'
import type { Person } from '../model/commit.js'
import { REMOTE_PREFIX, TAG_PREFIX, checkRefName } from '../refs/ref-name.js'
import type { Repository } from '../repo/repository.js'
import { isAncestor } from './ancestry.js'
import { connect, type ConnectOptions } from './connect.js'
import { CidMap } from './dag.js'
import { missingOf } from './errors.js'
import { DEFAULT_BATCH, negotiate, readBlocks } from './negotiate.js'
import { trackingRef } from './remote.js'
import type { SyncProgress, TransferStats, Transport } from './transport.js'

export interface PushOptions extends ConnectOptions {
  /** Local refs to push, each to the same name on the remote (default `main`). */
  refs?: string[]
  /** Replace remote refs even when that is not a fast-forward (still a compare-and-swap against what was seen). */
  force?: boolean
  /** Recorded in the remote's reflog and in the local tracking refs' reflog. */
  who: Person
  /** CIDs per negotiation round trip. */
  batchSize?: number
  onProgress?: (p: SyncProgress) => void
}

export interface PushedRef {
  ref: string
  /** The remote's value before the push (null: the ref was created). */
  old: CID | null
  new: CID
  status: 'created' | 'fast-forward' | 'forced' | 'up-to-date'
}

export interface PushResult extends TransferStats {
  remote: string
  url: string
  refs: PushedRef[]
}

/**
 * Send refs to a remote: only the blocks it lacks (see negotiate.ts), children before
 * parents, then one compare-and-swap per ref against the value this push saw there. A ref
 * moves only by fast-forward unless `force`; a ref that moved on the remote since it was
 * read fails with ConflictError and stays as the other writer left it (nothing local changes).
 * The remote verifies every block and the whole DAG before it moves a ref. Local tracking
 * refs (`remotes/<remote>/<ref>`) follow what was pushed.
 *
 * @example
 * const r = await push(repo, { remote: 'hpc', refs: ['main'], who: { name: 'ana' } })
 * console.log(r.blocks, r.bytes, r.roundTrips)
 */
export async function push(repo: Repository, options: PushOptions): Promise<PushResult> {
  const { refs: names = ['main'], force = false, who, batchSize = DEFAULT_BATCH, onProgress } = options
  const wanted: { ref: string; local: CID }[] = []
  for (const given of names) {
    checkRefName(given)
    if (given.startsWith(REMOTE_PREFIX)) throw new RefusedError(`refusing to push '${given}': remotes/… refs only record what another store had`, { ref: given })
    const { name, local } = await localRef(repo, given)
    if (!wanted.some((w) => w.ref === name)) wanted.push({ ref: name, local })
  }
  const conn = await connect(repo, options)
  try {
    const t = conn.transport
    const remoteRefs = new Map((await t.listRefs()).map((r) => [r.name, r.cid]))
    // Decide every ref before sending anything: a refused push sends nothing.
    const plan: PushedRef[] = []
    for (const { ref, local } of wanted) {
      const old = remoteRefs.get(ref) ?? null
      plan.push({ ref, old, new: local, status: await pushStatus(repo, conn.remote, ref, old, local, force) })
    }
    const moving = plan.filter((p) => p.status !== 'up-to-date')
    if (moving.length > 0) {
      const kept = new CidMap<Uint8Array>()
      const { order } = await negotiate(repo.blocks, t, moving.map((p) => p.new), { known: [...remoteRefs.values()], batchSize, keep: kept, onProgress })
      if (order.length > 0) await t.putBlocks(readBlocks(repo.blocks, order, onProgress, kept))
    }
    for (const p of plan) {
      if (p.status !== 'up-to-date') {
        await updateWithRepair(repo, t, p, { remote: conn.remote, who, force, known: [...remoteRefs.values()], batchSize, onProgress, message: `push ${p.ref} from ${repo.location}` })
      }
      // What the remote has now, as far as this push knows.
      await repo.refs.update(trackingRef(conn.remote, p.ref), { next: p.new, who, message: `push: ${conn.url}`, remoteTracking: true })
    }
    return { remote: conn.remote, url: conn.url, refs: plan, ...t.stats('sent') }
  } finally {
    await conn.close()
  }
}

/**
 * The local ref a push names: the ref itself, or the tag of that name (`v1` is `tags/v1`, as
 * in revisions) when no ref has the short name. NotFoundError otherwise.
 */
async function localRef(repo: Repository, name: string): Promise<{ name: string; local: CID }> {
  const local = await repo.refs.get(name)
  if (local) return { name, local }
  if (!name.startsWith(TAG_PREFIX)) {
    const tag = await repo.refs.get(TAG_PREFIX + name)
    if (tag) return { name: TAG_PREFIX + name, local: tag }
  }
  throw new NotFoundError('ref', name, 'nothing to push')
}

async function pushStatus(repo: Repository, remote: string, ref: string, old: CID | null, local: CID, force: boolean): Promise<PushedRef['status']> {
  if (!old) return 'created'
  if (old.equals(local)) return 'up-to-date'
  if (force) return 'forced'
  const hint = `pull first (pedigree pull ${remote} ${ref}), or replace it with --force`
  if (ref.startsWith(TAG_PREFIX)) {
    throw new RefusedError(`refusing to move tag '${ref}' on ${remote} (it points at ${cidToString(old)} there); tags move only with --force`, { ref, remote: cidToString(old), local: cidToString(local) })
  }
  if (!(await repo.blocks.has(old))) {
    throw new RefusedError(
      `rejected '${ref}': ${remote} has commits this store does not (${cidToString(old)}); fetch them first (pedigree pull ${remote} ${ref}), or replace them with --force`,
      { ref, remote: cidToString(old), local: cidToString(local), reason: 'fetch-first' },
    )
  }
  if (!(await isAncestor(repo.blocks, old, local))) {
    throw new RefusedError(`rejected '${ref}': not a fast-forward of ${remote}'s ${cidToString(old)}; ${hint}`, {
      ref,
      remote: cidToString(old),
      local: cidToString(local),
      reason: 'non-fast-forward',
    })
  }
  return 'fast-forward'
}

/**
 * Compare-and-swap one remote ref; if the remote finds blocks missing (holes left by an
 * earlier transfer that was cut short, which its "has" answers did not reveal), send what is
 * under them and try again.
 */
async function updateWithRepair(
  repo: Repository,
  t: Transport,
  p: PushedRef,
  o: { remote: string; who: Person; force: boolean; known: CID[]; batchSize: number; onProgress?: (p: SyncProgress) => void; message: string },
): Promise<void> {
  for (;;) {
    try {
      await t.compareAndSwapRef({ name: p.ref, expected: p.old, next: p.new, who: o.who, message: o.message, force: o.force })
      return
    } catch (e) {
      if (e instanceof PedigreeError && e.code === 'ERR_CONFLICT') {
        // Another push moved the ref after this one read it; theirs stays.
        throw new ConflictError(`${e.message}. Someone else pushed '${p.ref}' meanwhile: fetch first (pedigree pull ${o.remote} ${p.ref}), then push again`, {
          ...e.data,
          reason: 'fetch-first',
        })
      }
      const lacking = missingOf(e)
      if (!lacking) throw e
      const { order } = await negotiate(repo.blocks, t, [], { known: o.known, lacking, batchSize: o.batchSize, onProgress: o.onProgress })
      // Each pass sends something new, so this ends; nothing to send means the hole is not ours to fill.
      if (order.length === 0) throw e
      await t.putBlocks(readBlocks(repo.blocks, order, o.onProgress))
    }
  }
}
