import { DAG_CBOR, RAW, cidToString, type CID } from '../codec/cid.js'
import { decodeBlockUnchecked, verifyBlock } from '../codec/block.js'
import { CorruptBlockError, InvalidInputError, PathConflictError, PedigreeError } from '../errors.js'
import type { FileNode } from '../model/file.js'
import { ProllyTree, type TreeEdit } from '../model/tree.js'
import { findTreeFault, type TreeFault } from '../model/tree-check.js'
import type { Blockstore } from '../store/blockstore.js'
import { CidMap, CidSet, linkKey, linksOfNode, type DagLink } from './dag.js'
import { IncompleteDagError, type MissingBlock } from './errors.js'
import { ScratchBlockstore } from './scratch-blockstore.js'

export interface CheckCompleteOptions {
  /**
   * Commits (or tag nodes) whose DAGs are known to be complete in `blocks`: the values of
   * the store's refs (a ref never points at an incomplete DAG). The walk stops at them and at
   * their ancestors, and checks a new commit's tree only where it differs from its parent's.
   */
  known?: Iterable<CID>
  /** Says where the check runs, for the error message ("the remote at …"). */
  where?: string
  /**
   * Blocks known to be in `blocks`, verified against their CIDs and valid dag-cbor maps (all a
   * record must be; see receive.ts `receivedMaps`), with their lengths: reached as records,
   * they are not read again.
   */
  checked?: { sizeOf(cid: CID): number | undefined }
  onProgress?: (checked: number) => void
}

export interface CheckCompleteResult {
  /** Commits (and tag nodes) that were not known complete and were checked. */
  commits: number
  /** Blocks checked. */
  blocks: number
}

interface CommitInfo {
  cid: CID
  time: number
  /** Parents, or a tag's target. */
  parents: CID[]
  /** Undefined for a tag node. */
  tree?: CID
}

/** Blocks read at once while walking trees and files. */
const BATCH = 1024

/**
 * Check that every block the DAGs under `heads` need is in `blocks` and has the shape its
 * link says (commit, tree node, record, file node, chunk), re-hashing every structured node;
 * that every size a node gives is the size of what it links (a tree entry's size, a chunk's
 * length, a file part's size), and a file's leaves are all at one depth; and that every new
 * tree is the canonical tree of its entries (safe paths in strict order, no path both an
 * entry and a folder, nodes cut, keyed and counted as a build of those entries makes them:
 * see model/tree-check.ts), so that the same entries keep giving the same root CID. Optional
 * links (from records) are not required. Throws IncompleteDagError listing the missing blocks,
 * or CorruptBlockError naming a bad one and what is wrong with it.
 *
 * The cost follows what is new: commits reachable from `known` are not walked, and a new
 * commit's tree is compared with its parent's (identical subtrees skipped by CID; its form is
 * checked by applying the changes to the parent's tree in memory and comparing the result),
 * falling back to a full walk of that tree only when something is missing (to list all of it).
 *
 * @example
 * await checkComplete(repo.blocks, [newHead], { known: [oldHead] })
 */
export async function checkComplete(blocks: Blockstore, heads: readonly CID[], { known = [], where = 'incomplete DAG', checked: checkedBlocks, onProgress }: CheckCompleteOptions = {}): Promise<CheckCompleteResult> {
  const trees = new ProllyTree(blocks)
  const missing: MissingBlock[] = []
  let checked = 0
  const progress = (n: number): void => {
    checked += n
    onProgress?.(checked)
  }

  // 1. The commits that are new: reachable from heads but not from any known commit.
  const { fresh, infos } = await newCommits(blocks, heads, [...known], missing)
  progress(fresh.length)
  if (missing.length > 0) throw new IncompleteDagError(missing, where)

  // 2. Each new commit's tree: where it differs from its first parent's (complete) tree, or
  // whole when it has none. Either way the tree must be the canonical one of its entries.
  const walk = new TypedWalk(blocks, missing, progress, checkedBlocks)
  for (const info of fresh) {
    if (!info.tree) continue
    const parent = info.parents[0] ? infos.get(info.parents[0]) : undefined
    const done = parent?.tree ? await checkChangedTree(blocks, trees, parent.tree, info.tree, walk) : await checkWholeTree(trees, info.tree, walk)
    if (done) continue
    // A tree node is missing: walk what is there, to list all that is not.
    await walk.run([{ cid: info.tree, as: 'tree', optional: false }])
    if (missing.length === 0) await checkWholeTree(trees, info.tree, walk, true)
  }
  if (missing.length > 0) throw new IncompleteDagError(missing, where)
  return { commits: fresh.length, blocks: checked }
}

