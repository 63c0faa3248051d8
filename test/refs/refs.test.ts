import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { CID } from '../../src/codec/cid.js'
import { ConflictError, InvalidRefNameError, RefusedError } from '../../src/errors.js'
import type { Repository } from '../../src/repo/repository.js'
import { AUTHOR, BACKENDS, T0, collect, commitAt, record, type RepoFixture } from '../repo/fixture.js'

const who = { name: 'bob', email: 'bob@example.org' }

describe.each(BACKENDS)('refs ($name)', ({ open }) => {
  let fx: RepoFixture
  let repo: Repository
  let c1: CID
  let c2: CID
  let c3: CID

  beforeEach(async () => {
    fx = await open()
    repo = fx.repo
    // Three commits on a scratch branch, then the branch is deleted: its commits remain to point refs at.
    c1 = (await commitAt(repo, 'scratch', 1, [record('a.json', { n: 1 })])).cid
    c2 = (await commitAt(repo, 'scratch', 2, [record('a.json', { n: 2 })])).cid
    c3 = (await commitAt(repo, 'scratch', 3, [record('a.json', { n: 3 })])).cid
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  it('creates a ref only when it must be new (expect: null)', async () => {
    await repo.refs.update('main', { next: c1, expect: null, who, message: 'create' })
    expect((await repo.refs.get('main'))?.equals(c1)).toBe(true)
    await expect(repo.refs.update('main', { next: c2, expect: null, who, message: 'again' })).rejects.toBeInstanceOf(ConflictError)
    expect((await repo.refs.get('main'))?.equals(c1)).toBe(true)
    expect(await repo.refs.reflog('main')).toHaveLength(1)
  })

  it('refuses an update with a stale expect and leaves the ref and its reflog unchanged', async () => {
    await repo.refs.update('main', { next: c1, expect: null, who, message: 'one' })
    await repo.refs.update('main', { next: c2, expect: c1, who, message: 'two' })
    const before = await repo.refs.reflog('main')

    const err = await repo.refs.update('main', { next: c3, expect: c1, who, message: 'stale' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConflictError)
    expect((err as ConflictError).code).toBe('ERR_CONFLICT')
    expect((err as ConflictError).data).toMatchObject({ ref: 'main', expected: c1.toString(), actual: c2.toString() })

    expect((await repo.refs.get('main'))?.equals(c2)).toBe(true)
    const after = await repo.refs.reflog('main')
    expect(after).toHaveLength(before.length)
    expect(after.map((e) => e.message)).toEqual(['two', 'one'])
  })

  it('lets exactly one of many racing writers with the same expect win', async () => {
    await repo.refs.update('main', { next: c1, expect: null, who, message: 'start' })
    const targets = [c2, c3, c2, c3, c2, c3, c2, c3]
    const results = await Promise.allSettled(targets.map((next, i) => repo.refs.update('main', { next, expect: c1, who, message: `racer ${i}` })))
    const won = results.filter((r) => r.status === 'fulfilled')
    expect(won).toHaveLength(1)
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConflictError)
    const log = await repo.refs.reflog('main')
    expect(log).toHaveLength(2)
    expect(log[0]!.old?.equals(c1)).toBe(true)
    expect(log[0]!.new?.equals((await repo.refs.get('main'))!)).toBe(true)
  })

  it('never moves or deletes a tag without force, and logs nothing for the refusal', async () => {
    await repo.refs.update('tags/v1', { next: c1, who, message: 'tag v1' })
    const move = await repo.refs.update('tags/v1', { next: c2, who, message: 'move' }).catch((e: unknown) => e)
    expect(move).toBeInstanceOf(RefusedError)
    expect((move as RefusedError).code).toBe('ERR_REFUSED')
    expect((move as RefusedError).message).toContain('tags/v1')
    const del = await repo.refs.update('tags/v1', { next: null, who, message: 'delete' }).catch((e: unknown) => e)
    expect(del).toBeInstanceOf(RefusedError)
    // Also through the repository verbs.
    await expect(repo.setRef('tags/v1', c3.toString(), { who })).rejects.toBeInstanceOf(RefusedError)
    await expect(repo.deleteRef('tags/v1', { who })).rejects.toBeInstanceOf(RefusedError)
    await expect(repo.tag('v1', c3.toString(), { tagger: who })).rejects.toBeInstanceOf(RefusedError)

    expect((await repo.refs.get('tags/v1'))?.equals(c1)).toBe(true)
    expect((await repo.refs.reflog('tags/v1')).map((e) => e.message)).toEqual(['tag v1'])

    await repo.refs.update('tags/v1', { next: c2, who, message: 'forced move', force: true })
    expect((await repo.refs.get('tags/v1'))?.equals(c2)).toBe(true)
    await repo.refs.update('tags/v1', { next: null, who, message: 'forced delete', force: true })
    expect(await repo.refs.get('tags/v1')).toBeUndefined()
    expect((await repo.refs.reflog('tags/v1')).map((e) => e.message)).toEqual(['forced delete', 'forced move', 'tag v1'])
  })

  it('writes remotes/… only for remote tracking', async () => {
    const err = await repo.refs.update('remotes/origin/main', { next: c1, who, message: 'x' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RefusedError)
    expect(await repo.refs.get('remotes/origin/main')).toBeUndefined()
    expect(await repo.refs.reflog('remotes/origin/main')).toEqual([])
    expect(await collect(repo.refs.logged())).not.toContain('remotes/origin/main')
    await expect(repo.setRef('remotes/origin/main', c1.toString(), { who })).rejects.toBeInstanceOf(RefusedError)

    await repo.refs.update('remotes/origin/main', { next: c1, who, message: 'fetch', remoteTracking: true })
    expect((await repo.refs.get('remotes/origin/main'))?.equals(c1)).toBe(true)
  })

  it('keeps the reflog newest first with who, time, message and old/new CIDs', async () => {
    const carol = { name: 'carol' }
    await repo.refs.update('prod', { next: c1, who, time: T0 + 10, message: 'deploy v1' })
    await repo.refs.update('prod', { next: c2, who: carol, time: T0 + 20, message: 'deploy v2' })
    await repo.refs.update('prod', { next: c3, who, time: T0 + 30, message: 'deploy v3' })
    await repo.refs.update('prod', { next: null, who: carol, time: T0 + 40, message: 'retire' })

    const log = await repo.refs.reflog('prod')
    expect(log.map((e) => [e.index, e.message, e.time, e.who, e.old?.toString() ?? null, e.new?.toString() ?? null])).toEqual([
      [0, 'retire', T0 + 40, carol, c3.toString(), null],
      [1, 'deploy v3', T0 + 30, who, c2.toString(), c3.toString()],
      [2, 'deploy v2', T0 + 20, carol, c1.toString(), c2.toString()],
      [3, 'deploy v1', T0 + 10, who, null, c1.toString()],
    ])
    expect(log.every((e) => e.ref === 'prod')).toBe(true)
    // The ref is gone, its history is not.
    expect(await repo.refs.get('prod')).toBeUndefined()
    expect(await collect(repo.refs.logged())).toContain('prod')
    expect((await repo.resolve('prod@{1}')).cid.equals(c3)).toBe(true)
  })

  it('a commit logs the ref move with its author and message', async () => {
    const r = await repo.commit({ ref: 'main', author: AUTHOR, time: T0, message: 'first line\nsecond line', edits: [record('x.json', { x: 1 })] })
    const [entry] = await repo.reflog('main')
    expect(entry!.new?.equals(r.cid)).toBe(true)
    expect(entry!.old).toBeNull()
    expect(entry!.who).toEqual(AUTHOR)
    expect(entry!.message).toContain('first line')
    expect(entry!.message).not.toContain('second line')
  })

  it('logs nothing for an update that changes nothing', async () => {
    await repo.refs.update('main', { next: c1, who, message: 'set' })
    const same = await repo.refs.update('main', { next: c1, who, message: 'same again' })
    expect(same.old?.equals(c1) && same.new?.equals(c1)).toBe(true)
    expect((await repo.refs.reflog('main')).map((e) => e.message)).toEqual(['set'])
    // Deleting a ref that does not exist leaves no phantom deletion in the reflog.
    expect(await repo.refs.update('ghost', { next: null, who, message: 'delete' })).toEqual({ old: null, new: null })
    expect(await repo.refs.reflog('ghost')).toEqual([])
    expect(await collect(repo.refs.logged())).not.toContain('ghost')
    await expect(repo.deleteRef('ghost', { who })).rejects.toThrow(/ghost/)
  })

  it('lists refs sorted, optionally under a prefix', async () => {
    for (const name of ['b', 'a/x', 'a/y', 'tags/t']) await repo.refs.update(name, { next: c1, who, message: 'm' })
    expect((await collect(repo.refs.list())).map((r) => r.name)).toEqual(['a/x', 'a/y', 'b', 'scratch', 'tags/t'])
    expect((await collect(repo.refs.list('a/'))).map((r) => r.name)).toEqual(['a/x', 'a/y'])
  })

  it('rejects invalid names before touching anything', async () => {
    await expect(repo.refs.update('bad..name', { next: c1, who, message: 'm' })).rejects.toBeInstanceOf(InvalidRefNameError)
    await expect(repo.refs.get('a b')).rejects.toBeInstanceOf(InvalidRefNameError)
    await expect(repo.commit({ ref: 'x.lock', author: AUTHOR, edits: [record('a.json', { a: 1 })] })).rejects.toBeInstanceOf(InvalidRefNameError)
    expect(await collect(repo.refs.logged())).toEqual(['scratch'])
  })
})
