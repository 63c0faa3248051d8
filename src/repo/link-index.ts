import { CID, cidToString } from '../codec/cid.js'
import { decodeBlock, linkList } from '../codec/block.js'
import type { TreeEntry } from '../model/tree.js'
import { entriesForPrefixes, openIndexReader } from '../store/ref-cells.js'
import type { Repository } from './repository.js'

/**
 * The reverse-link and path indexes, derived from blocks and refs (rebuildable any time):
 *   d/<target>/<source>/<field>  record <source> links to <target> under <field>
 *   p/<cid>/<path>               <cid> was committed at <path> (value: the commit)
 *   f/<cid>                      a path <cid> was committed at (value: the path indexed last),
 *                                for lookups by key: a prefix scan costs a seek and a round
 *                                trip to LevelDB's thread pool each, a key is one of many in
 *                                a getMany. Every value written is true, so writers may race.
 *   c/<commit>                   this commit's changes are indexed
 * Commits index what they add as they land; anything that arrived otherwise (a crash
 * between ref and index, a pull) is caught up by `ensureIndexed` before a downstream
 * question is answered.
 */

const DOWN = 'd/'
const PATH = 'p/'
const A_PATH = 'f/'
const DONE = 'c/'
/** Records read from the store at once while indexing. */
const READ_BATCH = 512

/** One entry a commit added or changed, with the record's links when known. */
export interface IndexedEntry {
  path: string
  entry: TreeEntry
  links?: ReadonlyArray<readonly [field: string, cid: CID]>
}

