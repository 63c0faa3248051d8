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

/** A log entry with the tainted entries its commit introduced (absent when none). */
export type MarkedLogEntry = LogEntry & { tainted?: TaintedChange[] }

/** Tainted changes listed per commit, at most; the count beyond is dropped, not the mark. */
const MAX_LISTED = 20

/**
 * Mark each commit of a log with the entries it added or modified that are tainted
 * (invalidated, or derived from something invalidated), with the root cause and reason.
 * When nothing was ever invalidated this costs one ref read and entries pass unchanged;
 * otherwise each commit is diffed against its first parent (cost follows the change, not
 * the tree).
 *
 * @example
 * for await (const e of markTainted(repo, repo.log({ from: 'main' }))) if (e.tainted) console.log(e.cid, e.tainted)
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
    for await (const change of repo.trees.diff(before, entry.commit.tree)) {
      if (change.type === 'removed') continue
      const key = change.after.cid.toString()
      const taint = set.get(key)
      if (taint) tainted.push({ path: change.path, cid: key, taint })
      if (tainted.length >= MAX_LISTED) break
    }
    yield tainted.length > 0 ? { ...entry, tainted } : entry
  }
}
