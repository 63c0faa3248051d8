import { CID, DAG_CBOR, cidToString, sameCid } from '../codec/cid.js'
import { decodeBlock, decodeBlockUnchecked, encodeNode, verifyBlock, type Block } from '../codec/block.js'
import { CorruptBlockError, PathConflictError } from '../errors.js'
import { validateTreePath } from './tree-path.js'
import type { Blockstore } from '../store/blockstore.js'
import { RawNode, sameItemBytes, sameValueBytes, scanTreeNode } from './tree-raw.js'
import { LeafReader, dropShared, expandLevel, frontierCid, rootFrontier, type Frontier, type Span } from './tree-diff-walk.js'

/**
 * The Tree: one ordered map from a full path to an entry, stored as a prolly tree.
 *
 * Node boundaries are chosen by a hash of each item's key, so the same set of entries
 * always gives the same nodes and root CID, whatever the order of the edits that made it
 * (history independence). An edit rewrites the nodes on its path plus, rarely, a
 * neighbour whose boundary moved: O(log n). Two trees diff by walking both at once and
 * skipping every subtree whose CID is the same on both sides.
 *
 * Format (dag-cbor; field names are part of the format):
 *   leaf:     {kind: "tree", level: 0, entries:  [[path, {cid, kind, size}], …]}
 *   internal: {kind: "tree", level: n, children: [[lastPath, cid, count], …]}
 * `lastPath` is the greatest path under the child; `count` the number of entries under it.
 */

export type EntryKind = 'record' | 'file'

export interface TreeEntry {
  cid: CID
  kind: EntryKind
  /** Bytes of the file, or of the record's dag-cbor encoding. */
  size: number
}

export interface LeafNode {
  kind: 'tree'
  level: 0
  entries: [string, TreeEntry][]
}

export interface InternalNode {
  kind: 'tree'
  level: number
  children: [string, CID, number][]
}

export type TreeNode = LeafNode | InternalNode

/** One edit: set `path` to `entry`, or remove it (`entry` null). */
export interface TreeEdit {
  path: string
  entry: TreeEntry | null
}

export type TreeChange =
  | { type: 'added'; path: string; after: TreeEntry }
  | { type: 'removed'; path: string; before: TreeEntry }
  | { type: 'modified'; path: string; before: TreeEntry; after: TreeEntry }

/** Average items per node is 2^BOUNDARY_BITS (64). */
const BOUNDARY_BITS = 6
/** Nodes a walk in path order reads with one `getMany` (at most half the node cache). */
const WALK_AHEAD_NODES = 32
/** A node is cut early when its estimated encoding passes this, keeping every node under the block limit. */
const MAX_NODE_BYTES = 256 * 1024

// ---------------------------------------------------------------------------------
// Boundaries

/**
 * A 32-bit hash of a key, seeded by the level (FNV-1a then murmur3's finaliser).
 * It is part of the format: changing it changes every tree's CID.
 */
function keyHash(key: string, level: number): number {
  let h = (0x811c9dc5 ^ Math.imul(level + 1, 0x9e3779b1)) >>> 0
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

const isBoundary = (key: string, level: number): boolean => keyHash(key, level) >>> (32 - BOUNDARY_BITS) === 0

/** Deterministic size estimate of one item, used only for the early cut. */
const itemWeight = (key: string): number => key.length * 3 + 64

/**
 * Why a node of `level` whose items have these keys is not one the chunker below cuts, or
 * undefined if it is: no cut may fall inside it, and one must fall after its last item unless
 * the node ends its level (the last node of a level is cut by the end of the items). A tree
 * whose every node passes (see tree-check.ts) is the one a build of its entries gives.
 */
export function cutFault(level: number, keys: readonly string[], endsLevel: boolean): string | undefined {
  let weight = 0
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    weight += itemWeight(key)
    const cut = isBoundary(key, level) || weight >= MAX_NODE_BYTES
    if (cut && i < keys.length - 1) return `it goes on after '${key}', where the content-defined rule ends a node`
    if (!cut && i === keys.length - 1 && !endsLevel) return `it ends at '${key}', where the content-defined rule does not end a node`
  }
  return undefined
}

/** Items of one level; for level > 0 the value is a child descriptor. */
type Child = { cid: CID; count: number }
type Item<V> = [string, V]

/**
 * Cuts a sorted stream of items into nodes. Restarting it at any node start of the old
 * level gives the same cuts as a build from scratch, because a cut depends only on the
 * items since the previous cut.
 */
