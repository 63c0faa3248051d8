import { DAG_CBOR, RAW, SHA2_256, cidToString, type CID } from '../codec/cid.js'
import { PedigreeError } from '../errors.js'
import { cutFault, type InternalNode, type LeafNode, type ProllyTree, type TreeNode } from './tree.js'
import { validateTreePath } from './tree-path.js'

/**
 * The canonical form of a tree, node by node. A prolly tree's nodes are fixed by its entries
 * (tree.ts): so a tree whose every node keeps these rules, in the place its parent gives it,
 * is the tree a build of its entries gives, and two trees with the same entries have the same
 * root CID. A tree from outside (a push, a fetch, a bundle) or from an older pedigree may break
 * them: unsafe or unsorted paths, a path twice, counts or greatest keys its parent misstates,
 * or boundaries the content-defined rule does not put there.
 */

/** Where a node sits in its tree, as its parent says (a root: {@link ROOT_PLACE}). */
export interface TreeNodePlace {
  /** The level its parent's level implies; undefined for a root. */
  level?: number
  /** Its greatest key, as its parent gives it. */
  last?: string
  /** The number of entries under it, as its parent gives it. */
  count?: number
  /** The greatest key of the tree before this node: its keys must all sort after it. */
  after?: string
  /** The last node of its level (cut by the end of the items, not by the rule). */
  endsLevel: boolean
  /** Its parent, named when what the parent says of it is wrong. */
  parent?: CID
  root: boolean
}

export const ROOT_PLACE: TreeNodePlace = Object.freeze({ endsLevel: true, root: true })

/** A node that breaks the canonical form, and how. */
export interface TreeFault {
  cid: CID
  problem: string
  /** The path the problem is about, when there is one. */
  path?: string
}

/**
 * Why `node`, in `place`, breaks the canonical form, or undefined if it keeps it (its own
 * items, and what its parent says of it; its children are checked in their own places).
 *
 * @example
 * const why = treeNodeFault(await trees.node(root), ROOT_PLACE)
 */
export function treeNodeFault(node: TreeNode, place: TreeNodePlace): string | undefined {
  if (place.level !== undefined && node.level !== place.level) return `a node of level ${node.level} where its parent has level ${place.level + 1}`
  const leaf = node.level === 0
  const items: readonly [string, ...unknown[]][] = leaf ? (node as LeafNode).entries : (node as InternalNode).children
  if (items.length === 0 && !place.root) return 'an empty node below the root'
  if (!leaf && place.root && items.length === 1) return 'a root with one child (the child is the root of the same entries)'
  let previous = place.after
  let count = 0
  for (const item of items) {
    const key = item[0]
    if (item.length !== (leaf ? 2 : 3)) return `item '${key}' has ${item.length} fields, not ${leaf ? 2 : 3}`
    if (previous !== undefined && !(previous < key)) {
      return previous === key ? `'${key}' is in the tree twice` : `'${key}' comes after '${previous}': keys must be in path order`
    }
    previous = key
    const why = leaf ? entryFault(item as LeafNode['entries'][number]) : childFault(item as InternalNode['children'][number])
    if (why) return why
    count += leaf ? 1 : (item as InternalNode['children'][number])[2]
  }
  const parent = place.parent ? `its parent ${cidToString(place.parent)}` : 'its parent'
  if (place.last !== undefined && previous !== place.last) return `${parent} gives its greatest path as '${place.last}', it is '${previous ?? '(none)'}'`
  if (place.count !== undefined && count !== place.count) return `${parent} says it holds ${place.count} entries, it holds ${count}`
  return cutFault(
    node.level,
    items.map((i) => i[0]),
    place.endsLevel,
  )
}

/** The places of an internal node's children (the node `cid`, in `place`). */
export function childPlaces(node: InternalNode, place: TreeNodePlace, cid?: CID): TreeNodePlace[] {
  const n = node.children.length
  return node.children.map(([last, , count], i) => ({
    level: node.level - 1,
    last,
    count,
    after: i === 0 ? place.after : node.children[i - 1]![0],
    endsLevel: place.endsLevel && i === n - 1,
    root: false,
    parent: cid,
  }))
}

