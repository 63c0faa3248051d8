import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import type { CID } from '../../src/codec/cid.js'
import { NotFoundError } from '../../src/errors.js'
import { commitNode } from '../../src/model/commit.js'
import type { TreeEntry } from '../../src/model/tree.js'
import { Repository } from '../../src/repo/repository.js'
import { AUTHOR, BACKENDS, T0, collect, commitAt, countingBlocks, record, text, type RepoFixture } from './fixture.js'

const messages = async (it: AsyncIterable<{ commit: { message: string } }>): Promise<string[]> => (await collect(it)).map((e) => e.commit.message)

describe.each(BACKENDS)('log ($name)', ({ open }) => {
  let fx: RepoFixture
  let repo: Repository
  beforeEach(async () => {
    fx = await open()
    repo = fx.repo
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  it('lists commits newest first, with limit and a start revision', async () => {
    const cids: CID[] = []
    for (let i = 1; i <= 6; i++) cids.push((await commitAt(repo, 'main', i, [record('n.json', { i })], `c${i}`)).cid)
    const all = await collect(repo.log())
    expect(all.map((e) => e.commit.message)).toEqual(['c6', 'c5', 'c4', 'c3', 'c2', 'c1'])
    expect(all.map((e) => e.cid.toString())).toEqual([...cids].reverse().map(String))
    expect(await messages(repo.log({ from: 'main', limit: 2 }))).toEqual(['c6', 'c5'])
    expect(await messages(repo.log({ from: 'main~3' }))).toEqual(['c3', 'c2', 'c1'])
    expect(await messages(repo.log({ from: 'main', limit: 0 }))).toEqual([])
    await repo.tag('v2', 'main~4', { tagger: AUTHOR, message: 'annotated' })
    expect(await messages(repo.log({ from: 'v2' }))).toEqual(['c2', 'c1'])
    await expect(collect(repo.log({ from: 'nope' }))).rejects.toBeInstanceOf(NotFoundError)
  })

  it('filters by path: the entry or anything under it, never a sibling that shares the prefix string', async () => {
    await commitAt(repo, 'main', 1, [record('config/train.json', { lr: 0.1 })], 'add config')
    await commitAt(repo, 'main', 2, [record('config2/x.json', { x: 1 })], 'add config2')
    await commitAt(repo, 'main', 3, [record('runs/1.json', { loss: 1 }), record('config.json', { top: 1 })], 'add run and config.json')
    await commitAt(repo, 'main', 4, [record('config/train.json', { lr: 0.01 })], 'change lr')
    await commitAt(repo, 'main', 5, [record('config/sub/deep.json', { d: 1 })], 'add deep config')
    await commitAt(repo, 'main', 6, [record('config2/x.json', { x: 2 }), record('config.json', { top: 2 })], 'change config2 and config.json')
    await commitAt(repo, 'main', 7, [{ type: 'remove', path: 'config' }], 'remove config')
    await commitAt(repo, 'main', 8, [text('config', 'a file named config\n')], 'file named config')

    expect(await messages(repo.log({ path: 'config' }))).toEqual(['file named config', 'remove config', 'add deep config', 'change lr', 'add config'])
    expect(await messages(repo.log({ path: 'config/train.json' }))).toEqual(['remove config', 'change lr', 'add config'])
    expect(await messages(repo.log({ path: 'config/sub' }))).toEqual(['remove config', 'add deep config'])
    expect(await messages(repo.log({ path: 'config2' }))).toEqual(['change config2 and config.json', 'add config2'])
    expect(await messages(repo.log({ path: 'config.json' }))).toEqual(['change config2 and config.json', 'add run and config.json'])
    expect(await messages(repo.log({ path: 'runs' }))).toEqual(['add run and config.json'])
    expect(await messages(repo.log({ path: 'nowhere' }))).toEqual([])
    expect(await messages(repo.log({ path: 'config', limit: 2 }))).toEqual(['file named config', 'remove config'])
  })

  it('streams: the first few commits of a long history read only a few blocks', async () => {
    for (let i = 0; i < 300; i++) await commitAt(repo, 'main', i, [record('step.json', { i })], `step ${i}`)
    const counting = countingBlocks(repo.store.blocks)
    const fresh = new Repository({ ...repo.store, blocks: counting, close: async () => {} })

    const first = await messages(fresh.log({ from: 'main', limit: 5 }))
    expect(first).toEqual(['step 299', 'step 298', 'step 297', 'step 296', 'step 295'])
    expect(counting.reads).toBeGreaterThan(0)
    expect(counting.reads).toBeLessThan(20)

    // Without a limit, a consumer that stops early also stops the walk.
    counting.reads = 0
    const got: string[] = []
    for await (const e of fresh.log({ from: 'main' })) {
      got.push(e.commit.message)
      if (got.length === 3) break
    }
    expect(got).toEqual(['step 299', 'step 298', 'step 297'])
    expect(counting.reads).toBeLessThan(20)

    // The whole history is there when asked for.
    counting.reads = 0
    expect(await collect(fresh.log({ from: 'main' }))).toHaveLength(300)
    expect(counting.reads).toBeGreaterThanOrEqual(300)
  })

  it('walks merges once each, newest first, and filters each commit against its first parent', async () => {
    // B ← P1 ← X ←─ S      S = merge(X, M), M = merge(P1, P2)
    //   ↖ P2 ← M ←─┘      (M's first parent P1 is reached first through X)
    const entry = async (value: Record<string, unknown>): Promise<TreeEntry> => {
      const block = encodeNode(value)
      await repo.blocks.put(block)
      return { cid: block.cid, kind: 'record', size: block.bytes.length }
    }
    const files = { base: await entry({ f: 'base' }), a: await entry({ f: 'a' }), b: await entry({ f: 'b' }), c: await entry({ f: 'c' }) }
    const tree = (...names: (keyof typeof files)[]): Promise<CID> => repo.trees.build(names.map((n) => [`${n}.json`, files[n]] as [string, TreeEntry]))
    const make = async (message: string, t: number, names: (keyof typeof files)[], parents: CID[]): Promise<CID> => {
      const block = encodeNode(commitNode({ tree: await tree(...names), parents, author: AUTHOR, time: T0 + t, message }))
      await repo.blocks.put(block)
      return block.cid
    }
    const B = await make('B', 1, ['base'], [])
    const P1 = await make('P1', 2, ['base', 'a'], [B])
    const P2 = await make('P2', 3, ['base', 'b'], [B])
    const M = await make('M', 4, ['base', 'a', 'b'], [P1, P2])
    const X = await make('X', 5, ['base', 'a', 'c'], [P1])
    const S = await make('S', 6, ['base', 'a', 'b', 'c'], [X, M])
    await repo.refs.update('main', { next: S, who: AUTHOR, message: 'merged history' })

    expect(await messages(repo.log())).toEqual(['S', 'X', 'M', 'P2', 'P1', 'B'])
    expect(await messages(repo.log({ path: 'a.json' }))).toEqual(['P1'])
    expect(await messages(repo.log({ path: 'b.json' }))).toEqual(['S', 'M', 'P2'])
    expect(await messages(repo.log({ path: 'c.json' }))).toEqual(['X'])
    expect(await messages(repo.log({ path: 'base.json' }))).toEqual(['B'])
    expect((await repo.resolve('main^2')).cid.equals(M)).toBe(true)
    expect((await repo.resolve('main^2^2')).cid.equals(P2)).toBe(true)
  })
})