class LevelChunker<V> {
  private buffer: Item<V>[] = []
  private weight = 0
  readonly nodes: Item<V>[][] = []
  constructor(private readonly level: number) {}

  push(item: Item<V>): void {
    this.buffer.push(item)
    this.weight += itemWeight(item[0])
    if (isBoundary(item[0], this.level) || this.weight >= MAX_NODE_BYTES) this.cut()
  }
  get atBoundary(): boolean {
    return this.buffer.length === 0
  }
  flush(): void {
    if (this.buffer.length > 0) this.cut()
  }
  private cut(): void {
    this.nodes.push(this.buffer)
    this.buffer = []
    this.weight = 0
  }
}

// ---------------------------------------------------------------------------------

/** A node an edit wrote, with its level (the cache keeps internal nodes only). */
type WrittenNode = Block & { level: number }

/** Folders {@link ProllyTree.firstPathConflict} remembers (each one a lookup when forgotten). */
const MAX_KNOWN_FOLDERS = 100_000

const sortKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/**
 * Reads, edits and diffs prolly trees in one blockstore, caching decoded nodes.
 * Every node read is verified against its CID.
 */
export class ProllyTree {
  /** Decoded nodes, and nodes a diff read as bytes (decoded here when something else wants them). */
  private readonly cache = new Map<string, TreeNode | RawNode>()
  private readonly cacheLimit: number

  constructor(
    private readonly blocks: Blockstore,
    { cacheNodes = 4096 }: { cacheNodes?: number } = {},
  ) {
    this.cacheLimit = cacheNodes
  }

  /** The empty tree's root, written to the store. Its CID is the same everywhere. */
  async empty(): Promise<CID> {
    const block = encodeNode(emptyLeaf())
    await this.blocks.putMany([block], { compress: false })
    return block.cid
  }

  /** Load and verify one node. */
  async node(cid: CID): Promise<TreeNode> {
    const key = cidToString(cid)
    const hit = this.cached(key, cid)
    if (hit) return hit
    const node = checkTreeNode(cid, decodeBlock(cid, await this.blocks.get(cid)))
    this.keep(key, node)
    return node
  }

  /** The cached node, decoded (a node a diff kept as bytes is decoded now, and kept so). */
  private cached(key: string, cid: CID): TreeNode | undefined {
    const hit = this.cache.get(key)
    if (!(hit instanceof RawNode)) return hit
    // Verified when it was read, and of the shape the node check accepts.
    const node = checkTreeNode(cid, decodeBlockUnchecked(cid, hit.bytes))
    this.cache.set(key, node)
    return node
  }

  private keep(key: string, node: TreeNode | RawNode): void {
    if (this.cache.size >= this.cacheLimit) this.cache.delete(this.cache.keys().next().value as string)
    this.cache.set(key, node)
  }

  /**
   * The child at `index` of `parent`, for a walk in path order: when it is not cached, it and
   * the next siblings not cached are read with one `getMany`, since the walk will want them
   * next. A scan of 100k entries then makes ~50 store round trips instead of ~1600.
   */
  private async nextChild(parent: InternalNode, index: number): Promise<TreeNode> {
    const cid = parent.children[index]![1]
    const hit = this.cached(cidToString(cid), cid)
    if (hit) return hit
    const ahead = Math.max(1, Math.min(WALK_AHEAD_NODES, this.cacheLimit >> 1))
    const cids = parent.children
      .slice(index, index + ahead)
      .map((c) => c[1])
      .filter((c, j) => j === 0 || !this.cache.has(cidToString(c)))
    const blocks = await this.blocks.getMany(cids)
    cids.forEach((c, j) => {
      const bytes = blocks[j]
      if (bytes) this.keep(cidToString(c), checkTreeNode(c, decodeBlock(c, bytes)))
    })
    // Read alone when missing, so that the error is the one node() gives.
    return this.cached(cidToString(cid), cid) ?? this.node(cid)
  }

  /**
   * Many nodes by CID, in order, each verified against its CID and checked for shape; not
   * cached (for walks that read each node once). A missing node throws NotFoundError naming it.
   */
  async nodesMany(cids: readonly CID[]): Promise<TreeNode[]> {
    const blocks = await this.blocks.getMany(cids)
    const out: TreeNode[] = []
    for (let i = 0; i < cids.length; i++) {
      const cid = cids[i]!
      const bytes = blocks[i]
      out.push(bytes ? checkTreeNode(cid, decodeBlock(cid, bytes)) : await this.node(cid))
    }
    return out
  }