/** Whether `e` says a block is not in the store (the walk then lists every block that is not). */
function isNotFound(e: unknown): boolean {
  return e instanceof PedigreeError && e.code === 'ERR_NOT_FOUND'
}

/**
 * Check a tree with no parent tree to compare with: every node, in its place (tree-check.ts),
 * and every entry's target. False if a tree node is missing (unless `strict`: then that throws).
 */
async function checkWholeTree(trees: ProllyTree, tree: CID, walk: TypedWalk, strict = false): Promise<boolean> {
  let fault: TreeFault | undefined
  const jobs: DagLink[] = []
  try {
    fault = await findTreeFault(trees, tree, {
      onLeaf: async (cid, leaf) => {
        for (const [path, { cid: target, kind, size }] of leaf.entries) jobs.push({ cid: target, as: kind, optional: false, size, from: cid, path })
        if (jobs.length >= BATCH) await walk.run(jobs.splice(0))
      },
    })
  } catch (e) {
    if (!strict && isNotFound(e)) return false
    throw e
  }
  if (fault) throw new CorruptBlockError(cidToString(fault.cid), `not a canonical tree node: ${fault.problem}`)
  await walk.run(jobs)
  return true
}

/**
 * Check the entries that changed from `base` to `tree`, and that `tree` is the canonical tree
 * of its entries: `base` (complete, hence checked) with those changes applied gives `tree`
 * again, node for node. That is a tree edit of the changes, in memory: its cost follows the
 * changes, as the diff's does. False if a tree node is missing (the caller then walks the whole
 * tree to list everything that is).
 */
async function checkChangedTree(blocks: Blockstore, trees: ProllyTree, base: CID, tree: CID, walk: TypedWalk): Promise<boolean> {
  const jobs: DagLink[] = []
  const edits: TreeEdit[] = []
  try {
    for await (const change of trees.diff(base, tree)) {
      if (change.type === 'removed') {
        edits.push({ path: change.path, entry: null })
        continue
      }
      const { cid, kind, size } = change.after
      if (kind !== 'record' && kind !== 'file') {
        throw new CorruptBlockError(cidToString(tree), `not a canonical tree node: entry '${change.path}' has unknown kind ${JSON.stringify(kind)}`)
      }
      // Only the three fields: an entry carrying more is not the entry a build writes.
      edits.push({ path: change.path, entry: { cid, kind, size } })
      jobs.push({ cid, as: kind, optional: false, size, from: tree, path: change.path })
      if (jobs.length >= BATCH) await walk.run(jobs.splice(0))
    }
  } catch (e) {
    if (isNotFound(e)) return false
    throw e
  }
  await walk.run(jobs)
  let rebuilt: CID | undefined
  let refused: string | undefined
  try {
    rebuilt = await new ProllyTree(new ScratchBlockstore(blocks)).edit(base, edits)
  } catch (e) {
    if (!(e instanceof InvalidInputError)) throw e
    refused = e instanceof PathConflictError ? `'${e.entry}' is an entry and also a folder (of '${e.under}'): a checkout cannot write both` : e.message
  }
  if (rebuilt?.equals(tree)) return true
  // Refused: find the node at fault, to name it (this reads the whole tree, only on refusal).
  const fault = await findTreeFault(trees, tree).catch(() => undefined)
  if (fault) throw new CorruptBlockError(cidToString(fault.cid), `not a canonical tree node: ${fault.problem}`)
  throw new CorruptBlockError(
    cidToString(tree),
    `not a canonical tree: ${refused ?? `its entries make the tree ${cidToString(rebuilt!)}, whose nodes are cut, counted or keyed otherwise`}`,
  )
}

/**
 * A level-by-level walk over typed links: reads each level in batches, checks shapes and the
 * sizes the linking nodes give (a tree entry's size, a chunk's length, a part's size), records
 * missing required blocks and goes on with the rest. Chunks are checked for presence and
 * length only (their hashes were checked when they entered the store).
 */
class TypedWalk {
  /** Blocks already checked, by CID: their size in bytes (a file node: its file's), or -1 (no size: a tree node). */
  private readonly sizes = new CidMap<number>()
  /** Leaf depth of each file tree walked (by its root), which must be the same for all its leaves. */
  private readonly leafDepths = new CidMap<number>()

