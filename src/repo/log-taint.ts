import type { Taint } from './lineage-graph.js'
import type { LogEntry } from './log.js'
import type { Repository } from './repository.js'
import { INVALIDATIONS_REF } from './invalidations-ref.js'

/** A path a commit added or changed whose new entry is tainted. */
export interface TaintedChange {
  path: string
  cid: string
  taint: Taint
}

/**
 * A log entry with the tainted entries its commit introduced (absent when none): `tainted`
 * lists the first MAX_LISTED_TAINTED of them in path order, `taintedCount` says how many
 * there are in all, and `taintedTruncated` whether the list stops short of that.
 */
export type MarkedLogEntry = LogEntry & { tainted?: TaintedChange[]; taintedCount?: number; taintedTruncated?: boolean }

/** Tainted changes listed per commit, at most; the rest are counted, not listed. */
export const MAX_LISTED_TAINTED = 20

/**
 * Mark each commit of a log with the entries it added or modified that are tainted
 * (invalidated, or derived from something invalidated), with their causes.
 * When nothing was ever invalidated this costs one ref read and entries pass unchanged;
 * otherwise each commit is diffed against its first parent (cost follows the change, not
 * the tree).
 *
 * @example
 * for await (const e of markTainted(repo, repo.log({ from: 'main' }))) if (e.tainted) console.log(e.cid, e.taintedCount)
 */
export async function* markTainted(repo: Repository, entries: AsyncIterable<LogEntry>): AsyncGenerator<MarkedLogEntry> {
  // Most stores never invalidate anything: then `log` loads none of the taint machinery.
  if (!(await repo.refs.get(INVALIDATIONS_REF))) {
    yield* entries
    return
  }
  const { taintedSet } = await import('./taint.js')
  const set = await taintedSet(repo)
  for await (const entry of entries) {
    const first = entry.commit.parents[0]
    const before = first ? (await repo.readCommit(first)).tree : await repo.trees.empty()
    const tainted: TaintedChange[] = []
    let count = 0
    for await (const change of repo.trees.diff(before, entry.commit.tree)) {
      if (change.type === 'removed') continue
      const key = change.after.cid.toString()
      const taint = set.get(key)
      if (!taint) continue
      count++
      if (tainted.length < MAX_LISTED_TAINTED) tainted.push({ path: change.path, cid: key, taint })
    }
    yield count > 0 ? { ...entry, tainted, taintedCount: count, taintedTruncated: count > tainted.length } : entry
  }
}
