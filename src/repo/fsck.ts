import { CID, RAW, cidToString } from '../codec/cid.js'
import { decodeBlock, linksOf, verifyBlock } from '../codec/block.js'
import { PedigreeError } from '../errors.js'
import { checkCommit, isTagShape, type Tag } from '../model/commit.js'
import { fileSize, readFile } from '../model/file.js'
import type { LeafNode } from '../model/tree.js'
import { ROOT_PLACE, childPlaces, treeNodeFault, type TreeNodePlace } from '../model/tree-check.js'
import type { Repository } from './repository.js'
import { isIndexed } from './link-index.js'
import { peel } from './resolve.js'

export interface FsckProblem {
  cid: string
  /** What kind of node it was reached as: commit, tree, record, file, tag. */
  as: string
  problem: string
  /** Refs (and reflog entries, as `ref@{N}`) from which it is reachable. */
  refs: string[]
  /** A tree path that leads to it, when there is one. */
  path?: string
}

/**
 * A record whose links name blocks that are not in this store. Not corruption: `commit` and
 * `ingest` accept such links with --allow-dangling (what they name may live in another store),
 * so fsck lists them apart, and fails on them only when asked to (`strict`).
 */
export interface FsckDangling {
  /** The record. */
  cid: string
  /** A tree path at which it is, when there is one. */
  path?: string
  /** Each link whose block is absent: `field → CID`. */
  links: string[]
}

export interface FsckResult {
  /** No problem found (dangling links count only with `strict`). */
  ok: boolean
  roots: number
  checked: { commits: number; trees: number; records: number; files: number }
  problems: FsckProblem[]
  /**
   * Reachable commits missing from the derived reverse-link index (not corruption: lineage
   * catches up on its own, and `pedigree index rebuild` recomputes it).
   */
  unindexed: number
  /** Records linking to blocks not in the store (at most {@link MAX_DANGLING_LISTED} listed; `danglingCount` counts all). */
  dangling: FsckDangling[]
  danglingCount: number
}

/** Dangling records listed in a result; the rest are counted. */
export const MAX_DANGLING_LISTED = 1000

export interface FsckOptions {
  onProgress?: (checked: number) => void
  /** Count records linking to absent blocks as problems (exit 5), not only list them. */
  strict?: boolean
}

type Job = {
  cid: CID
  as: 'commit' | 'tree' | 'record' | 'file' | 'tag'
  path?: string
  /** A tree node's place in its tree (a root's when absent). */
  place?: TreeNodePlace
}

/** What checking one block found: the blocks it links to, and a problem that does not stop the walk below it. */
type Checked = { children: Job[]; problem?: { problem: string; path?: string } }

/**
 * Verify every block reachable from every ref and every reflog entry: its hash, that it
 * decodes, that it has the expected shape, and that everything it links to is present;
 * that every tree node is in the canonical form (model/tree-check.ts: safe paths in strict
 * order, no path twice, keys, counts and boundaries as a build of the entries makes them) and
 * gives each entry the size of what it names; and that the tree each ref points at holds no
 * path as both an entry and a folder.
 * Reports each broken block once, with the refs that reach it.
 *
 * @example
 * const { ok, problems } = await fsck(repo)
 */
