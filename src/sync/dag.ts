import { CID, DAG_CBOR, RAW, SHA2_256, cidKey, cidToString } from '../codec/cid.js'
import { decodeBlockUnchecked, linksOf, verifyBlock } from '../codec/block.js'
import { CorruptBlockError } from '../errors.js'
import { checkCommit, isTagShape, type Tag } from '../model/commit.js'
import { isFileNode } from '../model/file.js'

/**
 * How a block was reached, which says what it must be:
 *   commit  a ref's value, a parent or a tag's target: a commit or an annotated tag node
 *   tree    a prolly-tree node
 *   record  a tree entry of kind record (dag-cbor)
 *   file    a tree entry of kind file, or a part of a file node: a raw block or a file node
 *   chunk   a raw chunk listed by a file node
 *   any     something a record links to: any block, whatever it holds
 */
export type NodeKind = 'commit' | 'tree' | 'record' | 'file' | 'chunk' | 'any'

/** A link to follow, with what it must be. `optional` links (from records) may dangle. */
export interface DagLink {
  cid: CID
  as: NodeKind
  optional: boolean
  /** `cidKey(cid)` once {@link linkKey} has computed it (a walk of 100k links looks each up in several maps). */
  key?: string
  /**
   * The bytes the linking node says the target has: a tree entry's size (the record block's
   * length, the file's size), a chunk's length, a part's size. Undefined where nothing says.
   */
  size?: number
  /** The node that gives `size` (named when the target disagrees), and the tree path, if any. */
  from?: CID
  path?: string
}

/** The CID's map key (see CidMap), computed once per link. */
export function linkKey(l: DagLink): string {
  return (l.key ??= cidKey(l.cid))
}

/**
 * Refuse a CID that cannot be part of a pedigree store (only CIDv1, sha2-256, dag-cbor or
 * raw), then check the bytes against it. Throws CorruptBlockError naming the CID.
 */
export function verifyIncoming(cid: CID, bytes: Uint8Array): void {
  verifyBlock(checkIncomingCid(cid), bytes)
}

/** The CID-form half of {@link verifyIncoming}: the CID, if a pedigree store can hold it; CorruptBlockError otherwise. */
export function checkIncomingCid(cid: CID): CID {
  const c = CID.asCID(cid)
  if (!c) throw new CorruptBlockError(String(cid), 'not a CID')
  if (c.version !== 1 || c.multihash.code !== SHA2_256 || (c.code !== DAG_CBOR && c.code !== RAW)) {
    throw new CorruptBlockError(cidToString(c.version === 1 ? c : c.toV1()), 'only CIDv1 with sha2-256 under dag-cbor or raw belongs in a pedigree store')
  }
  return c
}

/**
 * The links of a block reached as `as`, after checking that it has that shape. The bytes
 * must already be verified against the CID (the hash is not checked again). Throws
 * CorruptBlockError naming the CID when the block is not what the link says it is.
 */
export function linksOfNode(cid: CID, bytes: Uint8Array, as: NodeKind, optional = false): DagLink[] {
  const bad = (why: string): never => {
    throw new CorruptBlockError(cidToString(cid), `reached as a ${as === 'any' ? 'link' : as} but ${why}`)
  }
  const link = (c: CID, kind: NodeKind, opt = optional): DagLink => ({ cid: c, as: kind, optional: opt, key: undefined })
  if (cid.code === RAW) {
    if (as === 'file' || as === 'chunk' || as === 'any') return []
    return bad('it is a raw block')
  }
  if (as === 'chunk') return bad('it is not a raw block')
  const value = decodeBlockUnchecked<unknown>(cid, bytes)
  switch (as) {
    case 'commit': {
      if (isTagShape(value)) return [link((value as Tag).target, 'commit')]
      const commit = checkCommit(cid, value)
      return [link(commit.tree, 'tree'), ...commit.parents.map((p) => link(p, 'commit'))]
    }
    case 'tree':
      return treeLinks(cid, value, optional)
    case 'record':
      if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array || CID.asCID(value)) {
        return bad('it is not a map')
      }
      return [...linksOf(value)].map(([, c]) => link(c, 'any', true))
    case 'file': {
      if (!isFileNode(value)) return bad('it is not a well-formed file node')
      const sized = (c: CID, kind: NodeKind, size: number): DagLink => ({ ...link(c, kind), size, from: cid })
      return 'chunks' in value ? value.chunks.map(([c, n]) => sized(c, 'chunk', n)) : value.parts.map(([c, n]) => sized(c, 'file', n))
    }
    default:
      return [...linksOf(value)].map(([, c]) => link(c, 'any', true))
  }
}

/**
 * Whether dag-cbor `bytes` may hold a link. A link is tag 42, which dag-cbor's shortest form
 * writes as the two bytes 0xd8 0x2a; bytes without that pair hold none, whatever else they
 * hold. (The pair may also occur inside a string or a number: then the block is decoded.)
 */