/** Index what one commit added: reverse links of its new records and where each CID sits. */
export async function indexCommit(repo: Repository, commit: CID, entries: Iterable<IndexedEntry>): Promise<void> {
  const c = cidToString(commit)
  let batch: [string, string][] = []
  // Records whose links are not known (a pulled or pushed commit) are read in batches: one
  // awaited get per record would cap a receiver at ~10k records/s.
  const all = [...entries]
  for (let i = 0; i < all.length; i += READ_BATCH) {
    const slice = all.slice(i, i + READ_BATCH)
    const unread = slice.filter((e) => e.entry.kind === 'record' && e.links === undefined)
    const bytes = unread.length > 0 ? await repo.blocks.getMany(unread.map((e) => e.entry.cid)) : []
    const read = new Map(unread.map((e, j) => [e, bytes[j]]))
    for (const e of slice) {
      const { path, entry } = e
      const cid = cidToString(entry.cid)
      batch.push([`${PATH}${cid}/${path}`, c], [`${A_PATH}${cid}`, path])
      if (entry.kind === 'record') {
        const got = read.get(e)
        const links = e.links ?? linkList(got ? decodeBlock(entry.cid, got) : await repo.readNode(entry.cid))
        for (const [field, target] of links) batch.push([`${DOWN}${cidToString(target)}/${cid}/${field}`, ''])
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
 * Make sure every commit reachable from every ref (or from `heads`, when given) is indexed,
 * walking back from each only until a commit that already is. Returns how many commits were
 * indexed. They are indexed parents first, as commits landing one by one are, so that `f/`
 * keys name the path a CID was committed at last. A receiver passes the commit a push
 * brought: listing every ref costs a request per ref on S3, and no other ref moved.
 */
export async function ensureIndexed(repo: Repository, { onProgress, heads }: { onProgress?: (commits: number) => void; heads?: readonly CID[] } = {}): Promise<number> {
  let indexed = 0
  const seen = new Set<string>()
  const starts: AsyncIterable<{ cid: CID }> | Iterable<{ cid: CID }> = heads ? heads.map((cid) => ({ cid })) : repo.refs.list()
  for await (const { cid } of starts) {
    // Depth first; a commit is indexed once all its unindexed parents are (post-order).
    const stack: { cid: CID; commit?: { tree: CID; parents: CID[] } }[] = [{ cid }]
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!
      if (top.commit) {
        stack.pop()
        const { tree, parents } = top.commit
        const parentTree = parents[0] ? (await repo.readCommit(parents[0])).tree : await repo.trees.empty()
        const changed: IndexedEntry[] = []
        for await (const change of repo.trees.diff(parentTree, tree)) {
          if (change.type !== 'removed') changed.push({ path: change.path, entry: change.after })
        }
        await indexCommit(repo, top.cid, changed)
        indexed++
        onProgress?.(indexed)
        continue
      }
      const key = cidToString(top.cid)
      if (seen.has(key) || (await repo.store.index.get(`${DONE}${key}`)) !== undefined) {
        seen.add(key)
        stack.pop()
        continue
      }
      seen.add(key)
      try {
        const commit = await repo.readCommit(top.cid)
        top.commit = { tree: commit.tree, parents: commit.parents }
      } catch {
        stack.pop() // an annotated tag, or a block fsck will report
        continue
      }
      for (const parent of top.commit.parents) if (!seen.has(cidToString(parent))) stack.push({ cid: parent })
    }
  }
  return indexed
}

/** Drop and rebuild every derived index. */
export async function rebuildIndex(repo: Repository, options: { onProgress?: (commits: number) => void } = {}): Promise<number> {
  for (const prefix of [DOWN, PATH, A_PATH, DONE]) await repo.store.index.clear(prefix)
  return ensureIndexed(repo, options)
}

/** Records that link to `target`: [source, field] pairs (one lookup through {@link reverseLinks}). */
export async function* linksTo(repo: Repository, target: CID | string): AsyncGenerator<{ source: CID; field: string }> {
  const links = reverseLinks(repo)
  try {
    yield* await links.to(target)
  } finally {
    await links.close()
  }
}

/**
 * Reverse-link lookups in turn, for a walk that asks one per node: one index reader (in
 * LevelDB, one iterator sought to each target) instead of an iterator per lookup. Close it.
 */
export function reverseLinks(repo: Repository): { to(target: CID | string): Promise<{ source: CID; field: string }[]>; close(): Promise<void> } {
  const reader = openIndexReader(repo.store.index, DOWN)
  return {
    async to(target) {
      const prefix = `${DOWN}${typeof target === 'string' ? target : cidToString(target)}/`
      return (await reader.entries(prefix)).map(([key]) => sourceOf(key, prefix))
    },
    close: () => reader.close(),
  }
}

/** The source and field of the reverse-link key `key` under `prefix` (`d/<target>/`). */
function sourceOf(key: string, prefix: string): { source: CID; field: string } {
  const rest = key.slice(prefix.length)
  const slash = rest.indexOf('/')
  return { source: CID.parse(rest.slice(0, slash)), field: rest.slice(slash + 1) }
}

/** For each CID, the paths at which it has been committed (any ref, any time), at most `limit`: one index pass where the backend allows. */
export async function pathsOfMany(repo: Repository, cids: readonly CID[], limit = 3): Promise<string[][]> {
  const prefixes = cids.map((cid) => `${PATH}${cidToString(cid)}/`)
  const found = await entriesForPrefixes(repo.store.index, prefixes, limit)
  return found.map((entries, i) => entries.map(([key]) => key.slice(prefixes[i]!.length)))
}

/**
 * For each CID, one path at which it has been committed (the one indexed last), or none:
 * one lookup by key each, all in one call. CIDs indexed before `f/` keys were written are
 * found by a prefix scan instead (`pedigree index rebuild` writes their keys).
 */
export async function aPathOfMany(repo: Repository, cids: readonly CID[]): Promise<(string | undefined)[]> {
  const texts = cids.map(cidToString)
  const out = await repo.store.index.getMany(texts.map((t) => `${A_PATH}${t}`))
  const unkeyed = out.flatMap((path, i) => (path === undefined ? [i] : []))
  if (unkeyed.length > 0) {
    const scanned = await pathsOfMany(repo, unkeyed.map((i) => cids[i]!), 1)
    unkeyed.forEach((i, j) => (out[i] = scanned[j]![0]))
  }
  return out
}

/** Is this commit indexed? (fsck reports reachable commits that are not.) */
export async function isIndexed(repo: Repository, commit: CID): Promise<boolean> {
  return (await repo.store.index.get(`${DONE}${cidToString(commit)}`)) !== undefined
}
