import { encodeNode, rawBlock, type Block } from '../../src/codec/block.js'
import { CHUNKER } from '../../src/codec/chunk.js'
import type { CID } from '../../src/codec/cid.js'
import { commitNode } from '../../src/model/commit.js'
import { ProllyTree, type TreeEntry } from '../../src/model/tree.js'
import { MemoryBlockstore } from '../../src/store/memory.js'

/*
 * Blocks a hostile pusher can make with any dag-cbor library: commits over trees and file nodes
 * that hash right but break the tree's or the file's form. Each verifies block by block; only
 * the structure is wrong.
 */

/** A forged commit: every block it needs (the base's too, when it has one), and what a refusal must say. */
export interface Forgery {
  name: string
  commit: CID
  blocks: Block[]
  /** The block a refusal must name. */
  bad: CID
  /** Words the refusal's reason must hold. */
  says: RegExp
  /** A canonical commit the forged one builds on, sent (and accepted) first under `base`. */
  base?: { commit: CID; blocks: Block[] }
}

const PWNED = rawBlock(new TextEncoder().encode('pwned\n'))
const fileEntry = (size = 6): TreeEntry => ({ cid: PWNED.cid, kind: 'file', size })

function commitOn(tree: CID, message: string, parents: CID[] = []): Block {
  return encodeNode(commitNode({ tree, parents, author: { name: 'forger' }, time: 1_700_000_000_000, message }))
}

/** A commit over one leaf holding `entries` as given (no sorting, no checks). */
function leafForgery(name: string, entries: [string, TreeEntry][], says: RegExp, extra: Block[] = []): Forgery {
  const leaf = encodeNode({ kind: 'tree', level: 0, entries })
  const commit = commitOn(leaf.cid, name)
  return { name, commit: commit.cid, blocks: [PWNED, ...extra, leaf, commit], bad: leaf.cid, says }
}

/** Every block of a canonical tree of `entries`, and its root, built as a commit would. */
async function canonicalTree(entries: [string, TreeEntry][]): Promise<{ root: CID; blocks: Block[] }> {
  const store = new MemoryBlockstore()
  const root = await new ProllyTree(store).build(entries)
  const blocks: Block[] = []
  for await (const { cid } of new ProllyTree(store).nodes(root)) blocks.push({ cid, bytes: await store.get(cid) })
  return { root, blocks }
}

/** Records `r/0000.json` … , each its own block. */
function records(n: number): { blocks: Block[]; entries: [string, TreeEntry][] } {
  const blocks = Array.from({ length: n }, (_, i) => encodeNode({ run: i }))
  return { blocks, entries: blocks.map((b, i) => [`r/${String(i).padStart(4, '0')}.json`, { cid: b.cid, kind: 'record', size: b.bytes.length }]) }
}