export async function fsck(repo: Repository, { onProgress, strict = false }: FsckOptions = {}): Promise<FsckResult> {
  const roots = new Map<string, CID>() // label → commit or tag CID
  for await (const { name, cid } of repo.refs.list()) roots.set(name, cid)
  for await (const name of repo.refs.logged()) {
    for (const line of await repo.refs.reflog(name)) {
      // Line N's new value is `name@{N}`; its old value is the one before, `name@{N+1}`.
      const values: [CID | null, number][] = [
        [line.new, line.index],
        [line.old, line.index + 1],
      ]
      for (const [c, n] of values) if (c && ![...roots.values()].some((r) => r.equals(c))) roots.set(`${name}@{${n}}`, c)
    }
  }
  const checked = { commits: 0, trees: 0, records: 0, files: 0, unindexed: 0 }
  const dangling: FsckDangling[] = []
  let danglingCount = 0
  const noteDangling = (d: FsckDangling): void => {
    danglingCount++
    if (dangling.length < MAX_DANGLING_LISTED) dangling.push(d)
  }
  const verdicts = new Map<string, { as: string; problem: string; path?: string; bad: string } | null>()
  const visited = new Set<string>()
  const problemOwners = new Map<string, Set<string>>()

  const walk = async (label: string, root: CID, seen: Set<string>, firstPass: boolean): Promise<void> => {
    // A tag ref may hold an annotated tag or a commit: a broken one is reported as the tag it was reached as.
    const stack: Job[] = [{ cid: root, as: label.startsWith('tags/') ? 'tag' : 'commit' }]
    while (stack.length > 0) {
      const job = stack.pop()!
      const key = jobKey(job)
      if (seen.has(key)) continue
      seen.add(key)
      const cached = verdicts.get(key)
      if (cached) problemOwners.get(key)!.add(label)
      if (!firstPass && cached !== undefined && job.as !== 'commit' && job.as !== 'tree' && job.as !== 'tag') continue
      let children: Job[] = []
      try {
        const result = await check(repo, job, firstPass ? checked : undefined)
        children = result.children
        if (firstPass) {
          // A tree node in a non-canonical form is reported, and what it links is still checked.
          verdicts.set(key, result.problem ? { as: job.as, ...result.problem, bad: cidToString(job.cid) } : null)
          if (result.problem) problemOwners.set(key, new Set([label]))
        }
      } catch (e) {
        if (e instanceof DanglingLinks && !strict) {
          if (firstPass) {
            verdicts.set(key, null)
            noteDangling({ cid: cidToString(job.cid), ...(job.path ? { path: job.path } : {}), links: e.links })
          }
          continue
        }
        if (!firstPass) continue
        // A broken chunk inside a file is reported under the chunk's own CID.
        const inner = e instanceof PedigreeError && typeof e.data.cid === 'string' ? e.data.cid : undefined
        const bad = inner ?? (e instanceof PedigreeError && e.code === 'ERR_NOT_FOUND' && typeof e.data.name === 'string' ? e.data.name : cidToString(job.cid))
        const problem = bad === cidToString(job.cid) ? describe(e) : `${describe(e)} (inside ${job.as} ${cidToString(job.cid)})`
        verdicts.set(key, { as: job.as, problem, path: job.path, bad })
        problemOwners.set(key, new Set([label]))
        continue
      }
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!)
      if (firstPass) onProgress?.(seen.size)
    }
  }
  for (const [label, cid] of roots) await walk(label, cid, visited, true)
  // The tree each ref points at must be one a checkout can write: no path both an entry and a
  // folder (commits refuse that since 2026-12; an older pedigree or a remote may have made one).
  const headTrees = new Map<string, { tree: CID; refs: string[] }>()
  for (const [label, cid] of roots) {
    if (label.includes('@{')) continue
    const tree = await headTree(repo, cid)
    if (!tree || verdicts.get(tree.toString()) !== null) continue
    const at = headTrees.get(tree.toString())
    if (at) at.refs.push(label)
    else headTrees.set(tree.toString(), { tree, refs: [label] })
  }
  for (const [key, { tree, refs }] of headTrees) {
    const conflict = await repo.trees.firstPathConflict(tree).catch(() => undefined) // a broken node: reported by the walk
    if (conflict) {
      verdicts.set(key, { as: 'tree', problem: `'${conflict.entry}' is an entry and also a folder (of '${conflict.under}'): a checkout cannot write both`, path: conflict.entry, bad: cidToString(tree) })
      problemOwners.set(key, new Set(refs))
    }
  }
  const problems = [...verdicts.entries()].filter(([, v]) => v !== null)
  if (problems.length > 0) {
    // Second pass, only when something is broken: find every ref that reaches each problem.
    for (const [label, cid] of roots) await walk(label, cid, new Set(), false)
  }
  return {
    ok: problems.length === 0,
    roots: roots.size,
    checked: { commits: checked.commits, trees: checked.trees, records: checked.records, files: checked.files },
    unindexed: checked.unindexed,
    problems: problems.map(([cid, v]) => ({ cid: v!.bad, as: v!.as, problem: v!.problem, refs: [...problemOwners.get(cid)!].sort(), ...(v!.path ? { path: v!.path } : {}) })),
    dangling,
    danglingCount,
  }
}

/**
 * A job's key among those checked: its CID, and for a tree node below a root its place too. A
 * node is in the canonical form in a place (what its parent says of it, what comes before it),
 * so one shared by two trees in different places is checked in each.
 */
function jobKey(job: Job): string {
  const p = job.place
  if (!p) return job.cid.toString()
  return `${job.cid.toString()} ${JSON.stringify([p.level, p.last, p.count, p.after ?? null, p.endsLevel])}`
}

/** A record's links name blocks that are not in the store. */
class DanglingLinks extends PedigreeError {
  constructor(readonly links: string[]) {
    super('ERR_DANGLING', `record links to blocks not in the store: ${links.join(', ')}`, { links })
  }
}