  constructor(
    private readonly blocks: Blockstore,
    private readonly missing: MissingBlock[],
    readonly progress: (n: number) => void,
    private readonly checked?: { sizeOf(cid: CID): number | undefined },
  ) {}

  async run(start: DagLink[]): Promise<void> {
    let level = start.filter((l) => !l.optional)
    let depths = new Map<DagLink, { root: CID; depth: number }>()
    while (level.length > 0) {
      const next: DagLink[] = []
      const nextDepths = new Map<DagLink, { root: CID; depth: number }>()
      for (let i = 0; i < level.length; i += BATCH) {
        // A block reached again is not read again, but its size is compared with this link's too.
        const batch: DagLink[] = []
        const again: DagLink[] = []
        const keys = new Set<string>()
        for (const l of level.slice(i, i + BATCH)) {
          const key = linkKey(l)
          if (this.sizes.hasKey(key) || keys.has(key)) again.push(l)
          else {
            keys.add(key)
            batch.push(l)
          }
        }
        const chunks = batch.filter((l) => l.as === 'chunk')
        const nodes: DagLink[] = []
        for (const l of batch) {
          if (l.as === 'chunk') continue
          const size = l.as === 'record' ? this.checked?.sizeOf(l.cid) : undefined
          if (size === undefined) nodes.push(l)
          else this.settle(l, size)
        }
        await this.checkChunks(chunks)
        const got = await this.blocks.getMany(nodes.map((l) => l.cid))
        nodes.forEach((l, j) => {
          const bytes = got[j]
          if (!bytes) {
            this.missing.push({ cid: l.cid, as: l.as })
            this.sizes.setKey(linkKey(l), -1)
            return
          }
          verifyBlock(l.cid, bytes)
          const children = linksOfNode(l.cid, bytes, l.as)
          this.settle(l, sizeOfNode(l, bytes))
          if (l.as === 'file' && l.cid.code === DAG_CBOR) this.fileShape(l, children, depths.get(l), nextDepths)
          for (const child of children) if (!child.optional) next.push(child)
        })
        for (const l of again) this.compareSize(l, this.sizes.getKey(linkKey(l)))
        this.progress(batch.length)
      }
      level = next
      depths = nextDepths
    }
  }

  /** Record a checked block's size, and compare it with what its link says. */
  private settle(l: DagLink, size: number): void {
    this.sizes.setKey(linkKey(l), size)
    this.compareSize(l, size)
  }

  private compareSize(l: DagLink, size: number | undefined): void {
    if (l.size === undefined || size === undefined || size < 0 || size === l.size) return
    const what = l.as === 'chunk' ? 'chunk' : l.as === 'record' ? 'record' : l.path === undefined ? 'part' : 'file'
    const said = l.path === undefined ? `it gives ${what} ${cidToString(l.cid)} ${l.size} bytes` : `its entry '${l.path}' gives ${what} ${cidToString(l.cid)} ${l.size} bytes`
    throw new CorruptBlockError(cidToString(l.from ?? l.cid), `${said}, the ${what} has ${size}`)
  }

  /**
   * A file node's place in its file's tree: every leaf (a node listing chunks) at the same
   * depth, as the writer builds it; parts are followed one level down.
   */
  private fileShape(l: DagLink, children: DagLink[], at: { root: CID; depth: number } | undefined, nextDepths: Map<DagLink, { root: CID; depth: number }>): void {
    const place = at ?? { root: l.cid, depth: 0 }
    if (children[0]?.as === 'chunk') {
      const depth = this.leafDepths.get(place.root)
      if (depth === undefined) this.leafDepths.set(place.root, place.depth)
      else if (depth !== place.depth) {
        throw new CorruptBlockError(cidToString(l.cid), `a leaf of file ${cidToString(place.root)} at depth ${place.depth}, where its other leaves are at depth ${depth}`)
      }
      return
    }
    for (const c of children) nextDepths.set(c, { root: place.root, depth: place.depth + 1 })
  }

  /** Chunks: present, and as long as their file node says. */
  private async checkChunks(chunks: DagLink[]): Promise<void> {
    if (chunks.length === 0) return
    const sizes = this.blocks.storedSizes
      ? (await this.blocks.storedSizes(chunks.map((l) => l.cid))).map((s) => s?.size)
      : (await this.blocks.getMany(chunks.map((l) => l.cid))).map((b) => b?.length)
    chunks.forEach((l, i) => {
      const size = sizes[i]
      if (size !== undefined) this.settle(l, size)
      else {
        this.missing.push({ cid: l.cid, as: 'chunk' })
        this.sizes.setKey(linkKey(l), -1)
      }
    })
  }
}

