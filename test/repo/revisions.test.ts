import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { CID } from '../../src/codec/cid.js'
import { InvalidInputError, InvalidRefNameError, NoCommitsError, NotFoundError } from '../../src/errors.js'
import type { Repository } from '../../src/repo/repository.js'
import { parseRevision } from '../../src/repo/resolve.js'
import { AUTHOR, BACKENDS, T0, collect, commitAt, record, type RepoFixture } from './fixture.js'

const failure = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  )

describe('parseRevision', () => {
  it('takes a revision apart', () => {
    expect(parseRevision('main')).toEqual({ base: 'main', steps: [] })
    expect(parseRevision('main@{1}~2^')).toEqual({ base: 'main', reflog: 1, steps: [{ op: '~', n: 2 }, { op: '^', n: 1 }] })
    expect(parseRevision('@{3}')).toEqual({ base: 'main', reflog: 3, steps: [] })
    expect(parseRevision('bafyreicddwj5irc^2')).toEqual({ base: 'bafyreicddwj5irc', steps: [{ op: '^', n: 2 }] })
  })

  it.each([
    ['main@{-1}', '@{-1}'],
    ['main@{x}', '@{x}'],
    ['main@{}', '@{}'],
    ['main@{1', '@{1'],
    ['main~-1', '~-1'],
    ['main~x', '~x'],
    ['main^^a', '^a'],
    ['main~1@{1}', '@{N} goes right after the ref name'],
    ['~1', 'nothing before'],
    ['a b', 'space'],
    ['a..b', "'..'"],
  ])('%s is malformed: InvalidInputError naming %s', (rev, detail) => {
    const err = (() => {
      try {
        parseRevision(rev)
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(InvalidInputError)
    expect((err as InvalidInputError).code).toBe('ERR_INVALID_INPUT')
    expect((err as InvalidInputError).data.rev).toBe(rev)
    expect((err as Error).message).toContain(`malformed revision '${rev}'`)
    expect((err as Error).message).toContain(detail)
  })
})

describe.each(BACKENDS)('revisions ($name)', ({ open }) => {
  let fx: RepoFixture
  let repo: Repository
  let c1: CID
  let c2: CID

  beforeEach(async () => {
    fx = await open()
    repo = fx.repo
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  const twoCommits = async (): Promise<void> => {
    c1 = (await commitAt(repo, 'main', 1, [record('runs/1.json', { loss: 0.5 })])).cid
    c2 = (await commitAt(repo, 'main', 2, [record('runs/1.json', { loss: 0.4 })])).cid
  }

  it('a malformed revision is invalid input, not something missing, wherever a revision is read', async () => {
    await twoCommits()
    for (const rev of ['main@{-1}', 'main@{x}', 'main~-1']) {
      for (const attempt of [() => repo.resolve(rev), () => repo.show(rev), () => repo.show(`${rev}:runs/1.json`), () => collect(repo.log({ from: rev }))]) {
        const err = await failure(attempt())
        expect(err, rev).toBeInstanceOf(InvalidInputError)
        expect(err).not.toBeInstanceOf(NotFoundError)
      }
    }
  })

  it('on an empty store, a ref has no commits yet (still not found)', async () => {
    for (const rev of ['main', 'main~1', 'models/x']) {
      const err = await failure(repo.resolve(rev))
      expect(err, rev).toBeInstanceOf(NoCommitsError)
      expect(err).toBeInstanceOf(NotFoundError)
      expect((err as NotFoundError).code).toBe('ERR_NOT_FOUND')
      expect((err as NotFoundError).data.name).toBe(rev)
      expect((err as Error).message).toContain('has no commits yet')
    }
    const log = await failure(collect(repo.log()))
    expect(log).toBeInstanceOf(NoCommitsError)
    // Once there is a commit, an unknown name is just unknown.
    await twoCommits()
    const other = await failure(repo.resolve('nope'))
    expect(other).toBeInstanceOf(NotFoundError)
    expect(other).not.toBeInstanceOf(NoCommitsError)
  })

  it('a deleted ref is said to be deleted, with the way to its last value', async () => {
    await twoCommits()
    await repo.setRef('exp', 'main~1', { who: AUTHOR })
    await repo.deleteRef('exp', { who: AUTHOR })
    const err = await failure(repo.resolve('exp'))
    expect(err).toBeInstanceOf(NotFoundError)
    expect((err as Error).message).toContain("the ref 'exp' was deleted")
    expect((await repo.resolve('exp@{1}')).cid.equals(c1)).toBe(true)
  })

  it('refuses to create a ref, branch or tag named like a CID, and leaves the refs as they were', async () => {
    await twoCommits()
    const prefix = c1.toString().slice(0, 16)
    const before = await collect(repo.refs.list())
    for (const attempt of [
      () => repo.setRef(prefix, 'main', { who: AUTHOR }),
      () => repo.setRef(c1.toString(), 'main', { who: AUTHOR }),
      () => repo.tag(prefix, 'main', { tagger: AUTHOR }),
      () => repo.tag(prefix, 'main', { tagger: AUTHOR, message: 'annotated' }),
      () => commitAt(repo, prefix, 3, [record('x.json', { x: 1 })]),
      () => repo.refs.update(prefix, { next: c2, who: AUTHOR, message: 'direct' }),
    ]) {
      const err = await failure(attempt())
      expect(err).toBeInstanceOf(InvalidRefNameError)
      expect((err as InvalidRefNameError).code).toBe('ERR_INVALID_REF_NAME')
      expect((err as Error).message).toContain('reads as a CID')
    }
    expect(await collect(repo.refs.list())).toEqual(before)
    expect((await repo.resolve(prefix)).cid.equals(c1)).toBe(true)
  })

  it('a ref named like a CID in an older store does not hide the block, and can be deleted', async () => {
    await twoCommits()
    const prefix = c1.toString().slice(0, 16)
    // Written below the refs layer, as a version without the rule could have.
    expect(await repo.store.refs.compareAndSwap(prefix, { old: null, new: c2.toString(), who: AUTHOR, time: T0, message: 'old version' })).toBe(true)
    expect((await repo.resolve(prefix)).cid.equals(c1)).toBe(true)
    expect((await repo.resolve(c1.toString())).cid.equals(c1)).toBe(true)
    expect((await repo.refs.get(prefix))?.equals(c2)).toBe(true)
    // It cannot be moved on (that would keep the name alive), only deleted.
    expect(await failure(repo.setRef(prefix, 'main~1', { who: AUTHOR }))).toBeInstanceOf(InvalidRefNameError)
    const deleted = await repo.deleteRef(prefix, { who: AUTHOR })
    expect(deleted.old.equals(c2)).toBe(true)
    expect(await repo.refs.get(prefix)).toBeUndefined()
    expect((await repo.refs.reflog(prefix)).map((e) => e.new?.toString() ?? null)).toEqual([null, c2.toString()])
  })

  it('a ref and a tag of the same name: the ref wins, and shadowedTag says which tag it hides', async () => {
    await twoCommits()
    await repo.tag('v1', 'main~1', { tagger: AUTHOR })
    expect(await repo.shadowedTag('v1')).toBeUndefined()
    await repo.setRef('v1', 'main', { who: AUTHOR })
    expect((await repo.resolve('v1')).cid.equals(c2)).toBe(true)
    expect((await repo.resolve('tags/v1')).cid.equals(c1)).toBe(true)
    expect(await repo.shadowedTag('v1')).toBe('tags/v1')
    expect(await repo.shadowedTag('v1~1')).toBe('tags/v1')
    expect(await repo.shadowedTag('v1:runs/1.json')).toBe('tags/v1')
    expect(await repo.shadowedTag('tags/v1')).toBeUndefined()
    expect(await repo.shadowedTag('main')).toBeUndefined()
    const shown = await repo.show('v1')
    expect(shown.type === 'commit' && shown.shadowedTag).toBe('tags/v1')
  })
})
