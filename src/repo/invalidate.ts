import type { CID } from '../codec/cid.js'
import { cidToString } from '../codec/cid.js'
import { RefusedError } from '../errors.js'
import type { Person } from '../model/commit.js'
import { commit } from './commit.js'
import type { Repository } from './repository.js'
import { resolveEntry } from './resolve.js'
import { INVALIDATIONS_REF, listInvalidations } from './taint.js'

export interface InvalidateOptions {
  reason: string
  who: Person
  time?: number
}

export interface InvalidateResult {
  target: CID
  path: string
  /** The commit on the `invalidations` ref that records it. */
  commit: CID
}

/**
 * Declare a node wrong, append-only: commits an invalidation record to the
 * `invalidations` ref (so it travels with push and pull). Nothing is deleted; everything
 * downstream of the node reports as tainted until superseded by a new version.
 *
 * @example
 * await invalidate(repo, 'main:calibration/run-17.json', { reason: 'detector gain mis-set', who: { name: 'ana' } })
 */
export async function invalidate(repo: Repository, spec: string, { reason, who, time = Date.now() }: InvalidateOptions): Promise<InvalidateResult> {
  const at = await resolveEntry(repo, spec)
  const existing = (await listInvalidations(repo)).get(at.entry.cid.toString())
  if (existing) {
    throw new RefusedError(`${spec} (${cidToString(at.entry.cid)}) is already invalidated: ${existing.reason}`, { cid: cidToString(at.entry.cid) })
  }
  const path = `invalidated/${cidToString(at.entry.cid)}.json`
  const record = {
    type: 'invalidation',
    target: at.entry.cid,
    target_path: at.path,
    target_commit: cidToString(at.cid),
    reason,
    invalidated_at: new Date(time).toISOString(),
    by: who.email ? `${who.name} <${who.email}>` : who.name,
  }
  const r = await commit(repo, { ref: INVALIDATIONS_REF, author: who, time, message: `invalidate ${at.path}: ${reason}`, edits: [{ type: 'record', path, value: record }] })
  return { target: at.entry.cid, path: at.path, commit: r.cid }
}
