import { describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import { ProllyTree, type TreeEntry } from '../../src/model/tree.js'
import { PathConflictFinder, findTreeFault } from '../../src/model/tree-check.js'
import { MemoryBlockstore } from '../../src/store/memory.js'
import { prng, shuffle } from '../helpers/random.js'

/*
 * The canonical form (tree-check.ts) is exactly what tree edits write: every tree an edit makes,
 * whatever the order and batching of the edits, keeps it (or a receiver would refuse honest
 * pushes); a tree that breaks it is named by the node at fault.
 */

function entryFor(path: string, version = 0): TreeEntry {
  const block = encodeNode({ path, version })
  return { cid: block.cid, kind: 'record', size: block.bytes.length }
}

describe('canonical tree form', () => {
  it('every tree edits make keeps it: small, large, deep, long paths (cut by weight), after removals', { timeout: 60_000 }, async () => {
    const rand = prng(7)
    const trees = new ProllyTree(new MemoryBlockstore())
    let root = await trees.empty()
    expect(await findTreeFault(trees, root)).toBeUndefined()
    const paths = Array.from({ length: 30_000 }, (_, i) => `d${i % 37}/${String(i).padStart(6, '0')}.json`)
    // Paths of ~2000 characters: nodes are cut by their weight, not only by the key hash.
    const long = Array.from({ length: 400 }, (_, i) => `long/${'x'.repeat(1900 + (i % 50))}/${i}`)
    const all = shuffle([...paths, ...long], rand)
    for (let i = 0; i < all.length; i += 7_000) {
      root = await trees.edit(root, all.slice(i, i + 7_000).map((path) => ({ path, entry: entryFor(path) })))
      expect(await findTreeFault(trees, root)).toBeUndefined()
    }
    const gone = shuffle(all, rand).slice(0, 20_000)
    root = await trees.edit(root, gone.map((path) => ({ path, entry: null })))
    expect(await findTreeFault(trees, root)).toBeUndefined()
    for (const n of [1, 2, 63, 64, 65, 200]) {
      const small = await trees.build(paths.slice(0, n).map((p) => [p, entryFor(p, n)]))
      expect(await findTreeFault(trees, small)).toBeUndefined()
    }
  })

  it('names the leaf that breaks it', async () => {
    const store = new MemoryBlockstore()
    const entries: [string, TreeEntry][] = [
      ['b', entryFor('b')],
      ['a', entryFor('a')],
    ]
    const leaf = encodeNode({ kind: 'tree', level: 0, entries })
    await store.put(leaf)
    const fault = await findTreeFault(new ProllyTree(store), leaf.cid)
    expect(fault?.cid.toString()).toBe(leaf.cid.toString())
    expect(fault?.problem).toContain("'a' comes after 'b'")
  })

  it('finds an entry that is also a folder among paths in order', () => {
    const conflicts = (paths: string[]): string | undefined => {
      const finder = new PathConflictFinder()
      for (const p of paths) {
        const hit = finder.add(p)
        if (hit !== undefined) return `${hit} < ${p}`
      }
      return undefined
    }
    expect(conflicts(['a', 'a-b', 'a.txt', 'a/b'])).toBe('a < a/b')
    expect(conflicts(['a', 'ab', 'ab/c'])).toBe('ab < ab/c')
    expect(conflicts(['a-b', 'a.txt', 'a/b', 'a/c', 'b'])).toBeUndefined()
    expect(conflicts(['x/a', 'x/a.b', 'x/a/c'])).toBe('x/a < x/a/c')
  })
})