  /** Number of entries in the tree. */
  async count(root: CID): Promise<number> {
    const node = await this.node(root)
    return node.level === 0 ? (node as LeafNode).entries.length : (node as InternalNode).children.reduce((n, c) => n + c[2], 0)
  }

  /** The entry at `path`, or undefined. */
  async get(root: CID, path: string): Promise<TreeEntry | undefined> {
    let node = await this.node(root)
    while (node.level > 0) {
      const children = (node as InternalNode).children
      const i = lowerBound(children, path)
      if (i === children.length) return undefined
      node = await this.node(children[i]![1])
    }
    const entries = (node as LeafNode).entries
    const i = lowerBound(entries, path)
    return i < entries.length && entries[i]![0] === path ? entries[i]![1] : undefined
  }

  /** Entries in path order, optionally only those under `prefix` (a plain string prefix). */
  async *entries(root: CID, { prefix = '' }: { prefix?: string } = {}): AsyncGenerator<[string, TreeEntry]> {
    const cursor = await this.seek(root, 0, prefix)
    while (cursor) {
      const leaf = cursor.node as LeafNode
      for (let i = lowerBound(leaf.entries, prefix); i < leaf.entries.length; i++) {
        const item = leaf.entries[i]!
        if (!item[0].startsWith(prefix)) {
          if (item[0] > prefix) return
          continue
        }
        yield item
      }
      if (!(await this.advance(cursor, true))) return
    }
  }

  /**
   * The leaves holding the entries under `prefix`, in path order, each with the range
   * [from, to) of its entries under the prefix: a scan costs one step per leaf instead of one
   * per entry, and a leaf of the usual shape stays as its verified bytes (RawNode), so that an
   * entry costs no CID or map until asked for (`cidBytes(i)`, `kind(i)`, `key(i)`). Leaves are
   * read WALK_AHEAD_NODES at a time and not cached (a scan reads each once).
   */
  async *leaves(root: CID, { prefix = '' }: { prefix?: string } = {}): AsyncGenerator<{ leaf: LeafView; from: number; to: number }> {
    const top = await this.node(root)
    const ahead = Math.max(1, Math.min(WALK_AHEAD_NODES, this.cacheLimit >> 1))
    // Internal nodes from the root down, in path order; at level 1, the leaves a batch at a time.
    const stack: { node: InternalNode; index: number }[] = []
    const range = (leaf: LeafView): { from: number; to: number; end: boolean } => {
      let from = 0
      if (prefix !== '') while (from < leaf.length && leaf.key(from) < prefix) from++
      let to = from
      if (prefix === '') to = leaf.length
      else while (to < leaf.length && leaf.key(to).startsWith(prefix)) to++
      return { from, to, end: to < leaf.length }
    }
    if (top.level === 0) {
      const leaf = new DecodedView(top) as LeafView
      const { from, to } = range(leaf)
      if (to > from) yield { leaf, from, to }
      return
    }
    stack.push({ node: top as InternalNode, index: Math.min(lowerBound((top as InternalNode).children, prefix), (top as InternalNode).children.length - 1) })
    while (stack.length > 0) {
      const at = stack[stack.length - 1]!
      const children = at.node.children
      if (at.index >= children.length) {
        stack.pop()
        continue
      }
      if (at.node.level > 1) {
        const child = (await this.node(children[at.index++]![1])) as InternalNode
        stack.push({ node: child, index: Math.min(lowerBound(child.children, prefix), child.children.length - 1) })
        continue
      }
      const cids = children.slice(at.index, at.index + ahead).map((c) => c[1])
      at.index += cids.length
      const views = await this.loadViews(cids, false)
      for (const view of views) {
        const leaf = view as LeafView
        const { from, to, end } = range(leaf)
        if (to > from) yield { leaf, from, to }
        if (end) return
      }
    }
  }

  /**
   * Apply edits and return the new root. Only new nodes are written; the old tree is
   * untouched (nothing is ever rewritten). The result depends only on the final set of
   * entries, never on the order of edits.
   */
  async edit(root: CID, edits: Iterable<TreeEdit>): Promise<CID> {
    return (await this.editCounted(root, edits)).root
  }

