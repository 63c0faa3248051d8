import { CID, DAG_CBOR, cidToString } from '../codec/cid.js'
import { decodeBlock } from '../codec/block.js'
import { CorruptBlockError } from '../errors.js'
import { checkCommit, isTagShape, type Tag } from '../model/commit.js'
import { isFileNode } from '../model/file.js'
import type { LeafNode, InternalNode } from '../model/tree.js'
import { isValidRefName } from '../refs/ref-name.js'
import type { BlockSizes } from '../store/blockstore.js'
import type { Repository } from './repository.js'
import { refNameFor, resolveCommit } from './resolve.js'

export interface DuOptions {
  /** Revisions to measure (`main`, `tags/v1`, `main~3`, a CID prefix). Default: every ref. */
  revs?: string[]
  /** Skip the scan of every block in the store (`store` is then undefined). */
  refsOnly?: boolean
  /** Called now and then with the number of blocks measured so far. */
  onProgress?: (blocks: number) => void
}

/** What one ref (or revision) holds, and what it costs in the store. */
export interface DuRef {
  /** The ref, or the revision as given when it is not a ref. */
  name: string
  /** The commit it resolves to. */
  commit: CID
  /** Commits in its history. */
  commits: number
  /** Bytes of the entries of its tree: what a checkout of it writes. */
  logical: number
  /** `logical` summed over every commit of its history: what checking out each version would write. */
  logicalAllVersions: number
  /** Distinct blocks of its history: commits, tags, tree nodes, records, file nodes and chunks. */
  blocks: number
  /** Their bytes once each (after deduplication, before compression). */
  unique: number
  /** Their bytes as the store keeps them (after deduplication and compression). */
  stored: number
  /** `logicalAllVersions / stored`: what deduplication and compression save together. */
  ratio: number
  /** Blocks of its history that are not in the store (0 unless the store is damaged; see fsck). */
  missing: number
}

/** Every block in the store, reachable or not. */
export interface DuStore {
  blocks: number
  /** Their bytes, uncompressed. */
  size: number
  /** Their bytes as stored. */
  stored: number
}

export interface DuResult {
  refs: DuRef[]
  store?: DuStore
}

/** Blocks asked about in one storedSizes call. */
const SIZE_BATCH = 1024

/**
 * Disk usage, the way a user quotes it: for each ref, the bytes of its current tree, of all
 * the versions in its history, and what the distinct blocks of that history take in the
 * store; and for the whole store, every block. Logical sizes come from the trees' entries
 * (and diffs between consecutive commits, so a long history costs its changes, not its
 * length); stored sizes from the blockstore's index without reading chunk bytes. Memory holds
 * one visited set (a few dozen bytes a block) and one line per commit, never block bytes.
 * Record links to other nodes are not followed: those nodes are counted where they are stored.
 *
 * @example
 * const { refs, store } = await du(repo)
 * for (const r of refs) console.log(r.name, r.logicalAllVersions, r.stored, r.ratio.toFixed(1))
 */
export async function du(repo: Repository, { revs, refsOnly = false, onProgress }: DuOptions = {}): Promise<DuResult> {
  const roots: Array<{ name: string; tip: CID }> = []
  if (revs && revs.length > 0) {
    for (const rev of revs) roots.push(await rootOf(repo, rev))
  } else {
    for await (const { name, cid } of repo.refs.list()) roots.push({ name, tip: cid })
  }
  const sizes = new Sizes(repo, onProgress)
  // Tree totals per commit are the same whichever ref reaches the commit: computed once.
  const totals = new Map<string, number>()
  const refs: DuRef[] = []
  for (const root of roots) refs.push(await measureRef(repo, root, sizes, totals))
  return { refs, store: refsOnly ? undefined : await measureStore(repo, sizes) }
}

/** A ref's own value (which may be an annotated tag), or the commit a revision resolves to. */
async function rootOf(repo: Repository, rev: string): Promise<{ name: string; tip: CID }> {
  if (isValidRefName(rev)) {
    const name = await refNameFor(repo, rev)
    const tip = await repo.refs.get(name)
    if (tip) return { name, tip }
  }
  return { name: rev, tip: (await resolveCommit(repo, rev)).cid }
}

interface CommitLine {
  tree: CID
  firstParent?: string
}

async function measureRef(repo: Repository, { name, tip }: { name: string; tip: CID }, sizes: Sizes, totals: Map<string, number>): Promise<DuRef> {
  const walk = new Walk(sizes)
  const commits = new Map<string, CommitLine>()
  let head: string | undefined
  const stack: CID[] = [tip]
  while (stack.length > 0) {
    const cid = stack.pop()!
    if (!(await walk.see(cid))) continue
    const node = await repo.readNode(cid)
    if (isTagShape(node)) {
      stack.push((node as Tag).target)
      continue
    }
    const commit = checkCommit(cid, node)
    const key = cid.toString()
    head ??= key
    commits.set(key, { tree: commit.tree, firstParent: commit.parents[0]?.toString() })
    await walkTree(repo, commit.tree, walk)
    for (let i = commit.parents.length - 1; i >= 0; i--) stack.push(commit.parents[i]!)
  }
  await walk.flush()
  let all = 0
  for (const key of commits.keys()) all += await commitTotal(repo, key, commits, totals)
  const logical = await commitTotal(repo, head!, commits, totals)
  return {
    name,
    commit: CID.parse(head!),
    commits: commits.size,
    logical,
    logicalAllVersions: all,
    blocks: walk.blocks,
    unique: walk.unique,
    stored: walk.stored,
    ratio: walk.stored > 0 ? all / walk.stored : 0,
    missing: walk.missing,
  }
}