/** The size a block reached as `l` has: a record's or raw file's length, a file node's file size; -1 for others. */
function sizeOfNode(l: DagLink, bytes: Uint8Array): number {
  if (l.as === 'record' || (l.as === 'file' && l.cid.code === RAW)) return bytes.length
  if (l.as === 'file') return (decodeBlockUnchecked<FileNode>(l.cid, bytes)).size
  return -1
}

/** A max-heap of commits by time. */
class CommitHeap {
  private readonly items: CommitInfo[] = []
  get size(): number {
    return this.items.length
  }
  peek(): CommitInfo | undefined {
    return this.items[0]
  }
  push(item: CommitInfo): void {
    const a = this.items
    a.push(item)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (a[p]!.time >= a[i]!.time) break
      ;[a[p], a[i]] = [a[i]!, a[p]!]
      i = p
    }
  }
  pop(): CommitInfo | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && a[l]!.time > a[m]!.time) m = l
        if (r < a.length && a[r]!.time > a[m]!.time) m = r
        if (m === i) break
        ;[a[m], a[i]] = [a[i]!, a[m]!]
        i = m
      }
    }
    return top
  }
}

/** Read and check one commit or tag node; undefined (and recorded as missing) if absent. */
async function readCommitInfo(blocks: Blockstore, cid: CID, missing?: MissingBlock[]): Promise<CommitInfo | undefined> {
  const bytes = await blocks.tryGet(cid)
  if (!bytes) {
    missing?.push({ cid, as: 'commit' })
    return undefined
  }
  verifyBlock(cid, bytes)
  const links = linksOfNode(cid, bytes, 'commit')
  const tree = links.find((l) => l.as === 'tree')?.cid
  const value = decodeBlockUnchecked<{ time?: unknown }>(cid, bytes)
  const time = typeof value.time === 'number' ? value.time : Number.MAX_SAFE_INTEGER
  return { cid, time, parents: links.filter((l) => l.as === 'commit').map((l) => l.cid), tree }
}

/**
 * Commits reachable from `heads` but not from `known`, newest first. Both sides are walked
 * by time, newest first, the known side kept ahead, so that a new commit whose ancestor is
 * known stops the walk there without reading the known history below it. Clock skew only
 * makes it check a few more commits, never fewer.
 */
async function newCommits(blocks: Blockstore, heads: readonly CID[], known: CID[], missing: MissingBlock[]): Promise<{ fresh: CommitInfo[]; infos: CidMap<CommitInfo> }> {
  const infos = new CidMap<CommitInfo>()
  const painted = new CidSet()
  const knownHeap = new CommitHeap()
  const newHeap = new CommitHeap()
  const read = async (cid: CID, report: boolean): Promise<CommitInfo | undefined> => {
    const hit = infos.get(cid)
    if (hit) return hit
    const info = await readCommitInfo(blocks, cid, report ? missing : undefined)
    if (info) infos.set(cid, info)
    return info
  }
  for (const k of known) {
    try {
      const info = await read(k, false)
      if (info) knownHeap.push(info)
    } catch {
      // A known value that does not read as a commit only means less is skipped.
    }
  }
  for (const h of heads) {
    const info = await read(h, true)
    if (info) newHeap.push(info)
  }
  const visited = new CidSet()
  const fresh: CommitInfo[] = []
  while (newHeap.size > 0) {
    const top = newHeap.peek()!
    while (knownHeap.size > 0 && knownHeap.peek()!.time >= top.time) {
      const k = knownHeap.pop()!
      if (!painted.addNew(k.cid)) continue
      for (const p of k.parents) {
        if (painted.has(p)) continue
        const info = await read(p, false).catch(() => undefined)
        if (info) knownHeap.push(info)
      }
    }
    const c = newHeap.pop()!
    if (!visited.addNew(c.cid) || painted.has(c.cid)) continue
    fresh.push(c)
    for (const p of c.parents) {
      if (visited.has(p) || painted.has(p)) continue
      const info = await read(p, true)
      if (info) newHeap.push(info)
    }
  }
  return { fresh, infos }
}