  /**
   * {@link edit}, also counting the paths it added, modified (a different entry) and removed,
   * as a diff of the old and new roots would, from the leaves the edit rewrites anyway.
   */
  async editCounted(root: CID, edits: Iterable<TreeEdit>): Promise<{ root: CID; changes: EditCounts }> {
    const changes: EditCounts = { added: 0, modified: 0, removed: 0 }
    const byPath = new Map<string, TreeEntry | null>()
    for (const e of edits) byPath.set(validateTreePath(e.path, { removing: e.entry === null }), e.entry)
    if (byPath.size === 0) return { root, changes }
    const sorted = [...byPath.entries()].sort((a, b) => sortKey(a[0], b[0]))
    await this.refusePathConflicts(root, sorted, byPath)
    const written: WrittenNode[] = []
    let rootNode = await this.node(root)
    let level = 0
    let levelEdits: Item<unknown>[] = sorted
    let newNodes: Item<unknown>[][]
    // Apply edits level by level until the root's level; each level's rewritten nodes
    // become the edits of the level above (delete old descriptors, put new ones).
    for (;;) {
      if (level === rootNode.level) {
        newNodes = this.chunkWhole(level, mergeSorted(nodeItems(rootNode), levelEdits, level === 0 ? changes : undefined))
        break
      }
      const spans = await this.rewriteSpans(root, level, levelEdits, level === 0 ? changes : undefined)
      const upEdits = new Map<string, unknown>()
      for (const span of spans) for (const key of span.removed) upEdits.set(key, null)
      for (const span of spans) {
        for (const items of span.nodes) {
          const child = this.writeNode(level, items, written)
          upEdits.set(child[0], child[1])
        }
      }
      levelEdits = [...upEdits.entries()].sort((a, b) => sortKey(a[0], b[0]))
      level++
    }
    // Build upward from the root's level until one node remains, then collapse
    // single-child roots so the shape equals a build from scratch.
    for (;;) {
      if (newNodes.length === 0) {
        const block = encodeNode(emptyLeaf())
        written.push({ ...block, level: 0 })
        await this.blocks.putMany(written, { compress: false })
        return { root: block.cid, changes }
      }
      if (newNodes.length === 1) break
      const up = newNodes.map((items) => this.writeNode(level, items, written))
      level++
      newNodes = this.chunkWhole(level, up)
    }
    let top = newNodes[0]!
    while (level > 0 && top.length === 1) {
      const only = (top[0]![1] as Child).cid
      const node = this.findWritten(written, only) ?? (await this.node(only))
      level = node.level
      top = nodeItems(node)
    }
    const rootBlock = encodeNode(makeNode(level, top))
    written.push({ ...rootBlock, level })
    await this.blocks.putMany(written, { compress: false })
    for (const b of written) this.remember(b)
    return { root: rootBlock.cid, changes }
  }

  /**
   * Refuse edits after which a path would be both an entry and a folder (`a` and `a/b`): such
   * a tree cannot be checked out. Only what the edits add is checked, before anything is
   * written: every distinct folder above an added path (is it an entry?), and the entries of
   * `root` under each added path that the edits leave in place, found by one pass over the
   * leaves that hold them (the leaves the edit reads anyway).
   */
  private async refusePathConflicts(root: CID, sorted: readonly Item<TreeEntry | null>[], byPath: ReadonlyMap<string, TreeEntry | null>): Promise<void> {
    const added: string[] = []
    for (const [path, entry] of sorted) if (entry !== null) added.push(path)
    if (added.length === 0) return
    // Folders above added paths: none may be an entry of the new tree.
    const folders = new Map<string, string>()
    for (const path of added) {
      // Upward from the parent, until a folder already listed (its own are listed with it).
      for (let end = path.lastIndexOf('/'); end > 0; end = path.lastIndexOf('/', end - 1)) {
        const folder = path.slice(0, end)
        if (folders.has(folder)) break
        folders.set(folder, path)
      }
    }
    for (const [folder, under] of folders) {
      const edit = byPath.get(folder)
      if (edit !== undefined ? edit !== null : (await this.get(root, folder)) !== undefined) throw new PathConflictError(folder, under)
    }
    // Added paths: none may be a folder of the new tree (entries added under one were found above).
    // In path order, `a/` comes after `a.json/`: a probe before the current leaf seeks afresh.
    let cursor: Cursor | undefined
    for (const path of added) {
      const probe = `${path}/`
      // Past the last leaf (an empty tree, or paths appended at the end): nothing sorts after it.
      if (cursor && probe > lastKey(cursor.node) && cursor.isLastAtLevel()) continue
      if (!cursor || probe > lastKey(cursor.node) || probe < firstKey(cursor.node)) cursor = await this.seek(root, 0, probe)
      if (!cursor) return
      let entries = (cursor.node as LeafNode).entries
      let i = lowerBound(entries, probe)
      let moved = false
      for (;;) {
        if (i === entries.length) {
          // The folder goes on in the next leaf (rare): read on, and seek afresh for the next
          // probe, which may sort before this leaf.
          const more = !cursor.isLastAtLevel() && (await this.advance(cursor))
          if (!more) break
          entries = (cursor.node as LeafNode).entries
          i = 0
          moved = true
          continue
        }
        const key = entries[i]![0]
        if (!key.startsWith(probe)) break
        if (byPath.get(key) !== null) throw new PathConflictError(probe.slice(0, -1), key)
        i++
      }
      if (moved) cursor = undefined
    }
  }