function entryFault([path, entry]: LeafNode['entries'][number]): string | undefined {
  try {
    validateTreePath(path)
  } catch (e) {
    if (e instanceof PedigreeError) return e.message
    throw e
  }
  const fields = Object.keys(entry)
  if (fields.length !== 3 || !('cid' in entry) || !('kind' in entry) || !('size' in entry)) return `entry '${path}' has fields ${fields.join(', ')}, not cid, kind, size`
  const { cid, kind, size } = entry
  if (kind !== 'record' && kind !== 'file') return `entry '${path}' has unknown kind ${JSON.stringify(kind)}`
  if (!Number.isSafeInteger(size) || size < 0) return `entry '${path}' has size ${String(size)}, not a byte count`
  if (cid.version !== 1 || cid.multihash.code !== SHA2_256 || (cid.code !== DAG_CBOR && cid.code !== RAW)) return `entry '${path}' links ${cidToString(cid)}, not a CIDv1 sha2-256 dag-cbor or raw block`
  if (kind === 'record' && cid.code !== DAG_CBOR) return `entry '${path}' is a record but links a raw block`
  return undefined
}

function childFault([last, , count]: InternalNode['children'][number]): string | undefined {
  if (!Number.isSafeInteger(count) || count < 1) return `child '${last}' has count ${String(count)}`
  return undefined
}

/**
 * Finds a path that is an entry and also a folder of a later one (`a` and `a/b`), given the
 * paths of a tree in order. Every path between `a` and `a/b` starts with `a`, so only the
 * paths that are prefixes of the current one can be its folders: a stack of them is enough.
 */
export class PathConflictFinder {
  private readonly prefixes: string[] = []

  /** The entry that is a folder of `path`, if one came before it. */
  add(path: string): string | undefined {
    const stack = this.prefixes
    while (stack.length > 0 && !path.startsWith(stack[stack.length - 1]!)) stack.pop()
    stack.push(path)
    for (let i = 0; i < stack.length - 1; i++) {
      const entry = stack[i]!
      if (path.charCodeAt(entry.length) === 0x2f) return entry
    }
    return undefined
  }
}

/** Tree nodes read at once by {@link findTreeFault}. */
const BATCH = 256

export interface FindTreeFaultOptions {
  /** Called with each leaf once it has passed, in path order (the caller checks what its entries name). */
  onLeaf?: (cid: CID, leaf: LeafNode) => Promise<void> | void
}

/**
 * The first node of the tree `root` that breaks the canonical form (reading it a level at a
 * time, every node once), or a path that is both an entry and a folder; undefined if there is
 * none. A missing node throws NotFoundError naming it; a node that is not a tree node throws
 * CorruptBlockError.
 *
 * @example
 * const fault = await findTreeFault(repo.trees, commit.tree)
 */
export async function findTreeFault(trees: ProllyTree, root: CID, { onLeaf }: FindTreeFaultOptions = {}): Promise<TreeFault | undefined> {
  let level: { cid: CID; place: TreeNodePlace }[] = [{ cid: root, place: ROOT_PLACE }]
  const conflicts = new PathConflictFinder()
  while (level.length > 0) {
    const next: typeof level = []
    for (let i = 0; i < level.length; i += BATCH) {
      const batch = level.slice(i, i + BATCH)
      const nodes = await trees.nodesMany(batch.map((b) => b.cid))
      for (let j = 0; j < batch.length; j++) {
        const { cid, place } = batch[j]!
        const node = nodes[j]!
        const problem = treeNodeFault(node, place)
        if (problem) return { cid, problem }
        if (node.level > 0) {
          const places = childPlaces(node as InternalNode, place, cid)
          ;(node as InternalNode).children.forEach(([, child], k) => next.push({ cid: child, place: places[k]! }))
          continue
        }
        for (const [path] of (node as LeafNode).entries) {
          const entry = conflicts.add(path)
          if (entry !== undefined) return { cid, problem: `'${entry}' is an entry and also a folder (of '${path}'): a checkout cannot write both`, path: entry }
        }
        await onLeaf?.(cid, node as LeafNode)
      }
    }
    level = next
  }
  return undefined
}
