import type { CID } from '../codec/cid.js'
import { CID as CIDClass, cidToString, sameCid } from '../codec/cid.js'
import { AmbiguousRevisionError, NotFoundError } from '../errors.js'
import type { Taint } from './lineage-graph.js'
import { pathsOfMany } from './link-index.js'
import type { Repository } from './repository.js'
import { MIN_PREFIX, resolveCommit, resolveEntry } from './resolve.js'
import { listInvalidations, taintedSet, type Invalidation } from './taint.js'

export interface TaintedEntry {
  path: string
  cid: CID
  taint: Taint
}

export interface TaintedOptions {
  /**
   * Only entries tainted by this invalidated node (among their causes): `<rev>:<path>`, its
   * CID, or a prefix of that CID.
   */
  root?: string
}

/**
 * The entries of a revision that are tainted: invalidated themselves, or derived (through
 * any chain of links) from an invalidated node. Each comes with every cause (root and reason),
 * the primary one first.
 *
 * @example
 * for (const t of await tainted(repo, 'main')) console.log(t.path, t.taint.causes.map((c) => c.reason))
 */
export async function tainted(repo: Repository, rev = 'main', { root }: TaintedOptions = {}): Promise<TaintedEntry[]> {
  const { commit } = await resolveCommit(repo, rev)
  const invalidations = await listInvalidations(repo)
  const only = root === undefined ? undefined : await invalidatedNode(repo, root, invalidations)
  const set = await taintedSet(repo, invalidations)
  const out: TaintedEntry[] = []
  // Where was each CID committed? (All lookups in one index pass.) Check each such path in
  // this revision's tree.
  const keys = [...set.keys()].filter((key) => only === undefined || set.get(key)!.roots.includes(only))
  const cids = keys.map((key) => CIDClass.parse(key))
  const paths = await pathsOfMany(repo, cids, 1000)
  for (let i = 0; i < cids.length; i++) {
    const cid = cids[i]!
    for (const path of paths[i]!) {
      const entry = await repo.trees.get(commit.tree, path)
      if (entry && sameCid(entry.cid, cid)) out.push({ path, cid, taint: set.get(keys[i]!)! })
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
}

/** The CID text of the invalidated node `spec` names (`<rev>:<path>`, a CID or a CID prefix). */
async function invalidatedNode(repo: Repository, spec: string, invalidations: Map<string, Invalidation>): Promise<string> {
  if (spec.includes(':')) {
    const key = cidToString((await resolveEntry(repo, spec)).entry.cid)
    if (!invalidations.has(key)) throw new NotFoundError('invalidation', spec, `${key} is not invalidated (tainted lists what derives from an invalidated node)`, { cid: key })
    return key
  }
  if (invalidations.has(spec)) return spec
  const found = spec.length >= MIN_PREFIX ? [...invalidations.keys()].filter((key) => key.startsWith(spec)) : []
  if (found.length === 1) return found[0]!
  if (found.length > 1) throw new AmbiguousRevisionError(spec, found)
  throw new NotFoundError('invalidation', spec, 'no invalidated node has that CID (or a CID starting with it, 12+ characters)')
}
