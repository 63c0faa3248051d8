import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import { cidToString, type CID } from '../../src/codec/cid.js'
import { commitNode } from '../../src/model/commit.js'
import { Repository } from '../../src/repo/repository.js'
import { openLevelStore } from '../../src/store/level.js'
import { MemoryBlockstore } from '../../src/store/memory.js'
import { prng } from '../helpers/random.js'
import { AUTHOR, commitAt, levelRepo, memoryRepo, record, text, withoutBlocks, type RepoFixture } from './fixture.js'

const MiB = 1024 * 1024

function randomBytes(n: number, seed: number): Uint8Array {
  const rand = prng(seed)
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (rand() * 256) | 0
  return out
}

/** Bytes that are a perfectly good block, just not the one the CID names. */
const WRONG = encodeNode({ wrong: 'bytes' }).bytes

/**
 * Replace the bytes of blocks as disk corruption would, and return the repository to check.
 * Level: close the repository, write through a freshly opened store (put does not re-hash), and
 * reopen; memory: the store's corrupt hook.
 */
type Corrupter = (fx: RepoFixture, repo: Repository, cids: CID[]) => Promise<Repository>

const corruptLevel: Corrupter = async (fx, repo, cids) => {
  await repo.close()
  const store = await openLevelStore(fx.root!)
  for (const cid of cids) await store.blocks.put({ cid, bytes: WRONG })
  await store.close()
  const reopened = await Repository.open(fx.root!)
  fx.repo = reopened
  return reopened
}

const corruptMemory: Corrupter = async (_fx, repo, cids) => {
  const blocks = repo.store.blocks
  if (!(blocks instanceof MemoryBlockstore)) throw new Error('not a memory store')
  for (const cid of cids) blocks.corrupt(cid, WRONG)
  return repo
}

const SETUPS = [
  { name: 'level', open: levelRepo, corrupt: corruptLevel },
  { name: 'memory', open: memoryRepo, corrupt: corruptMemory },
] as const

