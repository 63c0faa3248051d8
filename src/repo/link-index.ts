import { CID, cidToString } from '../codec/cid.js'
import { decodeBlock, linksOf } from '../codec/block.js'
import type { TreeEntry } from '../model/tree.js'
import { entriesForPrefixes } from '../store/ref-cells.js'
import type { Repository } from './repository.js'

/**
 * The reverse-link and path indexes, derived from blocks and refs (rebuildable any time):
 *   d/<target>/<source>/<field>  record <source> links to <target> under <field>
 *   p/<cid>/<path>               <cid> was committed at <path> (value: the commit)
 *   c/<commit>                   this commit's changes are indexed
 * Commits index what they add as they land; anything that arrived otherwise (a crash
 * between ref and index, a pull) is caught up by `ensureIndexed` before a downstream
 * question is answered.
 */

const DOWN = 'd/'
const PATH = 'p/'
const DONE = 'c/'
/** Records read from the store at once while indexing. */
const READ_BATCH = 512

/** One entry a commit added or changed, with the record's decoded value when known. */
export interface IndexedEntry {
  path: string
  entry: TreeEntry
  value?: unknown
}

/** Index what one commit added: reverse links of its new records and where each CID sits. */
export async function indexCommit(repo: Repository, commit: CID, entries: Iterable<IndexedEntry>): Promise<void> {
  const c = cidToString(commit)
  let batch: [string, string][] = []
  // Records whose values are not known (a pulled or pushed commit) are read in batches: one
  // awaited get per record would cap a receiver at ~10k records/s.
  const all = [...entries]
  for (let i = 0; i < all.length; i += READ_BATCH) {
    const slice = all.slice(i, i + READ_BATCH)
    const unread = slice.filter((e) => e.entry.kind === 'record' && e.value === undefined)
    const bytes = unread.length > 0 ? await repo.blocks.getMany(unread.map((e) => e.entry.cid)) : []
    const read = new Map(unread.map((e, j) => [e, bytes[j]]))
    for (const e of slice) {
      const { path, entry } = e
      const cid = cidToString(entry.cid)
      batch.push([`${PATH}${cid}/${path}`, c])
      if (entry.kind === 'record') {
        const got = read.get(e)
        const record = e.value ?? (got ? decodeBlock(entry.cid, got) : await repo.readNode(entry.cid))
        for (const [field, target] of linksOf(record)) batch.push([`${DOWN}${cidToString(target)}/${cid}/${field}`, ''])
      }
    }
    if (batch.length >= 10_000) {
      await repo.store.index.putMany(batch)
      batch = []
    }
  }
  batch.push([`${DONE}${c}`, '1'])
  await repo.store.index.putMany(batch)
}

/**
 * Make sure every commit reachable from every ref is indexed, walking back from each
 * ref only until a commit that already is. Returns how many commits were indexed.
 */
export async function ensureIndexed(repo: Repository, { onProgress }: { onProgress?: (commits: number) => void } = {}): Promise<number> {
  let indexed = 0
  const seen = new Set<string>()
  for await (const { cid } of repo.refs.list()) {
    const stack = [cid]
    while (stack.length > 0) {
      const at = stack.pop()!
      const key = cidToString(at)
      if (seen.has(key)) continue
      seen.add(key)
      if ((await repo.store.index.get(`${DONE}${key}`)) !== undefined) continue
      let commit
      try {
        commit = await repo.readCommit(at)
      } catch {
        continue // an annotated tag, or a block fsck will report
      }
      const parentTree = commit.parents[0] ? (await repo.readCommit(commit.parents[0])).tree : await repo.trees.empty()
      const changed: IndexedEntry[] = []
      for await (const change of repo.trees.diff(parentTree, commit.tree)) {
        if (change.type !== 'removed') changed.push({ path: change.path, entry: change.after })
      }
      await indexCommit(repo, at, changed)
      indexed++
      onProgress?.(indexed)
      stack.push(...commit.parents)
    }
  }
  return indexed
}

/** Drop and rebuild every derived index. */
export async function rebuildIndex(repo: Repository, options: { onProgress?: (commits: number) => void } = {}): Promise<number> {
  for (const prefix of [DOWN, PATH, DONE]) await repo.store.index.clear(prefix)
  return ensureIndexed(repo, options)
}

/** Records that link to `target`: [source, field] pairs. */
export async function* linksTo(repo: Repository, target: CID | string): AsyncGenerator<{ source: CID; field: string }> {
  const prefix = `${DOWN}${typeof target === 'string' ? target : cidToString(target)}/`
  for await (const [key] of repo.store.index.entries(prefix)) {
    const rest = key.slice(prefix.length)
    const slash = rest.indexOf('/')
    yield { source: CID.parse(rest.slice(0, slash)), field: rest.slice(slash + 1) }
  }
}

/** Paths at which `cid` has been committed (any ref, any time), at most `limit`. */
export async function pathsOf(repo: Repository, cid: CID | string, limit = 3): Promise<string[]> {
  const prefix = `${PATH}${typeof cid === 'string' ? cid : cidToString(cid)}/`
  const out: string[] = []
  for await (const [key] of repo.store.index.entries(prefix, { limit })) out.push(key.slice(prefix.length))
  return out
}

/** `pathsOf` for many CIDs at once (one index pass where the backend allows), in order. */
export async function pathsOfMany(repo: Repository, cids: readonly CID[], limit = 3): Promise<string[][]> {
  const prefixes = cids.map((cid) => `${PATH}${cidToString(cid)}/`)
  const found = await entriesForPrefixes(repo.store.index, prefixes, limit)
  return found.map((entries, i) => entries.map(([key]) => key.slice(prefixes[i]!.length)))
}

/** Is this commit indexed? (fsck reports reachable commits that are not.) */
export async function isIndexed(repo: Repository, commit: CID): Promise<boolean> {
  return (await repo.store.index.get(`${DONE}${cidToString(commit)}`)) !== undefined
}