  /**
   * The first path of the tree `root` that is an entry and also a folder of another entry (a
   * tree {@link edit} refuses to make, but an older pedigree or a remote may have), in one
   * pass over the entries: each distinct folder is looked up once.
   */
  async firstPathConflict(root: CID): Promise<{ entry: string; under: string } | undefined> {
    let known = new Map<string, boolean>()
    for await (const [path] of this.entries(root)) {
      for (let end = path.lastIndexOf('/'); end > 0; end = path.lastIndexOf('/', end - 1)) {
        const folder = path.slice(0, end)
        let isEntry = known.get(folder)
        if (isEntry === undefined) {
          isEntry = (await this.get(root, folder)) !== undefined
          if (known.size >= MAX_KNOWN_FOLDERS) known = new Map()
          known.set(folder, isEntry)
        } else if (!isEntry) break // its own folders were looked up with it
        if (isEntry) return { entry: folder, under: path }
      }
    }
    return undefined
  }

  /** Build a tree from entries in any order. */
  async build(entries: Iterable<[string, TreeEntry]>): Promise<CID> {
    return this.edit(await this.empty(), [...entries].map(([path, entry]) => ({ path, entry })))
  }

  /**
   * Changes from tree `a` to tree `b`, in path order. Subtrees with the same CID on both
   * sides are skipped without being read, so the cost follows the size of the difference.
   *
   * Both trees are walked a level at a time: the nodes still to look at on each side form a
   * list in key order (a frontier); a node present on both sides (same CID, hence same last
   * key) is dropped from both, and every remaining node of the highest level is read, all of
   * them with one `getMany`, and replaced by its children. When only leaves remain, their
   * entries are merged in path order, the leaves read a window at a time. A diff of a few
   * changes in a million entries thus makes one store round trip per level instead of one
   * per node. Memory holds the frontier: about one descriptor per differing leaf.
   */
  async *diff(a: CID, b: CID, { prefix = '' }: { prefix?: string } = {}): AsyncGenerator<TreeChange> {
    if (a.equals(b)) return
    const [rootA, rootB] = await this.loadViews([a, b], true)
    let left: (Frontier | Span)[] = [rootFrontier(a, rootA!)]
    let right: (Frontier | Span)[] = [rootFrontier(b, rootB!)]
    let l: Frontier[]
    let r: Frontier[]
    for (;;) {
      ;[l, r] = dropShared(left, right)
      let top = 0
      for (const f of l) if (f.level > top) top = f.level
      for (const f of r) if (f.level > top) top = f.level
      if (top === 0) break
      await this.loadFrontier([...l, ...r].filter((f) => f.level === top && !f.view), true)
      left = expandLevel(l, top, prefix)
      right = expandLevel(r, top, prefix)
    }
    // Only leaves remain, in key order on each side: merge their entries. Entries that are the
    // same bytes on both sides (nearly all of them) are passed over without being decoded.
    const load = (fs: Frontier[]): Promise<void> => this.loadFrontier(fs, false)
    const x = new LeafReader(load, l, prefix)
    const y = new LeafReader(load, r, prefix)
    await Promise.all([x.fill(), y.fill()])
    for (;;) {
      if (!x.node && !(await x.fill())) {
        while (y.node || (await y.fill())) {
          yield { type: 'added', path: y.key(), after: y.entry() }
          y.advance()
        }
        return
      }
      if (!y.node && !(await y.fill())) {
        while (x.node || (await x.fill())) {
          yield { type: 'removed', path: x.key(), before: x.entry() }
          x.advance()
        }
        return
      }
      const xn = x.node!
      const yn = y.node!
      if (xn.raw && yn.raw && sameItemBytes(xn, x.at, yn, y.at)) {
        x.advance()
        y.advance()
        continue
      }
      const xk = x.key()
      const yk = y.key()
      if (xk < yk) {
        yield { type: 'removed', path: xk, before: x.entry() }
        x.advance()
      } else if (yk < xk) {
        yield { type: 'added', path: yk, after: y.entry() }
        y.advance()
      } else {
        if (!(xn.raw && yn.raw && sameValueBytes(xn, x.at, yn, y.at))) {
          // Different bytes are a different entry unless a block spells the same one otherwise.
          const before = x.entry()
          const after = y.entry()
          if (!sameEntry(before, after)) yield { type: 'modified', path: xk, before, after }
        }
        x.advance()
        y.advance()
      }
    }
  }

