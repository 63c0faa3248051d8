import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import { ConflictError, InvalidInputError, NotFoundError, PedigreeError } from '../../src/errors.js'
import type { CommitEdit } from '../../src/repo/commit.js'
import type { Repository } from '../../src/repo/repository.js'
import { AUTHOR, BACKENDS, T0, bytesOf, collect, commitAt, memoryRepo, record, text, type RepoFixture } from './fixture.js'
import { seededBytes } from '../store/fixture.js'

const GOLDEN_RECORD = {
  type: 'task',
  name: 'train',
  loss: 0.31,
  epochs: 3,
  ok: true,
  none: null,
  tags: ['a', 'b'],
  metrics: { loss: 0.31, acc: [0.5, 0.75] },
}
// Computed once and pasted: a change of encoding, hashing or tree format must fail here.
const GOLDEN_RECORD_CID = 'bafyreiazdwlmiuz624pgplxncdizeeoauylky3ejo6yjiobzizjiw64qzu'
// `printf 'hello\n' | ipfs add --cid-version 1 --raw-leaves` gives the same CID.
const GOLDEN_HELLO_CID = 'bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am'
const GOLDEN_COMMIT_CID = 'bafyreihijxpghxsydejlobufpq3ss5b34xqmxv572rp3ybegm2fqfwetha'

const paths = async (repo: Repository, rev = 'main'): Promise<string[]> => (await collect(repo.ls(rev))).map((e) => e.path)

