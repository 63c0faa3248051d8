import { cidToString, type CID } from '../codec/cid.js'
import type { Commit } from '../model/commit.js'
import type { Repository } from './repository.js'
import { resolveCommit } from './resolve.js'

export interface LogOptions {
  /** Revision to start from (default `main`). */
  from?: string
  /** Stop after this many commits. */
  limit?: number
  /** Only commits that changed this path (an entry, or anything under `path/`). */
  path?: string
}

export interface LogEntry {
  cid: CID
  commit: Commit
}

/**
 * Commits reachable from `from`, newest first (by time, then by order of discovery), one
 * at a time: memory holds the frontier of unvisited parents, not the history.
 *
 * @example
 * for await (const { cid, commit } of log(repo, { from: 'main', limit: 20 })) console.log(cid, commit.message)
 */
export async function* log(repo: Repository, { from = 'main', limit = Infinity, path }: LogOptions = {}): AsyncGenerator<LogEntry> {
  const start = await resolveCommit(repo, from)
  // cidToString, not CID#toString: that one encodes base32 a character at a time and caches the
  // text on each CID (codec/cid.ts).
  const seen = new Set<string>([cidToString(start.cid)])
  const frontier: LogEntry[] = [start]
  let emitted = 0
  while (frontier.length > 0 && emitted < limit) {
    // Newest first; linear histories keep the frontier at one commit.
    let best = 0
    for (let i = 1; i < frontier.length; i++) if (frontier[i]!.commit.time > frontier[best]!.commit.time) best = i
    const entry = frontier.splice(best, 1)[0]!
    const parents = await Promise.all(
      entry.commit.parents
        .filter((p) => !seen.has(cidToString(p)))
        .map(async (p) => {
          seen.add(cidToString(p))
          return { cid: p, commit: await repo.readCommit(p) }
        }),
    )
    frontier.push(...parents)
    // Compare with the first parent itself: `parents` holds only the unseen ones, so its head
    // is another parent when the first was already reached through a newer commit.
    if (path !== undefined) {
      const first = entry.commit.parents[0]
      const firstCommit = first ? (parents.find((p) => p.cid.equals(first))?.commit ?? (await repo.readCommit(first))) : undefined
      if (!(await touches(repo, entry, firstCommit, path))) continue
    }
    emitted++
    yield entry
  }
}

/** Did this commit change `path` (or anything under it) relative to its first parent? */
async function touches(repo: Repository, entry: LogEntry, parent: Commit | undefined, path: string): Promise<boolean> {
  const after = entry.commit.tree
  const before = parent ? parent.tree : await repo.trees.empty()
  for await (const change of repo.trees.diff(before, after, { prefix: path })) {
    if (change.path === path || change.path.startsWith(path.endsWith('/') ? path : `${path}/`)) return true
  }
  return false
}