  /** Read the nodes of these frontier items (their CIDs, one `getMany`) into their `view`. */
  private async loadFrontier(fs: Frontier[], keepLeaves: boolean): Promise<void> {
    if (fs.length === 0) return
    const views = await this.loadViews(
      fs.map((f) => frontierCid(f)),
      keepLeaves,
    )
    for (let i = 0; i < fs.length; i++) fs[i]!.view = views[i]!
  }

  /**
   * Nodes by CID, in order: from the cache, the rest with one `getMany`, each verified. Nodes of
   * the shape the tree writes stay as their verified bytes (RawNode, see tree-raw.ts), others
   * are decoded and checked as everywhere. Internal nodes are cached; leaves with `keepLeaves`,
   * or while the cache is less than half full (a walk over many leaves would otherwise push out
   * the internal nodes that every later walk needs).
   */
  private async loadViews(cids: readonly CID[], keepLeaves: boolean): Promise<NodeView[]> {
    const out = new Array<NodeView>(cids.length)
    const missing: number[] = []
    for (let i = 0; i < cids.length; i++) {
      const hit = this.cache.get(cidToString(cids[i]!))
      if (hit) out[i] = hit instanceof RawNode ? hit : new DecodedView(hit)
      else missing.push(i)
    }
    if (missing.length === 0) return out
    const blocks = await this.blocks.getMany(missing.map((i) => cids[i]!))
    for (let j = 0; j < missing.length; j++) {
      const i = missing[j]!
      const cid = cids[i]!
      const bytes = blocks[j]
      // Read alone when missing, so that the error is the one node() gives.
      if (!bytes) {
        out[i] = new DecodedView(await this.node(cid))
        continue
      }
      verifyBlock(cid, bytes)
      // A raw node keeps its bytes (in the cache, too): not a view that would keep a larger
      // buffer alive (a block read from a pack comes as a view of the range read).
      const raw = cid.code === DAG_CBOR ? scanTreeNode(bytes.byteLength + 64 < bytes.buffer.byteLength ? new Uint8Array(bytes) : bytes) : undefined
      const node = raw ?? checkTreeNode(cid, decodeBlockUnchecked(cid, bytes))
      if (node.level > 0 || keepLeaves || this.cache.size < this.cacheLimit >> 1) this.keep(cidToString(cid), node)
      out[i] = raw ?? new DecodedView(node as TreeNode)
    }
    return out
  }

  /** Every node CID of the tree (for fsck and sync), parents before children. */
  async *nodes(root: CID): AsyncGenerator<{ cid: CID; node: TreeNode }> {
    const stack = [root]
    while (stack.length > 0) {
      const cid = stack.pop()!
      const node = await this.node(cid)
      yield { cid, node }
      if (node.level > 0) for (const c of [...(node as InternalNode).children].reverse()) stack.push(c[1])
    }
  }

  // -------------------------------------------------------------------------------

  /** Rewrite the runs of nodes at `level` that the edits touch. */
  private async rewriteSpans(
    root: CID,
    level: number,
    edits: Item<unknown>[],
    changes?: EditCounts,
  ): Promise<{ removed: string[]; nodes: Item<unknown>[][] }[]> {
    const spans: { removed: string[]; nodes: Item<unknown>[][] }[] = []
    let i = 0
    while (i < edits.length) {
      const cursor = (await this.seek(root, level, edits[i]![0]))!
      const chunker = new LevelChunker<unknown>(level)
      const removed: string[] = []
      for (;;) {
        const items = nodeItems(cursor.node)
        const last = lastKey(cursor.node)
        const isLast = cursor.isLastAtLevel()
        let j = i
        while (j < edits.length && (isLast || edits[j]![0] <= last)) j++
        for (const item of mergeSorted(items, edits.slice(i, j), changes)) chunker.push(item)
        i = j
        if (items.length > 0) removed.push(last)
        if (chunker.atBoundary) break
        if (!(await this.advance(cursor))) {
          chunker.flush()
          break
        }
      }
      spans.push({ removed, nodes: chunker.nodes })
    }
    return spans
  }