describe.each(BACKENDS)('commit ($name)', ({ open }) => {
  let fx: RepoFixture
  let repo: Repository
  beforeEach(async () => {
    fx = await open()
    repo = fx.repo
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  it('stores records and bytes, and the first commit has no parent', async () => {
    const r = await commitAt(repo, 'main', 1, [record('runs/1.json', { loss: 0.31 }), text('notes.txt', 'hello\n')], 'first')
    expect(r.parent).toBeNull()
    expect(r.commit.parents).toEqual([])
    expect(r.commit.message).toBe('first')
    expect(r.commit.author).toEqual(AUTHOR)
    expect(r.commit.time).toBe(T0 + 1000)
    expect(r.changes).toEqual({ added: 2, modified: 0, removed: 0 })
    expect((await repo.refs.get('main'))?.equals(r.cid)).toBe(true)

    const rec = await repo.show('main:runs/1.json')
    expect(rec.type).toBe('record')
    if (rec.type === 'record') expect(rec.value).toEqual({ loss: 0.31 })
    const file = await repo.show('main:notes.txt')
    expect(file.type).toBe('file')
    if (file.type === 'file') {
      expect(file.size).toBe(6)
      expect((await bytesOf(file.content())).toString()).toBe('hello\n')
    }
  })

  it('stores a file from disk and a directory recursively, skipping symlinks', async () => {
    const src = join(fx.dir, 'src')
    await mkdir(join(src, 'data', 'deep', 'deeper'), { recursive: true })
    await writeFile(join(src, 'weights.bin'), Buffer.from([0, 1, 2, 3, 255]))
    await writeFile(join(src, 'data', 'a.txt'), 'A\n')
    await writeFile(join(src, 'data', 'deep', 'b.txt'), 'B\n')
    await writeFile(join(src, 'data', 'deep', 'deeper', 'c.txt'), 'C\n')
    await writeFile(join(src, 'data', 'deep', 'empty.txt'), '')
    await writeFile(join(fx.dir, 'outside.txt'), 'secret\n')
    await symlink(join(fx.dir, 'outside.txt'), join(src, 'data', 'link.txt'))
    await symlink(join(src, 'data', 'deep'), join(src, 'data', 'dirlink'))
    // A store inside the folder (its live database is not data; no tree may hold one).
    await mkdir(join(src, 'data', 'deep', '.Pedigree', 'store'), { recursive: true })
    await writeFile(join(src, 'data', 'deep', '.Pedigree', 'FORMAT'), 'x')

    const r = await repo.commit({
      ref: 'main',
      author: AUTHOR,
      message: 'files',
      edits: [
        { type: 'file', path: 'model/weights.bin', source: join(src, 'weights.bin') },
        { type: 'file', path: 'inputs', source: join(src, 'data') },
      ],
    })
    expect(await paths(repo)).toEqual(['inputs/a.txt', 'inputs/deep/b.txt', 'inputs/deep/deeper/c.txt', 'inputs/deep/empty.txt', 'model/weights.bin'])
    // Each entry left out is reported, with why.
    expect(r.skipped).toEqual([
      { path: 'inputs/deep/.Pedigree', reason: 'store folder' },
      { path: 'inputs/dirlink', reason: 'symlink' },
      { path: 'inputs/link.txt', reason: 'symlink' },
    ])
    const c = await repo.show('main:inputs/deep/deeper/c.txt')
    if (c.type !== 'file') throw new Error('not a file')
    expect((await bytesOf(c.content())).toString()).toBe('C\n')
    const w = await repo.show('main:model/weights.bin')
    if (w.type !== 'file') throw new Error('not a file')
    expect([...(await bytesOf(w.content()))]).toEqual([0, 1, 2, 3, 255])
    const e = await repo.show('main:inputs/deep/empty.txt')
    expect(e.type === 'file' && e.size).toBe(0)
  })

  it('builds the second commit on the first: parent, tree = first tree + edits, removals of a path and of a prefix', async () => {
    const first = await commitAt(repo, 'main', 1, [
      record('runs/1.json', { loss: 0.5 }),
      record('runs/2.json', { loss: 0.4 }),
      text('data/x/1.txt', 'one'),
      text('data/x/2.txt', 'two'),
      text('data/y.txt', 'y'),
      text('data2/keep.txt', 'keep'),
      text('notes.txt', 'v1'),
    ])
    const second = await commitAt(repo, 'main', 2, [
      record('runs/3.json', { loss: 0.3 }),
      text('notes.txt', 'v2'),
      { type: 'remove', path: 'runs/1.json' },
      { type: 'remove', path: 'data' },
    ])
    expect(second.parent?.equals(first.cid)).toBe(true)
    expect(second.commit.parents.map(String)).toEqual([first.cid.toString()])
    expect(second.changes).toEqual({ added: 1, modified: 1, removed: 4 })

    expect(await paths(repo, 'main~1')).toEqual(['data/x/1.txt', 'data/x/2.txt', 'data/y.txt', 'data2/keep.txt', 'notes.txt', 'runs/1.json', 'runs/2.json'])
    // 'data2/…' shares the string prefix 'data' but is not under 'data/'.
    expect(await paths(repo)).toEqual(['data2/keep.txt', 'notes.txt', 'runs/2.json', 'runs/3.json'])
    // Unchanged entries are the very same blocks.
    const before = new Map((await collect(repo.ls('main~1'))).map((e) => [e.path, e.cid.toString()]))
    for (const e of await collect(repo.ls('main'))) {
      if (e.path === 'notes.txt' || e.path === 'runs/3.json') expect(before.get(e.path)).not.toBe(e.cid.toString())
      else expect(before.get(e.path)).toBe(e.cid.toString())
    }

    const shown = await repo.show('main')
    if (shown.type !== 'commit') throw new Error('not a commit')
    expect(shown.counts).toEqual({ added: 1, modified: 1, removed: 4 })
    expect(shown.changes.map((c) => [c.type, c.path])).toEqual([
      ['removed', 'data/x/1.txt'],
      ['removed', 'data/x/2.txt'],
      ['removed', 'data/y.txt'],
      ['modified', 'notes.txt'],
      ['removed', 'runs/1.json'],
      ['added', 'runs/3.json'],
    ])
  })

  it('replaces a directory when one commit removes it and writes under it, in either order', async () => {
    await commitAt(repo, 'main', 1, [text('runs/1.txt', '1'), text('runs/2.txt', '2'), text('other.txt', 'o')])
    const r = await commitAt(repo, 'main', 2, [text('runs/2.txt', '2b'), { type: 'remove', path: 'runs' }])
    expect(await paths(repo)).toEqual(['other.txt', 'runs/2.txt'])
    expect(r.changes).toEqual({ added: 0, modified: 1, removed: 1 })
    await commitAt(repo, 'main', 3, [{ type: 'remove', path: 'runs' }, text('runs/3.txt', '3')])
    expect(await paths(repo)).toEqual(['other.txt', 'runs/3.txt'])
    const f = await repo.show('main~1:runs/2.txt')
    expect(f.type === 'file' && (await bytesOf(f.content())).toString()).toBe('2b')
  })

  it('refuses a path that would be both an entry and a folder, ref unchanged; removing one side in the same commit replaces it', async () => {
    const first = await commitAt(repo, 'main', 1, [text('a', 'file a'), text('d/x.txt', 'x')])
    const refused = async (edits: Parameters<typeof commitAt>[3], entry: string, under: string): Promise<void> => {
      const e = await commitAt(repo, 'main', 9, edits).catch((err: unknown) => err)
      expect(e).toBeInstanceOf(InvalidInputError)
      expect((e as InvalidInputError).message).toContain(`'${entry}' is an entry`)
      expect((e as InvalidInputError).data).toEqual({ path: under, entry })
      expect((await repo.refs.get('main'))?.equals(first.cid)).toBe(true)
    }
    await refused([text('a/b.txt', 'under a file')], 'a', 'a/b.txt') // a folder where a file is
    await refused([text('d', 'over a folder')], 'd', 'd/x.txt') // a file where a folder is
    await refused([text('n', 'n'), text('n/m/o.txt', 'o')], 'n', 'n/m/o.txt') // both in one commit
    expect(await paths(repo)).toEqual(['a', 'd/x.txt'])

    await commitAt(repo, 'main', 2, [{ type: 'remove', path: 'a' }, text('a/b.txt', 'now a folder')])
    await commitAt(repo, 'main', 3, [{ type: 'remove', path: 'd' }, text('d', 'now a file')])
    expect(await paths(repo)).toEqual(['a/b.txt', 'd'])
    const d = await repo.show('main:d')
    expect(d.type === 'file' && (await bytesOf(d.content())).toString()).toBe('now a file')
  })

  it("says 'nothing to commit' when the tree would not change, unless allowEmpty", async () => {
    const first = await commitAt(repo, 'main', 1, [record('a.json', { a: 1 })])
    const err = await commitAt(repo, 'main', 2, [record('a.json', { a: 1 })]).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PedigreeError)
    expect((err as PedigreeError).code).toBe('ERR_NOTHING_TO_COMMIT')
    expect((await repo.refs.get('main'))?.equals(first.cid)).toBe(true)
    expect(await repo.reflog('main')).toHaveLength(1)

    const empty = await repo.commit({ ref: 'main', author: AUTHOR, time: T0 + 2000, message: 'marker', allowEmpty: true, edits: [record('a.json', { a: 1 })] })
    // With no edits at all, as `git commit --allow-empty`: on an existing ref and as a new ref's first commit.
    const marker = await repo.commit({ ref: 'main', author: AUTHOR, time: T0 + 2500, message: 'marker 2', allowEmpty: true, edits: [] })
    expect(marker.parent?.toString()).toBe(empty.cid.toString())
    expect(marker.commit.tree.toString()).toBe(empty.commit.tree.toString())
    const root = await repo.commit({ ref: 'fresh', author: AUTHOR, time: T0 + 2600, message: 'root', allowEmpty: true, edits: [] })
    expect(root.parent).toBeNull()
    expect(await paths(repo, 'fresh')).toEqual([])
    expect(empty.parent?.equals(first.cid)).toBe(true)
    expect(empty.commit.tree.equals(first.commit.tree)).toBe(true)
    expect(empty.changes).toEqual({ added: 0, modified: 0, removed: 0 })
    expect(await repo.reflog('main')).toHaveLength(3)
  })

  it('leaves the ref unchanged on bad input: missing source, duplicate path, unsafe path, removing nothing', async () => {
    const first = await commitAt(repo, 'main', 1, [record('a.json', { a: 1 })])
    const unchanged = async (): Promise<void> => {
      expect((await repo.refs.get('main'))?.equals(first.cid)).toBe(true)
      expect(await repo.reflog('main')).toHaveLength(1)
    }

    const missing = join(fx.dir, 'no-such-file.bin')
    const e1 = await repo.commit({ ref: 'main', author: AUTHOR, edits: [text('b.txt', 'b'), { type: 'file', path: 'w.bin', source: missing }] }).catch((e: unknown) => e)
    expect(e1).toBeInstanceOf(NotFoundError)
    expect((e1 as NotFoundError).message).toContain(missing)
    await unchanged()

    const e2 = await commitAt(repo, 'main', 2, [record('dup.json', { a: 1 }), text('dup.json', 'x')]).catch((e: unknown) => e)
    expect(e2).toBeInstanceOf(InvalidInputError)
    expect((e2 as InvalidInputError).message).toContain('dup.json')
    await unchanged()

    for (const bad of ['../x', '/abs', 'a//b', 'a/./b', 'a/', '', 'a\\b']) {
      const e = await commitAt(repo, 'main', 3, [record(bad, { a: 1 })]).catch((err: unknown) => err)
      expect(e, bad).toBeInstanceOf(InvalidInputError)
      expect((e as InvalidInputError).data.path, bad).toBe(bad)
    }
    await unchanged()

    const e3 = await commitAt(repo, 'main', 4, [{ type: 'remove', path: 'nope' }]).catch((e: unknown) => e)
    expect(e3).toBeInstanceOf(NotFoundError)
    expect((e3 as NotFoundError).message).toContain('nope')
    await unchanged()

    await expect(repo.commit({ ref: 'main', author: AUTHOR, edits: [] })).rejects.toBeInstanceOf(InvalidInputError)
    await unchanged()

    // A path into a store's folder, in any case: a checkout of it would write into a store.
    for (const path of ['.pedigree/store/CURRENT', 'proj/.PEDIGREE/FORMAT', '.pedigree']) {
      const e = await commitAt(repo, 'main', 5, [text(path, 'GARBAGE\n')]).catch((err: unknown) => err)
      expect(e, path).toBeInstanceOf(InvalidInputError)
      expect((e as InvalidInputError).message).toMatch(/'\.pedigree' segment/i)
      await unchanged()
    }
    // A newline in the author's name would forge lines of log and reflog.
    const forged = await repo.commit({ ref: 'main', author: { name: 'Ana\nDate:   1999-01-01' }, edits: [record('z.json', { z: 1 })] }).catch((err: unknown) => err)
    expect(forged).toBeInstanceOf(InvalidInputError)
    expect((forged as InvalidInputError).message).toContain('control character')
    await unchanged()

    // A library caller's author, message and time (from JavaScript, where the types do not hold).
    const badOptions: Array<[Record<string, unknown>, string]> = [
      [{ author: undefined }, 'the author is missing'],
      [{ author: { name: '' } }, 'the author has no name'],
      [{ author: { email: 'a@b.org' } }, 'the author has no name'],
      [{ author: { name: 'ana', email: 7 } }, "the author's email is not a string"],
      [{ message: 42 }, 'the commit message is not a string'],
      [{ time: 1.5 }, 'the commit time 1.5 is not a whole number'],
    ]
    for (const [override, why] of badOptions) {
      const options = { ref: 'main', author: AUTHOR, edits: [record('c.json', { c: 1 })], ...override }
      const e = await repo.commit(options as never).catch((err: unknown) => err)
      expect(e, why).toBeInstanceOf(InvalidInputError)
      expect((e as InvalidInputError).message, why).toContain(why)
    }
    await unchanged()
  })

  it('refuses to commit on a tag, lightweight or annotated, leaving it where it was', async () => {
    const first = await commitAt(repo, 'main', 1, [record('a.json', { a: 1 })])
    await repo.tag('v1', 'main', { tagger: AUTHOR, message: 'release' })
    await repo.tag('light', 'main', { tagger: AUTHOR })
    for (const ref of ['tags/v1', 'tags/light']) {
      const before = await repo.refs.get(ref)
      const e = await commitAt(repo, ref, 2, [record('b.json', { b: 1 })]).catch((err: unknown) => err)
      expect((e as PedigreeError).code, ref).toBe('ERR_REFUSED')
      expect((e as PedigreeError).message).toContain('tags do not move')
      expect((await repo.refs.get(ref))?.toString()).toBe(before?.toString())
    }
    expect((await repo.resolve('tags/light')).cid.toString()).toBe(first.cid.toString())
  })

  it('refuses a record link to a CID not in the store unless allowDangling', async () => {
    const stranger = encodeNode({ not: 'stored' }).cid
    const err = await commitAt(repo, 'main', 1, [record('r.json', { used: stranger })]).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NotFoundError)
    expect((err as NotFoundError).message).toContain(stranger.toString())
    expect((err as NotFoundError).data.missing).toEqual([stranger.toString()])
    expect(await repo.refs.get('main')).toBeUndefined()

    const ok = await repo.commit({ ref: 'main', author: AUTHOR, allowDangling: true, edits: [record('r.json', { used: stranger })] })
    expect((await repo.refs.get('main'))?.equals(ok.cid)).toBe(true)

    // A link to a block that is in the store needs no flag.
    const a = await repo.resolveEntry('main:r.json')
    await commitAt(repo, 'main', 2, [record('s.json', { wasDerivedFrom: a.entry.cid })])
    const s = await repo.show('main:s.json')
    expect(s.type === 'record' && String(s.value.wasDerivedFrom)).toBe(a.entry.cid.toString())
  })

  it('gives golden CIDs for a record, a small file and a commit', async () => {
    expect(encodeNode(GOLDEN_RECORD).cid.toString()).toBe(GOLDEN_RECORD_CID)
    const r = await repo.commit({
      ref: 'main',
      author: AUTHOR,
      time: T0,
      message: 'golden',
      edits: [record('runs/1.json', GOLDEN_RECORD), text('notes.txt', 'hello\n')],
    })
    const entries = Object.fromEntries((await collect(repo.ls('main'))).map((e) => [e.path, e.cid.toString()]))
    expect(entries).toEqual({ 'notes.txt': GOLDEN_HELLO_CID, 'runs/1.json': GOLDEN_RECORD_CID })
    expect(r.cid.toString()).toBe(GOLDEN_COMMIT_CID)
  })

  it('gives a file from disk the CID of the same bytes given in memory, at every size around the small-file path', async () => {
    // Files up to 64 KiB are read whole and batched; larger ones are streamed through the
    // chunker. The CID must not depend on which way a file went, nor on its name.
    const sizes = [0, 1, 6, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024]
    const src = join(fx.dir, 'sizes')
    await mkdir(src)
    const edits: CommitEdit[] = []
    const inMemory: CommitEdit[] = []
    for (const [i, size] of sizes.entries()) {
      const bytes = seededBytes(i + 1, size)
      const name = i % 2 ? `f${i}.safetensors` : `f${i}.bin`
      await writeFile(join(src, name), bytes)
      edits.push({ type: 'file', path: `disk/${name}`, source: join(src, name) })
      inMemory.push({ type: 'bytes', path: `memory/${name}`, bytes })
      // A stream has no size to size its memory by: the same CID all the same.
      inMemory.push({ type: 'stream', path: `stream/${name}`, stream: (async function* () { yield bytes })() })
    }
    await writeFile(join(src, 'hello.txt'), 'hello\n')
    edits.push({ type: 'file', path: 'disk/hello.txt', source: join(src, 'hello.txt') })
    await repo.commit({ ref: 'main', author: AUTHOR, message: 'sizes', edits: [...edits, ...inMemory] })
    const byPath = Object.fromEntries((await collect(repo.ls('main'))).map((e) => [e.path, e]))
    expect(byPath['disk/hello.txt']!.cid.toString()).toBe(GOLDEN_HELLO_CID)
    for (const [i, size] of sizes.entries()) {
      const name = i % 2 ? `f${i}.safetensors` : `f${i}.bin`
      expect(byPath[`disk/${name}`]!.cid.toString(), name).toBe(byPath[`memory/${name}`]!.cid.toString())
      expect(byPath[`stream/${name}`]!.cid.toString(), name).toBe(byPath[`memory/${name}`]!.cid.toString())
      expect(byPath[`disk/${name}`]!.size, name).toBe(size)
      const shown = await repo.show(`main:disk/${name}`)
      if (shown.type !== 'file') throw new Error('not a file')
      expect((await bytesOf(shown.content())).equals(Buffer.from(seededBytes(i + 1, size))), name).toBe(true)
    }
  })

  it('lands every one of 8 concurrent commits to one ref', async () => {
    await commitAt(repo, 'main', 0, [record('base.json', { base: true })])
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => repo.commit({ ref: 'main', author: AUTHOR, time: T0 + 10_000 + i, message: `task ${i}`, edits: [record(`tasks/${i}.json`, { i })] })),
    )
    const log = await collect(repo.log({ from: 'main' }))
    expect(log).toHaveLength(9)
    expect(new Set(log.map((e) => e.commit.message))).toEqual(new Set(['commit 0', ...Array.from({ length: 8 }, (_, i) => `task ${i}`)]))
    expect(await paths(repo)).toEqual(['base.json', ...Array.from({ length: 8 }, (_, i) => `tasks/${i}.json`)])
    expect(new Set(results.map((r) => r.cid.toString())).size).toBe(8)
    // Linear history: each commit's parent is the one before it.
    for (let i = 0; i + 1 < log.length; i++) expect(log[i]!.commit.parents.map(String)).toEqual([log[i + 1]!.cid.toString()])
    expect(await repo.reflog('main')).toHaveLength(9)
  })

  it('fails with ConflictError on an explicit stale expect, leaving the ref alone', async () => {
    const first = await commitAt(repo, 'main', 1, [record('a.json', { a: 1 })])
    const second = await repo.commit({ ref: 'main', author: AUTHOR, time: T0 + 2000, expect: first.cid, edits: [record('a.json', { a: 2 })] })
    const err = await repo.commit({ ref: 'main', author: AUTHOR, time: T0 + 3000, expect: first.cid, edits: [record('b.json', { b: 1 })] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as ConflictError).data.ref).toBe('main')
    expect((await repo.refs.get('main'))?.equals(second.cid)).toBe(true)
    expect(await paths(repo)).toEqual(['a.json'])

    const created = await repo.commit({ ref: 'fresh', author: AUTHOR, expect: null, edits: [record('a.json', { a: 1 })] })
    expect(created.parent).toBeNull()
    await expect(repo.commit({ ref: 'fresh', author: AUTHOR, expect: null, edits: [record('b.json', { b: 1 })] })).rejects.toBeInstanceOf(ConflictError)
  })
})

describe('commit CIDs are the same in two stores', () => {
  it('gives the same commit CID for the same contents, author, time and message, whatever the edit order', async () => {
    const a = await memoryRepo()
    const b = await memoryRepo()
    try {
      const edits = [record('x/1.json', { v: 1, nested: { ok: true } }), text('x/2.txt', 'two\n'), record('y.json', { y: [1, 2, 3] })]
      const ra = await a.repo.commit({ ref: 'main', author: AUTHOR, time: T0, message: 'same', edits })
      const rb = await b.repo.commit({ ref: 'other', author: AUTHOR, time: T0, message: 'same', edits: [...edits].reverse() })
      expect(ra.cid.toString()).toBe(rb.cid.toString())
      const rb2 = await b.repo.commit({ ref: 'third', author: AUTHOR, time: T0 + 1, message: 'same', edits })
      expect(rb2.cid.toString()).not.toBe(ra.cid.toString())
    } finally {
      await a.cleanup()
      await b.cleanup()
    }
  })
})
