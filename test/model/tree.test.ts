import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import { ProllyTree, type TreeEntry } from '../../src/model/tree.js'
import { MemoryBlockstore } from '../../src/store/memory.js'
import { openLevelStore } from '../../src/store/level.js'
import type { Blockstore } from '../../src/store/blockstore.js'
import type { CID } from '../../src/codec/cid.js'
import { prng, shuffle } from '../helpers/random.js'

function entryFor(path: string, version = 0): TreeEntry {
  const block = encodeNode({ path, version })
  return { cid: block.cid, kind: 'record', size: block.bytes.length }
}

const paths = (n: number, prefix = 'runs'): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}/${String(i).padStart(6, '0')}.json`)

/** A blockstore that counts reads, to check how much of a tree an operation touches. */
class CountingBlockstore extends MemoryBlockstore {
  reads = 0
  override async get(cid: CID): Promise<Uint8Array> {
    this.reads++
    return super.get(cid)
  }
  override async getMany(cids: readonly CID[]): Promise<(Uint8Array | undefined)[]> {
    this.reads += cids.length
    return super.getMany(cids)
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

describe('prolly tree', () => {
  it('gives the same root for the same entries whatever the order and history of edits', async () => {
    const rand = prng(42)
    const all = paths(3000)
    const final = new Map(all.filter((_, i) => i % 7 !== 3).map((p) => [p, entryFor(p, p.length % 3)]))

    const store = new MemoryBlockstore()
    const trees = new ProllyTree(store)
    const reference = await trees.build(final.entries())

    for (let round = 0; round < 4; round++) {
      // Random batches in random order, with detours: entries set to other values,
      // extra entries added then removed again.
      let root = await trees.empty()
      const ops: { path: string; entry: TreeEntry | null }[] = []
      for (const p of shuffle(all, rand)) {
        if (rand() < 0.3) ops.push({ path: p, entry: entryFor(p, 99) })
        if (rand() < 0.1) ops.push({ path: `${p}.tmp`, entry: entryFor(p) })
      }
      for (const [p, e] of shuffle([...final.entries()], rand)) ops.push({ path: p, entry: e })
      for (const op of ops.filter((o) => !final.has(o.path))) ops.push({ path: op.path, entry: null })
      let i = 0
      while (i < ops.length) {
        const size = 1 + Math.floor(rand() * 400)
        root = await trees.edit(root, ops.slice(i, i + size))
        i += size
      }
      expect(root.toString()).toBe(reference.toString())
    }

    const listed = await collect(trees.entries(reference))
    expect(listed.map(([p]) => p)).toEqual([...final.keys()].sort())
    expect(await trees.count(reference)).toBe(final.size)
  })

  it('is several levels deep for many entries and every node stays under the block limit', async () => {
    const store = new MemoryBlockstore()
    const trees = new ProllyTree(store)
    const root = await trees.build(paths(20000).map((p) => [p, entryFor(p)]))
    const node = await trees.node(root)
    expect(node.level).toBeGreaterThanOrEqual(2)
    for await (const { node: n } of trees.nodes(root)) {
      expect(encodeNode(n).bytes.length).toBeLessThan(1024 * 1024)
    }
  })

  it('an edit rewrites O(log n) nodes', async () => {
    const store = new MemoryBlockstore()
    const trees = new ProllyTree(store)
    const root = await trees.build(paths(20000).map((p) => [p, entryFor(p)]))
    const before = new Set<string>()
    for await (const c of store.cids()) before.add(c.toString())
    const depth = (await trees.node(root)).level + 1
    const edited = await trees.edit(root, [{ path: 'runs/010000.json', entry: entryFor('x', 1) }])
    let fresh = 0
    for await (const c of store.cids()) if (!before.has(c.toString())) fresh++
    // One node per level, plus at most a neighbour per level when a boundary moves.
    expect(fresh).toBeGreaterThan(0)
    expect(fresh).toBeLessThanOrEqual(2 * depth)
    expect((await trees.get(edited, 'runs/010000.json'))!.cid.toString()).toBe(entryFor('x', 1).cid.toString())
    expect((await trees.get(root, 'runs/010000.json'))!.cid.toString()).toBe(entryFor('runs/010000.json').cid.toString())
  })

  it('diff visits only the subtrees that differ', async () => {
    const base = new MemoryBlockstore()
    const trees = new ProllyTree(base)
    const all = paths(20000)
    const a = await trees.build(all.map((p) => [p, entryFor(p)]))
    const b = await trees.edit(a, [
      { path: all[5]!, entry: entryFor(all[5]!, 2) },
      { path: all[15000]!, entry: null },
      { path: 'runs/new.json', entry: entryFor('new') },
    ])
    const counting = new CountingBlockstore()
    for await (const cid of base.cids()) await counting.put({ cid, bytes: await base.get(cid) })
    const fresh = new ProllyTree(counting, { cacheNodes: 0 })
    const changes = await collect(fresh.diff(a, b))
    expect(changes.map((c) => [c.type, c.path])).toEqual([
      ['modified', all[5]],
      ['removed', all[15000]],
      ['added', 'runs/new.json'],
    ])
    let total = 0
    for await (const _ of base.cids()) total++
    expect(counting.reads).toBeLessThan(40)
    expect(total).toBeGreaterThan(300)
  })

  it('diff gives exactly the changes between any two trees, of any sizes and depths, under any prefix', async () => {
    const rand = prng(9)
    const trees = new ProllyTree(new MemoryBlockstore(), { cacheNodes: 16 })
    const universe = [...paths(3000, 'a'), ...paths(1500, 'b'), ...paths(300, 'b/c')]
    const pick = (share: number, version: () => number): Map<string, TreeEntry> =>
      new Map(universe.filter(() => rand() < share).map((p) => [p, entryFor(p, version())]))
    // Sizes from empty to most of the universe (one leaf to three levels), overlapping a lot or a little.
    const sets = [new Map<string, TreeEntry>(), pick(0.002, () => 0), pick(0.3, () => 0), pick(0.9, () => 0), pick(0.9, () => (rand() < 0.01 ? 1 : 0))]
    const roots = await Promise.all(sets.map((m) => trees.build(m.entries())))
    for (let i = 0; i < sets.length; i++) {
      for (let j = 0; j < sets.length; j++) {
        const before = sets[i]!
        const after = sets[j]!
        const union = [...new Set([...before.keys(), ...after.keys()])].sort()
        for (const prefix of ['', 'b/', 'b/c/', 'a/0001', 'zzz']) {
          const expected: [string, string][] = []
          for (const p of union) {
            if (!p.startsWith(prefix)) continue
            const x = before.get(p)
            const y = after.get(p)
            if (!x) expected.push(['added', p])
            else if (!y) expected.push(['removed', p])
            else if (x.cid.toString() !== y.cid.toString()) expected.push(['modified', p])
          }
          const got = await collect(trees.diff(roots[i]!, roots[j]!, { prefix }))
          expect(got.map((c) => [c.type, c.path])).toEqual(expected)
          for (const c of got) {
            if (c.type !== 'removed') expect(c.after.cid.toString()).toBe(after.get(c.path)!.cid.toString())
            if (c.type !== 'added') expect(c.before.cid.toString()).toBe(before.get(c.path)!.cid.toString())
          }
        }
      }
    }
  })

  it("editCounted counts what a diff of the two roots finds, whatever the edits (new, changed, unchanged, removed, absent)", async () => {
    const rand = prng(11)
    const trees = new ProllyTree(new MemoryBlockstore(), { cacheNodes: 16 })
    const universe = paths(4000)
    for (const [size, editCount] of [[0, 5], [10, 10], [300, 50], [3000, 1200], [3000, 3]] as const) {
      const base = await trees.build(universe.slice(0, size).map((p) => [p, entryFor(p)] as [string, TreeEntry]))
      const edits = Array.from({ length: editCount }, () => {
        const path = universe[Math.floor(rand() * universe.length)]!
        const r = rand()
        // Removals of absent paths and puts of the entry already there change nothing.
        return { path, entry: r < 0.3 ? null : entryFor(path, r < 0.6 ? 0 : 1) }
      })
      const { root, changes } = await trees.editCounted(base, edits)
      const fromDiff = { added: 0, modified: 0, removed: 0 }
      for await (const c of trees.diff(base, root)) fromDiff[c.type]++
      expect(changes).toEqual(fromDiff)
      expect(root.toString()).toBe((await trees.edit(base, edits)).toString())
    }
  })

  it('keeps its nodes uncompressed in the level store (a walk reads them without inflating), records compressed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pedigree-tree-'))
    const store = await openLevelStore(dir, { lockTimeoutMs: 2_000, packThreshold: 8 * 1024 })
    try {
      const trees = new ProllyTree(store.blocks)
      // Long, repetitive paths: leaves that deflate well, some of them over the pack threshold.
      const all = paths(5000, 'runs/campaign-2026-11/beamline-7/detector-a/calibration')
      const root = await trees.build(all.map((p) => [p, entryFor(p)]))
      const nodes: CID[] = []
      for await (const { cid } of trees.nodes(root)) nodes.push(cid)
      const sizes = await store.blocks.storedSizes!(nodes)
      expect(sizes.some((s) => s!.size >= 8 * 1024)).toBe(true)
      for (const s of sizes) expect(s!.stored).toBe(s!.size)
      // The same kind of bytes written without the hint are compressed: the hint is what keeps nodes as they are.
      const record = encodeNode({ paths: all.slice(0, 300) })
      await store.blocks.putMany([record])
      const [recordSize] = await store.blocks.storedSizes!([record.cid])
      expect(recordSize!.stored).toBeLessThan(recordSize!.size / 2)
      expect((await collect(trees.entries(root))).length).toBe(5000)
    } finally {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('diff and entries respect a prefix', async () => {
    const trees = new ProllyTree(new MemoryBlockstore())
    const a = await trees.build([...paths(2000, 'a'), ...paths(2000, 'b')].map((p) => [p, entryFor(p)]))
    const b = await trees.edit(a, [
      { path: 'a/000001.json', entry: null },
      { path: 'b/000001.json', entry: null },
    ])
    expect((await collect(trees.diff(a, b, { prefix: 'b/' }))).map((c) => c.path)).toEqual(['b/000001.json'])
    expect((await collect(trees.entries(b, { prefix: 'b/00000' }))).map(([p]) => p)).toEqual(
      paths(10, 'b').filter((p) => p !== 'b/000001.json'),
    )
  })

  it('deleting everything gives the empty tree again', async () => {
    const trees = new ProllyTree(new MemoryBlockstore())
    const empty = await trees.empty()
    const all = paths(5000)
    const full = await trees.build(all.map((p) => [p, entryFor(p)]))
    const gone = await trees.edit(full, all.map((path) => ({ path, entry: null })))
    expect(gone.toString()).toBe(empty.toString())
  })

  it('has a stable CID for a fixed input (the format must not drift)', async () => {
    const trees = new ProllyTree(new MemoryBlockstore())
    const root = await trees.build(paths(1000).map((p) => [p, entryFor(p)]))
    expect((await trees.empty()).toString()).toMatchInlineSnapshot(`"bafyreihe3xjbhiqiwsrflipla4g4oxjuviofrg7mfg74wtmd7xe3fj4s7q"`)
    expect(root.toString()).toMatchInlineSnapshot(`"bafyreifwqhnczrrvjrti52letwdch56ndvpshghqitjpisy7xnfneb4nti"`)
  })

  it('refuses edits after which a path is both an entry and a folder, wherever the two fall among the leaves', async () => {
    const trees = new ProllyTree(new MemoryBlockstore())
    // Enough entries for many leaves; 'runs/000100.json' is a file, 'runs/000200' a folder
    // whose entries sort after 'runs/000200.json' and 'runs/000200-x' (between them and their folder).
    const base = [...paths(3000), 'runs/000200/a', 'runs/000200/b', 'runs/000200-x', 'runs/000200.json']
    const root = await trees.build(base.map((p) => [p, entryFor(p)]))
    const refusal = async (edits: { path: string; entry: TreeEntry | null }[]): Promise<string> => {
      const e = await trees.edit(root, edits).catch((err: unknown) => err)
      return e instanceof Error ? e.message : 'accepted'
    }
    expect(await refusal([{ path: 'runs/000100.json/x', entry: entryFor('x') }])).toContain("'runs/000100.json' is an entry")
    expect(await refusal([{ path: 'runs/000200', entry: entryFor('y') }])).toContain("'runs/000200' is an entry")
    expect(await refusal([{ path: 'runs', entry: entryFor('z') }])).toContain("'runs' is an entry")
    // Removing the other side in the same edit makes it a replacement.
    expect(await refusal([{ path: 'runs/000200', entry: entryFor('y') }, { path: 'runs/000200/a', entry: null }, { path: 'runs/000200/b', entry: null }])).toBe('accepted')
    expect(await refusal([{ path: 'runs/000100.json', entry: null }, { path: 'runs/000100.json/x', entry: entryFor('x') }])).toBe('accepted')
    // Neighbours that only share a prefix are no conflict.
    expect(await refusal([{ path: 'runs/000200.jsonl', entry: entryFor('w') }, { path: 'runs/0001', entry: entryFor('v') }])).toBe('accepted')
    // Path order is not probe order: 'a' < 'a.b' but 'a/' > 'a.b/', with many leaves between.
    const apart = await trees.build(['a.b/c', ...paths(3000, 'a.m')].map((p) => [p, entryFor(p)]))
    await expect(trees.edit(apart, [{ path: 'a', entry: entryFor('a') }, { path: 'a.b', entry: entryFor('b') }])).rejects.toThrow("'a.b' is an entry")
    // A folder whose entries run on across a leaf boundary.
    const wide = await trees.build([...paths(2000, 'big/f'), ...paths(50, 'big/g')].map((p) => [p, entryFor(p)]))
    await expect(trees.edit(wide, [{ path: 'big/f', entry: entryFor('f') }])).rejects.toThrow("'big/f' is an entry")
  })

  it('rejects unsafe paths', async () => {
    const trees = new ProllyTree(new MemoryBlockstore() as Blockstore)
    const root = await trees.empty()
    for (const bad of ['/abs', 'a/../b', '', 'a//b', './x', 'a\\b']) {
      await expect(trees.edit(root, [{ path: bad, entry: entryFor('x') }])).rejects.toThrow(/invalid tree path/)
    }
  })
})