  private chunkWhole(level: number, items: Item<unknown>[]): Item<unknown>[][] {
    const chunker = new LevelChunker<unknown>(level)
    for (const item of items) chunker.push(item)
    chunker.flush()
    return chunker.nodes
  }

  private writeNode(level: number, items: Item<unknown>[], written: WrittenNode[]): Item<Child> {
    const node = makeNode(level, items)
    const block = encodeNode(node)
    written.push({ ...block, level })
    const count = level === 0 ? items.length : items.reduce((n, it) => n + (it[1] as Child).count, 0)
    return [items[items.length - 1]![0], { cid: block.cid, count }]
  }

  private findWritten(written: WrittenNode[], cid: CID): TreeNode | undefined {
    const b = written.find((w) => w.cid.equals(cid))
    return b ? checkTreeNode(cid, decodeBlock(cid, b.bytes)) : undefined
  }

  private remember(block: WrittenNode): void {
    // Newly written internal nodes are read again by the next edit or diff. Leaves are not
    // kept: a large commit or an ingest writes thousands that are seldom read again soon
    // (~30 KB each decoded), and a leaf is one read when it is wanted.
    if (block.level === 0 || this.cache.size >= this.cacheLimit) return
    // Bytes this process just encoded: no need to hash them again.
    this.cache.set(cidToString(block.cid), checkTreeNode(block.cid, decodeBlockUnchecked(block.cid, block.bytes)))
  }

  /** Position on the node at `level` whose key range holds `key`. */
  private async seek(root: CID, level: number, key: string): Promise<Cursor | undefined> {
    const path: { node: InternalNode; index: number }[] = []
    let node = await this.node(root)
    if (node.level < level) return undefined
    while (node.level > level) {
      const children = (node as InternalNode).children
      let i = lowerBound(children, key)
      if (i === children.length) i = children.length - 1
      path.push({ node: node as InternalNode, index: i })
      node = await this.node(children[i]![1])
    }
    return new Cursor(path, node)
  }

  /**
   * Move the cursor to the next node at its level; false at the end. `walk`: the caller goes
   * on through the following nodes too (entries), so siblings are read ahead.
   */
  private async advance(cursor: Cursor, walk = false): Promise<boolean> {
    let depth = cursor.path.length - 1
    while (depth >= 0 && cursor.path[depth]!.index + 1 >= cursor.path[depth]!.node.children.length) depth--
    if (depth < 0) return false
    cursor.path.length = depth + 1
    cursor.path[depth]!.index++
    const child = (parent: InternalNode, index: number): Promise<TreeNode> => (walk ? this.nextChild(parent, index) : this.node(parent.children[index]![1]))
    let node = await child(cursor.path[depth]!.node, cursor.path[depth]!.index)
    while (node.level > cursor.node.level) {
      cursor.path.push({ node: node as InternalNode, index: 0 })
      node = await child(node as InternalNode, 0)
    }
    cursor.node = node
    return true
  }
}

class Cursor {
  constructor(
    readonly path: { node: InternalNode; index: number }[],
    public node: TreeNode,
  ) {}
  isLastAtLevel(): boolean {
    return this.path.every((p) => p.index === p.node.children.length - 1)
  }
}

/**
 * A node as the diff reads it: a RawNode (the bytes of a node of the usual shape), or a
 * decoded node behind the same methods (a node from the cache, or of another shape).
 */
export type NodeView = RawNode | DecodedView

/** A leaf as {@link ProllyTree.leaves} gives it: its entries by position. */
export interface LeafView {
  readonly length: number
  key(i: number): string
  cid(i: number): CID
  cidBytes(i: number): Uint8Array
  kind(i: number): EntryKind
}

