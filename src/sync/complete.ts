import type { CID } from '../codec/cid.js'
import { decodeBlockUnchecked, verifyBlock } from '../codec/block.js'
import { CorruptBlockError, PedigreeError } from '../errors.js'
import { ProllyTree } from '../model/tree.js'
import type { Blockstore } from '../store/blockstore.js'
import { CidMap, CidSet, linksOfNode, type DagLink } from './dag.js'
import { IncompleteDagError, type MissingBlock } from './errors.js'

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
   * record must be; see receive.ts `receivedMaps`): reached as records, they are not read again.
   */
  checked?: { has(cid: CID): boolean }
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
 * link says (commit, tree node, record, file node, chunk of the stated length), re-hashing
 * every structured node. Optional links (from records) are not required. Throws
 * IncompleteDagError listing the missing blocks, or CorruptBlockError naming a bad one.
 *
 * The cost follows what is new: commits reachable from `known` are not walked, and a new
 * commit's tree is compared with its parent's (identical subtrees skipped by CID), falling
 * back to a full walk of that tree only when something is missing (to list all of it).
 *
 * @example
 * await checkComplete(repo.blocks, [newHead], { known: [oldHead] })
 */
export async function checkComplete(blocks: Blockstore, heads: readonly CID[], { known = [], where = 'incomplete DAG', checked: checkedBlocks, onProgress }: CheckCompleteOptions = {}): Promise<CheckCompleteResult> {
  const trees = new ProllyTree(blocks)
  const missing: MissingBlock[] = []
  const seen = new CidSet()
  let checked = 0
  const progress = (n: number): void => {
    checked += n
    onProgress?.(checked)
  }

  // 1. The commits that are new: reachable from heads but not from any known commit.
  const { fresh, infos } = await newCommits(blocks, heads, [...known], missing)
  progress(fresh.length)
  if (missing.length > 0) throw new IncompleteDagError(missing, where)

  // 2. Each new commit's tree: where it differs from its first parent's (complete) tree.
  const walk = new TypedWalk(blocks, seen, missing, progress, checkedBlocks)
  for (const info of fresh) {
    if (!info.tree) continue
    const parent = info.parents[0] ? infos.get(info.parents[0]) : undefined
    if (!parent?.tree || !(await diffTree(trees, parent.tree, info.tree, walk))) {
      await walk.run([{ cid: info.tree, as: 'tree', optional: false }])
    }
  }
  if (missing.length > 0) throw new IncompleteDagError(missing, where)
  return { commits: fresh.length, blocks: checked }
}

/**
 * Check the entries that changed from `base` to `tree`; false if a tree node is missing
 * (the caller then walks the whole tree to list everything that is).
 */
async function diffTree(trees: ProllyTree, base: CID, tree: CID, walk: TypedWalk): Promise<boolean> {
  const jobs: DagLink[] = []
  try {
    for await (const change of trees.diff(base, tree)) {
      if (change.type === 'removed') continue
      const { cid, kind } = change.after
      if (kind !== 'record' && kind !== 'file') {
        throw new CorruptBlockError(cid.toString(), `tree entry '${change.path}' has unknown kind ${JSON.stringify(kind)}`)
      }
      jobs.push({ cid, as: kind, optional: false })
      if (jobs.length >= BATCH) await walk.run(jobs.splice(0))
    }
  } catch (e) {
    if (e instanceof PedigreeError && e.code === 'ERR_NOT_FOUND') return false
    throw e
  }
  await walk.run(jobs)
  return true
}

/**
 * A level-by-level walk over typed links: reads each level in batches, checks shapes,
 * records missing required blocks and goes on with the rest. Chunks are checked for
 * presence and length only (their hashes were checked when they entered the store).
 */
class TypedWalk {
  constructor(
    private readonly blocks: Blockstore,
    private readonly seen: CidSet,
    private readonly missing: MissingBlock[],
    private readonly progress: (n: number) => void,
    private readonly checked?: { has(cid: CID): boolean },
  ) {}

  async run(start: DagLink[]): Promise<void> {
    let level = start.filter((l) => !l.optional)
    while (level.length > 0) {
      const next: DagLink[] = []
      for (let i = 0; i < level.length; i += BATCH) {
        const batch = level.slice(i, i + BATCH).filter((l) => this.seen.addNew(l.cid))
        if (batch.length === 0) continue
        const chunks = batch.filter((l) => l.as === 'chunk')
        const checked = this.checked
        const nodes = batch.filter((l) => l.as !== 'chunk' && !(checked && l.as === 'record' && checked.has(l.cid)))
        await this.checkChunks(chunks)
        const got = await this.blocks.getMany(nodes.map((l) => l.cid))
        nodes.forEach((l, j) => {
          const bytes = got[j]
          if (!bytes) {
            this.missing.push({ cid: l.cid, as: l.as })
            return
          }
          verifyBlock(l.cid, bytes)
          for (const child of linksOfNode(l.cid, bytes, l.as)) if (!child.optional) next.push(child)
        })
        this.progress(batch.length)
      }
      level = next
    }
  }

  /** Chunks: present, and as long as their file node says. */
  private async checkChunks(chunks: DagLink[]): Promise<void> {
    if (chunks.length === 0) return
    const sizes = this.blocks.storedSizes
      ? (await this.blocks.storedSizes(chunks.map((l) => l.cid))).map((s) => s?.size)
      : (await this.blocks.getMany(chunks.map((l) => l.cid))).map((b) => b?.length)
    chunks.forEach((l, i) => {
      if (sizes[i] === undefined) this.missing.push({ cid: l.cid, as: 'chunk' })
    })
  }
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