/** Every forgery: ones a tree or a file node of a new root commit carries, and ones on top of a canonical commit. */
export async function forgeries(): Promise<Forgery[]> {
  const out: Forgery[] = []

  // A file node whose chunk lengths are not the chunk's (and add up to its declared size).
  const lying = encodeNode({ kind: 'file', size: 1_400_000, chunker: { ...CHUNKER }, chunks: [[PWNED.cid, 700_000], [PWNED.cid, 700_000]] })
  const f = leafForgery('chunk-length', [['f.bin', { cid: lying.cid, kind: 'file', size: 1_400_000 }]], /gives chunk .* 700000 bytes, the chunk has 6/, [lying])
  out.push({ ...f, bad: lying.cid })
  // A file node whose leaves are at different depths.
  const leafA = encodeNode({ kind: 'file', size: 6, chunker: { ...CHUNKER }, chunks: [[PWNED.cid, 6]] })
  const leafB = encodeNode({ kind: 'file', size: 6, chunker: { ...CHUNKER, note: 'b' }, chunks: [[PWNED.cid, 6]] })
  const mid = encodeNode({ kind: 'file', size: 6, chunker: { ...CHUNKER }, parts: [[leafB.cid, 6]] })
  const uneven = encodeNode({ kind: 'file', size: 12, chunker: { ...CHUNKER }, parts: [[leafA.cid, 6], [mid.cid, 6]] })
  out.push({ ...leafForgery('file-depth', [['u.bin', { cid: uneven.cid, kind: 'file', size: 12 }]], /at depth 2, where its other leaves are at depth 1/, [leafA, leafB, mid, uneven]), bad: leafB.cid })

  out.push(leafForgery('traversal', [['../../../../tmp/PWNED.txt', fileEntry()]], /invalid tree path .*'\.\.' segment/))
  out.push(leafForgery('absolute', [['/tmp/PWNED2.txt', fileEntry()]], /it is absolute/))
  out.push(leafForgery('dotdot-inside', [['x/../../PWNED3.txt', fileEntry()]], /'\.\.' segment/))
  out.push(leafForgery('empty-path', [['', fileEntry()]], /it is empty/))
  out.push(leafForgery('store-folder', [['.pedigree/LOCK', fileEntry()]], /'\.pedigree' segment/))
  out.push(leafForgery('unsorted', [['b.txt', fileEntry()], ['a.txt', fileEntry()]], /'a\.txt' comes after 'b\.txt'/))
  out.push(leafForgery('duplicate', [['a.txt', fileEntry()], ['a.txt', fileEntry()]], /'a\.txt' is in the tree twice/))
  out.push(leafForgery('entry-and-folder', [['a', fileEntry()], ['a/b', fileEntry()]], /'a' is an entry and also a folder/))
  out.push(leafForgery('size', [['big.bin', fileEntry(999_999)]], /'big\.bin' gives file .* 999999 bytes, the file has 6/))
  const rec = encodeNode({ a: 1 })
  out.push(leafForgery('record-size', [['r.json', { cid: rec.cid, kind: 'record', size: 999 }]], new RegExp(`'r\\.json' gives record .* 999 bytes, the record has ${rec.bytes.length}`), [rec]))

  // 300 sorted, valid entries in one leaf, where the content-defined rule cuts several.
  const many = records(300)
  const oneLeaf = leafForgery('boundaries', many.entries, /content-defined rule ends a node/, many.blocks)
  out.push(oneLeaf)

  // The canonical tree of the same 300 entries, with its root miscounting a child.
  const canonical = await canonicalTree(many.entries)
  const root = (await new ProllyTree(new BlockList(canonical.blocks)).node(canonical.root)) as { kind: 'tree'; level: number; children: [string, CID, number][] }
  const miscounted = encodeNode({ ...root, children: root.children.map(([k, c, n], i) => [k, c, i === 0 ? n + 1 : n]) })
  const miscountedCommit = commitOn(miscounted.cid, 'count')
  out.push({ name: 'count', commit: miscountedCommit.cid, blocks: [...many.blocks, ...canonical.blocks, miscounted, miscountedCommit], bad: miscounted.cid, says: /holds \d+ entries/ })

  // On top of a canonical commit (only what changed is walked): a root that miscounts, and an entry whose size lies.
  const baseCommit = commitOn(canonical.root, 'base')
  const base = { commit: baseCommit.cid, blocks: [...many.blocks, ...canonical.blocks, baseCommit] }
  const onBase = commitOn(miscounted.cid, 'count on base', [baseCommit.cid])
  out.push({ name: 'count-on-base', commit: onBase.cid, blocks: [miscounted, onBase], bad: miscounted.cid, says: /holds \d+ entries/, base })
  const grown = await canonicalTree([...many.entries, ['zz.bin', fileEntry(999_999)]])
  const sizeOnBase = commitOn(grown.root, 'size on base', [baseCommit.cid])
  out.push({ name: 'size-on-base', commit: sizeOnBase.cid, blocks: [PWNED, ...grown.blocks, sizeOnBase], bad: grown.root, says: /'zz\.bin' gives file .* 999999 bytes, the file has 6/, base })
  const unsortedOnBase = encodeNode({ ...root, children: [...root.children].reverse() })
  const unsortedCommit = commitOn(unsortedOnBase.cid, 'unsorted on base', [baseCommit.cid])
  out.push({ name: 'unsorted-on-base', commit: unsortedCommit.cid, blocks: [unsortedOnBase, unsortedCommit], bad: unsortedOnBase.cid, says: /comes after/, base })
  return out
}

/** A read-only blockstore over a list of blocks (enough for ProllyTree to read them). */
class BlockList extends MemoryBlockstore {
  constructor(blocks: Block[]) {
    super()
    for (const b of blocks) void this.put(b)
  }
}
