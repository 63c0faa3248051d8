import { describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import { CID } from '../../src/codec/cid.js'
import { decodeDagCbor } from '../../src/codec/dag-cbor-decode.js'
import { ProllyTree, type TreeEntry, type TreeNode } from '../../src/model/tree.js'
import { scanTreeNode } from '../../src/model/tree-raw.js'
import { MemoryBlockstore } from '../../src/store/memory.js'
import { prng, shuffle } from '../helpers/random.js'

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

// Paths whose UTF-8 byte order and JavaScript (UTF-16) order differ: a character above U+FFFF
// (a surrogate pair) sorts before U+E000–U+FFFF in JavaScript, after them by bytes.
const SPECIAL = ['a/\u{1F600}.json', 'a/\uE000.json', 'a/\uFFFD.json', 'a/é.json', 'a/e.json', 'a/z.json', 'a/' + 'x'.repeat(300), 'a/日本/データ.json']
const SIZES = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 + 5, 2 ** 40]

function entryFor(path: string, version = 0, i = 0): TreeEntry {
  const block = encodeNode({ path, version })
  return { cid: block.cid, kind: i % 3 === 0 ? 'file' : 'record', size: SIZES[i % SIZES.length]! }
}

function universe(n: number): string[] {
  return [...SPECIAL, ...Array.from({ length: n }, (_, i) => `runs/${String(i).padStart(5, '0')}${i % 7 === 0 ? '\u{1F4C1}' : i % 11 === 0 ? '\uE123' : ''}.json`)]
}