export function mayHoldLinks(bytes: Uint8Array): boolean {
  const last = bytes.length - 1
  for (let i = bytes.indexOf(0xd8); i >= 0 && i < last; i = bytes.indexOf(0xd8, i + 1)) {
    if (bytes[i + 1] === 0x2a) return true
  }
  return false
}

/**
 * {@link linksOfNode} for blocks of this store being sent (already verified, or written here):
 * a record, or a block a record links to, that cannot hold a link is not decoded. A record must
 * still start as a map (major type 5); anything else goes through linksOfNode, which says why.
 */
export function linksOfLocalNode(cid: CID, bytes: Uint8Array, as: NodeKind, optional = false): DagLink[] {
  if (cid.code === DAG_CBOR && (as === 'record' || as === 'any') && bytes.length > 0 && (as === 'any' || bytes[0]! >>> 5 === 5) && !mayHoldLinks(bytes)) return []
  return linksOfNode(cid, bytes, as, optional)
}

/** Tree node links; the same shape check as model/tree.ts applies when it reads a node. */
function treeLinks(cid: CID, value: unknown, optional: boolean): DagLink[] {
  const bad = (why: string): never => {
    throw new CorruptBlockError(cidToString(cid), `not a tree node: ${why}`)
  }
  const v = value as { kind?: unknown; level?: unknown; entries?: unknown; children?: unknown }
  if (!v || typeof v !== 'object' || v.kind !== 'tree') return bad('missing kind "tree"')
  if (!Number.isInteger(v.level) || (v.level as number) < 0 || (v.level as number) > 64) return bad('bad level')
  const out: DagLink[] = []
  if (v.level === 0) {
    if (!Array.isArray(v.entries)) return bad('leaf without entries')
    for (const e of v.entries as unknown[]) {
      const entry = Array.isArray(e) ? (e[1] as { cid?: unknown; kind?: unknown; size?: unknown } | undefined) : undefined
      const c = entry && typeof entry === 'object' ? CID.asCID(entry.cid) : null
      if (!Array.isArray(e) || typeof e[0] !== 'string' || !c) return bad('malformed entry')
      if (entry!.kind !== 'record' && entry!.kind !== 'file') return bad(`entry '${e[0] as string}' has unknown kind ${JSON.stringify(entry!.kind)}`)
      const size = entry!.size
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) return bad(`entry '${e[0] as string}' has size ${String(size)}, not a byte count`)
      out.push({ cid: c, as: entry!.kind, optional, key: undefined, size, from: cid, path: e[0] as string })
    }
  } else {
    if (!Array.isArray(v.children) || v.children.length === 0) return bad('internal node without children')
    for (const ch of v.children as unknown[]) {
      const c = Array.isArray(ch) ? CID.asCID(ch[1]) : null
      if (!Array.isArray(ch) || typeof ch[0] !== 'string' || !c || typeof ch[2] !== 'number') return bad('malformed child')
      out.push({ cid: c, as: 'tree', optional, key: undefined })
    }
  }
  return out
}

/** Commit and tag CIDs linked from a commit-kind node (parents, a tag's target). */
export function commitParents(links: readonly DagLink[]): CID[] {
  return links.filter((l) => l.as === 'commit').map((l) => l.cid)
}

/** A map keyed by CID, since CID objects do not compare by value (keyed by their bytes: see cidKey). */
export class CidMap<V> {
  private readonly map = new Map<string, V>()
  get size(): number {
    return this.map.size
  }
  get(cid: CID): V | undefined {
    return this.map.get(cidKey(cid))
  }
  has(cid: CID): boolean {
    return this.map.has(cidKey(cid))
  }
  set(cid: CID, value: V): this {
    this.map.set(cidKey(cid), value)
    return this
  }
  delete(cid: CID): boolean {
    return this.map.delete(cidKey(cid))
  }
  /** By key ({@link linkKey}, cidKey): for walks that compute each CID's key once. */
  getKey(key: string): V | undefined {
    return this.map.get(key)
  }
  hasKey(key: string): boolean {
    return this.map.has(key)
  }
  setKey(key: string, value: V): this {
    this.map.set(key, value)
    return this
  }
  /** Get and delete. */
  take(cid: CID): V | undefined {
    const k = cidKey(cid)
    const v = this.map.get(k)
    if (v !== undefined) this.map.delete(k)
    return v
  }
  values(): IterableIterator<V> {
    return this.map.values()
  }
}

/** A set of CIDs (by their bytes). */
export class CidSet {
  private readonly set = new Set<string>()
  constructor(cids: Iterable<CID> = []) {
    for (const c of cids) this.add(c)
  }
  get size(): number {
    return this.set.size
  }
  has(cid: CID): boolean {
    return this.set.has(cidKey(cid))
  }
  add(cid: CID): this {
    this.set.add(cidKey(cid))
    return this
  }
  /** Add; true if it was not there yet. */
  addNew(cid: CID): boolean {
    return this.addNewKey(cidKey(cid))
  }
  /** By key ({@link linkKey}, cidKey). */
  hasKey(key: string): boolean {
    return this.set.has(key)
  }
  addNewKey(key: string): boolean {
    if (this.set.has(key)) return false
    this.set.add(key)
    return true
  }
}