describe.each(SETUPS)('fsck ($name)', ({ open, corrupt }) => {
  let fx: RepoFixture
  let repo: Repository
  let shared: CID
  let big: CID
  let chunks: CID[]

  beforeEach(async () => {
    fx = await open()
    repo = fx.repo
    await commitAt(repo, 'main', 1, [
      record('runs/1.json', { loss: 0.31 }),
      { type: 'bytes', path: 'model/weights.bin', bytes: randomBytes(MiB + 1, 3) },
      text('notes.txt', 'hello\n'),
    ])
    await commitAt(repo, 'main', 2, [record('runs/2.json', { loss: 0.27 })])
    // A second branch that shares the record under another path (another tree).
    await commitAt(repo, 'exp', 3, [record('shared/r.json', { loss: 0.31 }), record('exp.json', { exp: true })])
    shared = (await repo.resolveEntry('main:runs/1.json')).entry.cid
    big = (await repo.resolveEntry('main:model/weights.bin')).entry.cid
    const node = await repo.readNode<{ chunks: [CID, number][] }>(big)
    chunks = node.chunks.map(([c]) => c)
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  it('passes a clean store', async () => {
    expect(chunks.length).toBeGreaterThan(1)
    const r = await repo.fsck()
    expect(r.ok).toBe(true)
    expect(r.problems).toEqual([])
    expect(r.checked.commits).toBe(3)
    expect(r.checked.records).toBeGreaterThanOrEqual(3)
    expect(r.checked.files).toBe(2)
    expect(r.checked.trees).toBeGreaterThanOrEqual(3)
    expect(r.roots).toBeGreaterThanOrEqual(2)
  })

  it('reports a head tree holding a path as both an entry and a folder (as an older pedigree could write it)', async () => {
    const entry = (spec: string) => repo.resolveEntry(spec).then((r) => r.entry)
    const leaf = encodeNode({ kind: 'tree', level: 0, entries: [['exp.json', await entry('exp:exp.json')], ['runs', await entry('main:notes.txt')], ['runs/1.json', await entry('main:runs/1.json')]] })
    const commit = encodeNode(commitNode({ tree: leaf.cid, parents: [], author: AUTHOR, time: 0, message: 'both' }))
    await repo.blocks.putMany([leaf, commit])
    await repo.refs.update('odd', { next: commit.cid, expect: null, who: AUTHOR, message: 'both' })
    const r = await repo.fsck()
    expect(r.ok).toBe(false)
    expect(r.problems).toEqual([{ cid: cidToString(leaf.cid), as: 'tree', path: 'runs', refs: ['odd'], problem: "'runs' is an entry and also a folder (of 'runs/1.json'): a checkout cannot write both" }])
    // The other refs stay clean: moving the ref away clears its head (the reflog keeps the old one).
    await repo.deleteRef('odd', { who: AUTHOR })
    expect((await repo.fsck()).problems).toEqual([])
  })

  it('names exactly the corrupted record and file chunk, with every ref that reaches them', async () => {
    const bad = await corrupt(fx, repo, [shared, chunks[1]!])
    const r = await bad.fsck()
    expect(r.ok).toBe(false)
    const byCid = new Map(r.problems.map((p) => [p.cid, p]))
    expect([...byCid.keys()].sort()).toEqual([shared.toString(), chunks[1]!.toString()].sort())

    const rec = byCid.get(shared.toString())!
    expect(rec.as).toBe('record')
    expect(rec.refs).toEqual(expect.arrayContaining(['main', 'exp']))
    expect(rec.refs.filter((name) => !name.includes('@{'))).toEqual(['exp', 'main'])
    expect(['runs/1.json', 'shared/r.json']).toContain(rec.path)
    expect(rec.problem).toMatch(/hash|match/)

    const chunk = byCid.get(chunks[1]!.toString())!
    expect(chunk.as).toBe('file')
    expect(chunk.refs.filter((name) => !name.includes('@{'))).toEqual(['main'])
    expect(chunk.problem).toContain(big.toString())
  })

  it('lists records linking to blocks not in the store apart (accepted with allowDangling): ok unless strict', async () => {
    const elsewhere = encodeNode({ kept: 'at another site' }).cid
    await repo.commit({ ref: 'main', author: AUTHOR, time: 9_000, message: 'link out', allowDangling: true, edits: [record('runs/3.json', { used: elsewhere, loss: 0.2 })] })
    const r = await repo.fsck()
    expect(r.ok).toBe(true)
    expect(r.problems).toEqual([])
    expect(r.danglingCount).toBe(1)
    expect(r.dangling).toEqual([{ cid: cidToString((await repo.resolveEntry('main:runs/3.json')).entry.cid), path: 'runs/3.json', links: [`used → ${cidToString(elsewhere)}`] }])
    const strict = await repo.fsck({ strict: true })
    expect(strict.ok).toBe(false)
    expect(strict.problems.map((p) => [p.path, p.as, p.problem, p.refs.filter((n) => !n.includes('@{'))])).toEqual([
      ['runs/3.json', 'record', `record links to blocks not in the store: used → ${cidToString(elsewhere)}`, ['main']],
    ])
    expect(strict.dangling).toEqual([])
  })

  it('reports a block missing from the store', async () => {
    const gone = new Repository({ ...repo.store, blocks: withoutBlocks(repo.store.blocks, [shared, chunks[0]!]), close: async () => {} })
    const r = await gone.fsck()
    expect(r.ok).toBe(false)
    expect(r.problems.map((p) => p.cid).sort()).toEqual([shared.toString(), chunks[0]!.toString()].sort())
    for (const p of r.problems) expect(p.problem, p.cid).toContain('missing')
    expect(r.problems.find((p) => p.cid === shared.toString())!.refs.filter((n) => !n.includes('@{'))).toEqual(['exp', 'main'])
  })

  it('checks commits reachable only from the reflog, naming them by a revision that resolves to them', async () => {
    const lost = await commitAt(repo, 'exp', 4, [record('only-here.json', { lost: true })])
    const only = (await repo.resolveEntry('exp:only-here.json')).entry.cid
    await repo.setRef('exp', 'main', { who: AUTHOR, message: 'abandon the experiment' })
    expect((await repo.refs.get('exp'))?.equals(lost.cid)).toBe(false)

    const clean = await repo.fsck()
    expect(clean.ok).toBe(true)
    expect(clean.checked.commits).toBe(4)

    const bad = await corrupt(fx, repo, [only])
    const r = await bad.fsck()
    expect(r.problems.map((p) => p.cid)).toEqual([only.toString()])
    const [problem] = r.problems
    expect(problem!.path).toBe('only-here.json')
    expect(problem!.refs.length).toBeGreaterThan(0)
    for (const label of problem!.refs) {
      expect(label.startsWith('exp@{')).toBe(true)
      // Every label is a revision that reaches the broken block.
      const at = await bad.resolve(label)
      expect(await bad.trees.get(at.commit.tree, 'only-here.json')).toBeDefined()
    }
  })

  it('reports a corrupt commit under its ref', async () => {
    const tip = (await repo.refs.get('exp'))!
    const bad = await corrupt(fx, repo, [tip])
    const r = await bad.fsck()
    expect(r.problems.map((p) => [p.cid, p.as, p.refs])).toEqual([[tip.toString(), 'commit', ['exp']]])
  })

  it('reports a corrupt annotated tag as the tag its ref holds, not as a commit', async () => {
    const { cid: tagCid } = await repo.tag('v1', 'main~1', { message: 'first model', tagger: { name: 'ana' }, time: 1 })
    const bad = await corrupt(fx, repo, [tagCid])
    const r = await bad.fsck()
    expect(r.problems.map((p) => [p.cid, p.as, p.refs])).toEqual([[tagCid.toString(), 'tag', ['tags/v1']]])
  })
})
