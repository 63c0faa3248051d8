import type { CID } from '../codec/cid.js'
import { CID as CIDClass, sameCid } from '../codec/cid.js'
import type { Taint } from './lineage-graph.js'
import { pathsOfMany } from './link-index.js'
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
  // Where was each CID committed? (All lookups in one index pass.) Check each such path in
  // this revision's tree.
  const cids = [...set.keys()].map((key) => CIDClass.parse(key))
  const paths = await pathsOfMany(repo, cids, 1000)
  for (let i = 0; i < cids.length; i++) {
    const cid = cids[i]!
    for (const path of paths[i]!) {
      const entry = await repo.trees.get(commit.tree, path)
      if (entry && sameCid(entry.cid, cid)) out.push({ path, cid, taint: set.get(cid.toString())! })
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}
