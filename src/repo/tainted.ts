import type { CID } from '../codec/cid.js'
import { CID as CIDClass } from '../codec/cid.js'
import type { Taint } from './lineage-graph.js'
import { pathsOf } from './link-index.js'
import type { Repository } from './repository.js'
import { resolveCommit } from './resolve.js'
import { taintedSet } from './taint.js'

export interface TaintedEntry {
  path: string
  cid: CID
  taint: Taint
}

/**
 * The entries of a revision that are tainted: invalidated themselves, or derived (through
 * any chain of links) from an invalidated node. Each comes with the root cause and reason.
 *
 * @example
 * for (const t of await tainted(repo, 'main')) console.log(t.path, t.taint.reason)
 */
export async function tainted(repo: Repository, rev = 'main'): Promise<TaintedEntry[]> {
  const { commit } = await resolveCommit(repo, rev)
  const set = await taintedSet(repo)
  const out: TaintedEntry[] = []
  for (const [key, taint] of set) {
    // Where was this CID committed? Check each such path in this revision's tree.
    for (const path of await pathsOf(repo, key, 1000)) {
      const entry = await repo.trees.get(commit.tree, path)
      if (entry && entry.cid.toString() === key) out.push({ path, cid: CIDClass.parse(key), taint })
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}