class DecodedView {
  readonly raw = false
  readonly length: number
  readonly level: number
  constructor(readonly node: TreeNode) {
    this.level = node.level
    this.length = node.level === 0 ? (node as LeafNode).entries.length : (node as InternalNode).children.length
  }
  key(i: number): string {
    return this.node.level === 0 ? (this.node as LeafNode).entries[i]![0] : (this.node as InternalNode).children[i]![0]
  }
  cid(i: number): CID {
    return this.node.level === 0 ? (this.node as LeafNode).entries[i]![1].cid : (this.node as InternalNode).children[i]![1]
  }
  entry(i: number): TreeEntry {
    return (this.node as LeafNode).entries[i]![1]
  }
  cidBytes(i: number): Uint8Array {
    return this.cid(i).bytes
  }
  kind(i: number): EntryKind {
    return (this.node as LeafNode).entries[i]![1].kind
  }
}

function emptyLeaf(): LeafNode {
  return { kind: 'tree', level: 0, entries: [] }
}

function makeNode(level: number, items: Item<unknown>[]): TreeNode {
  if (level === 0) return { kind: 'tree', level: 0, entries: items as [string, TreeEntry][] }
  return {
    kind: 'tree',
    level,
    children: (items as Item<Child>[]).map(([k, c]) => [k, c.cid, c.count] as [string, CID, number]),
  }
}

function nodeItems(node: TreeNode): Item<unknown>[] {
  if (node.level === 0) return (node as LeafNode).entries
  return (node as InternalNode).children.map(([k, cid, count]) => [k, { cid, count }] as Item<Child>)
}

function firstKey(node: TreeNode): string {
  const items = node.level === 0 ? (node as LeafNode).entries : (node as InternalNode).children
  return items.length > 0 ? items[0]![0] : ''
}

function lastKey(node: TreeNode): string {
  const items = node.level === 0 ? (node as LeafNode).entries : (node as InternalNode).children
  return items.length > 0 ? items[items.length - 1]![0] : ''
}

/** Index of the first item whose key is >= key. */
function lowerBound(items: readonly [string, ...unknown[]][], key: string): number {
  let lo = 0
  let hi = items.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (items[mid]![0] < key) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** Merge sorted items with sorted edits; an edit value of null deletes. */
/** Paths an edit added, modified and removed. */
export interface EditCounts {
  added: number
  modified: number
  removed: number
}

/** Items with sorted edits applied (null removes); at the leaves, `changes` counts what changed. */
function mergeSorted(items: Item<unknown>[], edits: Item<unknown>[], changes?: EditCounts): Item<unknown>[] {
  if (edits.length === 0) return items
  const out: Item<unknown>[] = []
  let i = 0
  let j = 0
  while (i < items.length || j < edits.length) {
    if (j >= edits.length || (i < items.length && items[i]![0] < edits[j]![0])) out.push(items[i++]!)
    else {
      const e = edits[j++]!
      const old = i < items.length && items[i]![0] === e[0] ? items[i++]! : undefined
      if (e[1] !== null) out.push(e)
      if (changes) {
        if (!old) changes.added += e[1] !== null ? 1 : 0
        else if (e[1] === null) changes.removed++
        else if (!sameEntry(old[1] as TreeEntry, e[1] as TreeEntry)) changes.modified++
      }
    }
  }
  return out
}

function sameEntry(a: TreeEntry, b: TreeEntry): boolean {
  return sameCid(a.cid, b.cid) && a.kind === b.kind && a.size === b.size
}

/** Check the shape of a decoded tree node, so a forged block cannot crash a walk. */
function checkTreeNode(cid: CID, value: unknown): TreeNode {
  const bad = (why: string): never => {
    throw new CorruptBlockError(cidToString(cid), `not a tree node: ${why}`)
  }
  const v = value as Partial<InternalNode & LeafNode>
  if (!v || typeof v !== 'object' || v.kind !== 'tree') bad('missing kind "tree"')
  if (!Number.isInteger(v.level) || v.level! < 0 || v.level! > 64) bad('bad level')
  if (v.level === 0) {
    if (!Array.isArray(v.entries)) bad('leaf without entries')
    for (const e of v.entries!) {
      if (!Array.isArray(e) || typeof e[0] !== 'string' || !e[1] || !CID.asCID(e[1].cid)) bad('malformed entry')
    }
  } else {
    if (!Array.isArray(v.children) || v.children.length === 0) bad('internal node without children')
    for (const c of v.children!) {
      if (!Array.isArray(c) || typeof c[0] !== 'string' || !CID.asCID(c[1]) || typeof c[2] !== 'number') bad('malformed child')
    }
  }
  return v as TreeNode
}