/** Every node of a tree not seen before (shared subtrees are skipped), and the contents of its entries. */
async function walkTree(repo: Repository, root: CID, walk: Walk): Promise<void> {
  const stack: CID[] = [root]
  while (stack.length > 0) {
    const cid = stack.pop()!
    if (!(await walk.see(cid))) continue
    const node = await repo.trees.node(cid)
    if (node.level > 0) {
      for (const child of (node as InternalNode).children) stack.push(child[1])
      continue
    }
    for (const [, entry] of (node as LeafNode).entries) {
      if (!(await walk.see(entry.cid))) continue
      if (entry.kind === 'file' && entry.cid.code === DAG_CBOR) await walkFile(repo, entry.cid, walk)
    }
  }
}

/** The nodes and chunks under a file node (already seen by the caller), reading only nodes. */
async function walkFile(repo: Repository, root: CID, walk: Walk): Promise<void> {
  const stack: CID[] = [root]
  while (stack.length > 0) {
    const cid = stack.pop()!
    const node = decodeBlock(cid, await repo.blocks.get(cid))
    if (!isFileNode(node)) throw new CorruptBlockError(cidToString(cid), 'listed as a file but not a file node')
    if ('chunks' in node) {
      for (const [chunk] of node.chunks) await walk.see(chunk)
    } else {
      for (const [part] of node.parts) if (await walk.see(part)) stack.push(part)
    }
  }
}

/**
 * The bytes of a commit's tree, from its first parent's by the diff between their trees
 * (a root commit sums its entries). Walks down first-parent chains iteratively, so a long
 * history cannot overflow the stack.
 */
async function commitTotal(repo: Repository, key: string, commits: Map<string, CommitLine>, totals: Map<string, number>): Promise<number> {
  const chain: string[] = []
  let k: string | undefined = key
  while (k !== undefined && !totals.has(k)) {
    chain.push(k)
    k = commits.get(k)!.firstParent
  }
  let total = k === undefined ? undefined : totals.get(k)!
  let parentTree = k === undefined ? undefined : commits.get(k)?.tree
  for (let i = chain.length - 1; i >= 0; i--) {
    const line = commits.get(chain[i]!)!
    if (total === undefined || parentTree === undefined) {
      total = 0
      for await (const [, entry] of repo.trees.entries(line.tree)) total += entry.size
    } else {
      for await (const change of repo.trees.diff(parentTree, line.tree)) {
        if (change.type !== 'removed') total += change.after.size
        if (change.type !== 'added') total -= change.before.size
      }
    }
    totals.set(chain[i]!, total)
    parentTree = line.tree
  }
  return total!
}

/** Every block in the store, by its index entry. */
async function measureStore(repo: Repository, sizes: Sizes): Promise<DuStore> {
  const result: DuStore = { blocks: 0, size: 0, stored: 0 }
  let batch: CID[] = []
  const flush = async (): Promise<void> => {
    for (const s of await sizes.of(batch)) {
      if (!s) continue
      result.blocks++
      result.size += s.size
      result.stored += s.stored
    }
    batch = []
  }
  for await (const cid of repo.blocks.cids()) {
    batch.push(cid)
    if (batch.length >= SIZE_BATCH) await flush()
  }
  await flush()
  return result
}

/** Sizes from the blockstore, in batches; from the bytes where the backend cannot say. */
class Sizes {
  private measured = 0
  constructor(
    private readonly repo: Repository,
    private readonly onProgress?: (blocks: number) => void,
  ) {}

  async of(cids: readonly CID[]): Promise<(BlockSizes | undefined)[]> {
    if (cids.length === 0) return []
    const blocks = this.repo.blocks
    const out = blocks.storedSizes
      ? await blocks.storedSizes(cids)
      : (await blocks.getMany(cids)).map((b) => (b ? { size: b.length, stored: b.length } : undefined))
    this.measured += cids.length
    this.onProgress?.(this.measured)
    return out
  }
}

/** The distinct blocks of one history and their sizes, measured in batches as they are found. */
class Walk {
  private readonly visited = new Set<string>()
  private pending: CID[] = []
  blocks = 0
  unique = 0
  stored = 0
  missing = 0

  constructor(private readonly sizes: Sizes) {}

  /** True the first time `cid` is seen (it is then counted). */
  async see(cid: CID): Promise<boolean> {
    const k = visitKey(cid)
    if (this.visited.has(k)) return false
    this.visited.add(k)
    this.pending.push(cid)
    if (this.pending.length >= SIZE_BATCH) await this.flush()
    return true
  }

  async flush(): Promise<void> {
    const batch = this.pending
    this.pending = []
    for (const s of await this.sizes.of(batch)) {
      if (!s) {
        this.missing++
        continue
      }
      this.blocks++
      this.unique += s.size
      this.stored += s.stored
    }
  }
}

/** A compact key for the visited set: the codec and the last 16 bytes of the digest. */
function visitKey(cid: CID): string {
  const d = cid.multihash.digest
  return String.fromCharCode(cid.code & 0xff) + Buffer.from(d.buffer, d.byteOffset + d.length - 16, 16).toString('latin1')
}