async function check(repo: Repository, job: Job, counts?: FsckResult['checked'] & { unindexed: number }): Promise<Checked> {
  const bytes = await repo.blocks.tryGet(job.cid)
  if (!bytes) throw new PedigreeError('ERR_MISSING', 'block is missing from the store', { cid: cidToString(job.cid) })
  if (job.as === 'file') {
    if (counts) counts.files++
    // Reading verifies every chunk and every node of the file against its CID.
    for await (const _ of readFile(repo.blocks, job.cid)) void _
    return { children: [] }
  }
  const value = decodeBlock(job.cid, bytes)
  if (job.as === 'commit' || job.as === 'tag') {
    if (isTagShape(value)) {
      return { children: [{ cid: (value as Tag).target, as: 'commit' }] }
    }
    const commit = checkCommit(job.cid, value)
    if (counts) {
      counts.commits++
      if (!(await isIndexed(repo, job.cid))) counts.unindexed++
    }
    return { children: [{ cid: commit.tree, as: 'tree' }, ...commit.parents.map((p) => ({ cid: p, as: 'commit' as const }))] }
  }
  if (job.as === 'tree') {
    if (counts) counts.trees++
    const node = await repo.trees.node(job.cid)
    const place = job.place ?? ROOT_PLACE
    const fault = treeNodeFault(node, place)
    const problem = fault ? { problem: `not a canonical tree node: ${fault}` } : undefined
    if ('children' in node) {
      const places = childPlaces(node, place, job.cid)
      return { children: node.children.map(([last, cid], i) => ({ cid, as: 'tree' as const, path: last, place: places[i] })), problem }
    }
    return {
      children: node.entries.map(([path, entry]) => ({ cid: entry.cid, as: entry.kind, path })),
      problem: problem ?? (await entrySizeProblem(repo, node.entries)),
    }
  }
  if (counts) counts.records++
  const missing: string[] = []
  const links = [...linksOf(value)]
  const present = await repo.blocks.hasMany(links.map(([, c]) => c))
  links.forEach(([field, c], i) => {
    if (!present[i]) missing.push(`${field} → ${cidToString(c)}`)
  })
  if (missing.length > 0) throw new DanglingLinks(missing)
  return { children: [] }
}

/**
 * The first entry of a leaf whose size is not that of what it names (a record's block length,
 * a file's size). Absent or unreadable targets are left to their own check.
 */
async function entrySizeProblem(repo: Repository, entries: LeafNode['entries']): Promise<{ problem: string; path: string } | undefined> {
  const blocks = entries.filter(([, e]) => e.kind === 'record' || e.cid.code === RAW)
  const lengths = repo.blocks.storedSizes
    ? (await repo.blocks.storedSizes(blocks.map(([, e]) => e.cid))).map((s) => s?.size)
    : (await repo.blocks.getMany(blocks.map(([, e]) => e.cid))).map((b) => b?.length)
  const sizes = new Map<string, number | undefined>(blocks.map(([path], i) => [path, lengths[i]]))
  for (const [path, entry] of entries) {
    let size = sizes.has(path) ? sizes.get(path) : await fileSize(repo.blocks, entry.cid).catch(() => undefined)
    // A block whose bytes are not its own is reported by its own check, not as a size.
    if (size !== undefined && size !== entry.size && sizes.has(path)) size = await verifiedLength(repo, entry.cid)
    if (size !== undefined && size !== entry.size) {
      return { problem: `its entry '${path}' gives ${entry.kind} ${cidToString(entry.cid)} ${entry.size} bytes, the ${entry.kind} has ${size}`, path }
    }
  }
  return undefined
}

/** The length of a block whose bytes match its CID; undefined if absent or not. */
async function verifiedLength(repo: Repository, cid: CID): Promise<number | undefined> {
  const bytes = await repo.blocks.tryGet(cid)
  if (!bytes) return undefined
  try {
    verifyBlock(cid, bytes)
  } catch {
    return undefined
  }
  return bytes.length
}

/** The tree of the commit `cid` names (through annotated tags), or undefined if it cannot be read. */
async function headTree(repo: Repository, cid: CID): Promise<CID | undefined> {
  return peel(repo, cid, cidToString(cid)).then(
    (r) => r.commit.tree,
    () => undefined, // reported by the walk
  )
}

function describe(e: unknown): string {
  if (e instanceof PedigreeError && e.code === 'ERR_CORRUPT') return String(e.data.reason ?? e.message)
  if (e instanceof PedigreeError && e.code === 'ERR_NOT_FOUND') return 'block is missing from the store'
  return (e as Error).message
}