describe('tree nodes read as bytes (tree-raw)', () => {
  it('give the same keys, CIDs, entries and counts as decoding, for every node of a tree', async () => {
    const blocks = new MemoryBlockstore()
    const trees = new ProllyTree(blocks)
    const root = await trees.build(universe(5000).map((p, i) => [p, entryFor(p, 0, i)]))
    let leaves = 0
    let internal = 0
    for await (const { cid } of trees.nodes(root)) {
      const bytes = await blocks.get(cid)
      const raw = scanTreeNode(bytes)!
      expect(raw).toBeDefined()
      const node = decodeDagCbor<TreeNode>(bytes)
      expect(raw.level).toBe(node.level)
      if ('entries' in node) {
        leaves++
        expect(raw.length).toBe(node.entries.length)
        node.entries.forEach(([path, entry], i) => {
          expect(raw.key(i)).toBe(path)
          expect(raw.entry(i)).toEqual(entry)
          expect(raw.entry(i).cid.equals(entry.cid)).toBe(true)
        })
      } else {
        internal++
        expect(raw.length).toBe(node.children.length)
        node.children.forEach(([last, child, count], i) => {
          expect(raw.key(i)).toBe(last)
          expect(raw.cid(i).equals(child)).toBe(true)
          expect(raw.numbers[i]).toBe(count)
        })
      }
    }
    expect(leaves).toBeGreaterThan(10)
    expect(internal).toBeGreaterThan(0)
  })

  it('leaves every other shape to the decoder', () => {
    const cid = encodeNode({ x: 1 }).cid
    const entry = { cid, kind: 'record', size: 3 }
    const leaf = (entries: unknown[], extra = {}) => encodeNode({ kind: 'tree', level: 0, entries, ...extra }).bytes
    expect(scanTreeNode(leaf([['a', entry]]))).toBeDefined()
    expect(scanTreeNode(leaf([]))).toBeDefined()
    expect(scanTreeNode(leaf([['a', entry]], { note: 'x' }))).toBeUndefined()
    expect(scanTreeNode(leaf([['a', { ...entry, note: 'x' }]]))).toBeUndefined()
    expect(scanTreeNode(leaf([['a', { cid, kind: 'record' }]]))).toBeUndefined()
    expect(scanTreeNode(leaf([['a', { ...entry, size: -1 }]]))).toBeUndefined()
    expect(scanTreeNode(leaf([['a', { ...entry, size: 1.5 }]]))).toBeUndefined()
    expect(scanTreeNode(leaf([['a', entry, 'more']]))).toBeUndefined()
    const v0 = CID.parse('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
    expect(scanTreeNode(leaf([['a', { ...entry, cid: v0 }]]))).toBeUndefined()
    expect(scanTreeNode(encodeNode({ kind: 'tree', level: 1, children: [] }).bytes)).toBeUndefined()
    expect(scanTreeNode(encodeNode({ kind: 'tree', level: 1, children: [['a', cid, -2]] }).bytes)).toBeUndefined()
    expect(scanTreeNode(encodeNode({ kind: 'tree', level: 0, children: [['a', cid, 2]] }).bytes)).toBeUndefined()
    expect(scanTreeNode(encodeNode({ kind: 'tree', level: 1, entries: [['a', entry]] }).bytes)).toBeUndefined()
    const good = leaf([['a', entry]])
    expect(scanTreeNode(good.subarray(0, good.length - 1))).toBeUndefined()
    expect(scanTreeNode(new Uint8Array([...good, 0]))).toBeUndefined()
  })

  it('diff gives exactly the changes, in JavaScript string order, with paths whose byte order differs', async () => {
    const rand = prng(3)
    const all = universe(1200)
    const trees = new ProllyTree(new MemoryBlockstore(), { cacheNodes: 16 })
    const pick = (share: number, changed: number): Map<string, TreeEntry> =>
      new Map(
        shuffle(all.filter(() => rand() < share), rand).map((p, i) => {
          const e = entryFor(p, 0, all.indexOf(p))
          // Some entries change only their kind or size: the same CID, still a modification.
          if (rand() < changed) return [p, i % 3 === 0 ? { ...e, size: e.size + 1 } : i % 3 === 1 ? { ...e, kind: e.kind === 'file' ? 'record' : 'file' } : entryFor(p, 1, all.indexOf(p))]
          return [p, e]
        }),
      )
    const sets = [pick(1, 0), pick(0.95, 0.02), pick(0.5, 0), pick(0.01, 0.5)]
    const roots = await Promise.all(sets.map((m) => trees.build(m.entries())))
    const same = (x: TreeEntry, y: TreeEntry) => x.cid.equals(y.cid) && x.kind === y.kind && x.size === y.size
    for (let i = 0; i < sets.length; i++) {
      for (let j = 0; j < sets.length; j++) {
        const before = sets[i]!
        const after = sets[j]!
        const union = [...new Set([...before.keys(), ...after.keys()])].sort()
        for (const prefix of ['', 'a/', 'runs/0']) {
          const expected: unknown[] = []
          for (const p of union) {
            if (!p.startsWith(prefix)) continue
            const x = before.get(p)
            const y = after.get(p)
            if (!x) expected.push({ type: 'added', path: p, after: y })
            else if (!y) expected.push({ type: 'removed', path: p, before: x })
            else if (!same(x, y)) expected.push({ type: 'modified', path: p, before: x, after: y })
          }
          // As text (a deep comparison of thousands of CIDs is slow): CIDs, kinds and sizes of both sides.
          const show = (cs: unknown[]) => (cs as { type: string; path: string; before?: TreeEntry; after?: TreeEntry }[]).map((c) => `${c.type} ${c.path} ${[c.before, c.after].map((e) => e && `${e.cid} ${e.kind} ${e.size} ${Object.keys(e)}`)}`)
          expect(show(await collect(trees.diff(roots[i]!, roots[j]!, { prefix })))).toEqual(show(expected))
        }
      }
    }
  })

  it('diff compares nodes of another shape by their decoded entries, as before', async () => {
    const blocks = new MemoryBlockstore()
    const trees = new ProllyTree(blocks)
    const paths = ['a', 'b', 'c']
    const entries = paths.map((p, i) => [p, entryFor(p, 0, i + 1)] as [string, TreeEntry])
    const normal = await trees.build(entries)
    // The same entries, each with a field the tree never writes: not a change (only cid, kind and size count).
    const odd = encodeNode({ kind: 'tree', level: 0, entries: entries.map(([p, e]) => [p, { ...e, note: 'x' }]) })
    // And one entry really changed.
    const changed = encodeNode({ kind: 'tree', level: 0, entries: entries.map(([p, e]) => [p, { ...e, note: 'x', ...(p === 'b' ? { size: 99 } : {}) }]) })
    await blocks.putMany([odd, changed])
    expect(await collect(trees.diff(normal, odd.cid))).toEqual([])
    expect(await collect(trees.diff(odd.cid, normal))).toEqual([])
    const got = await collect(trees.diff(normal, changed.cid))
    expect(got).toEqual([{ type: 'modified', path: 'b', before: entries[1]![1], after: { ...entries[1]![1], note: 'x', size: 99 } }])
  })
})
