import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import type { CID } from '../../src/codec/cid.js'
import { AmbiguousRevisionError, InvalidInputError, NotFoundError } from '../../src/errors.js'
import type { Repository } from '../../src/repo/repository.js'
import { MIN_PREFIX, resolvePrefix } from '../../src/repo/resolve.js'
import { AUTHOR, BACKENDS, T0, bytesOf, collect, commitAt, record, text, type RepoFixture } from './fixture.js'

/** Two records whose CIDs share their first 13 characters (found once by a deterministic search over `probe`). */
const TWINS = [{ probe: 5643 }, { probe: 5891 }]
const TWIN_PREFIX = 'bafyreicug7pr'

describe.each(BACKENDS)('resolve ($name)', ({ open }) => {
  let fx: RepoFixture
  let repo: Repository
  let c1: CID
  let c2: CID
  let c3: CID

  beforeEach(async () => {
    fx = await open()
    repo = fx.repo
    c1 = (await commitAt(repo, 'main', 1, [record('runs/1.json', { loss: 0.5 }), text('notes.txt', 'v1\n')])).cid
    c2 = (await commitAt(repo, 'main', 2, [record('runs/1.json', { loss: 0.4 }), text('notes.txt', 'v2\n')])).cid
    c3 = (await commitAt(repo, 'main', 3, [record('runs/2.json', { loss: 0.3 })])).cid
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  const cidOf = async (rev: string): Promise<string> => (await repo.resolve(rev)).cid.toString()
  const failure = async (rev: string): Promise<unknown> => repo.resolve(rev).then(
    () => undefined,
    (e: unknown) => e,
  )

  it('resolves ref names, full CIDs and unique prefixes of 12+ characters', async () => {
    expect(await cidOf('main')).toBe(c3.toString())
    expect((await repo.resolve('main')).commit.message).toBe('commit 3')
    expect(await cidOf(c1.toString())).toBe(c1.toString())
    expect(await cidOf(c2.toString().slice(0, MIN_PREFIX))).toBe(c2.toString())
    expect(await cidOf(c2.toString().slice(0, 20))).toBe(c2.toString())
    await repo.setRef('models/braggnn', 'main~1', { who: AUTHOR })
    expect(await cidOf('models/braggnn')).toBe(c2.toString())
  })

  it('rejects a prefix shorter than 12 characters, even when unique', async () => {
    const short = c2.toString().slice(0, MIN_PREFIX - 1)
    const err = await failure(short)
    expect(err).toBeInstanceOf(NotFoundError)
    expect((err as NotFoundError).message).toContain('12')
  })

  it('reports an ambiguous prefix with its candidates', async () => {
    const twins = TWINS.map((v) => encodeNode(v).cid.toString())
    expect(TWIN_PREFIX.length).toBeGreaterThanOrEqual(MIN_PREFIX)
    expect(twins[0]!.startsWith(TWIN_PREFIX)).toBe(true)
    expect(twins[1]!.startsWith(TWIN_PREFIX)).toBe(true)
    expect(twins[0]).not.toBe(twins[1])
    await commitAt(repo, 'main', 4, [record('twin/a.json', TWINS[0]!), record('twin/b.json', TWINS[1]!)])

    const err = await failure(TWIN_PREFIX)
    expect(err).toBeInstanceOf(AmbiguousRevisionError)
    expect((err as AmbiguousRevisionError).code).toBe('ERR_AMBIGUOUS')
    expect([...((err as AmbiguousRevisionError).data.candidates as string[])].sort()).toEqual([...twins].sort())
    for (const t of twins) expect((err as Error).message).toContain(t)
    // One more character makes it unique (and it names a record, not a commit).
    const one = await failure(twins[0]!.slice(0, 14))
    expect(one).toBeInstanceOf(InvalidInputError)
    expect((one as Error).message).toContain('not a commit')
    expect((await resolvePrefix(repo, twins[1]!.slice(0, 14))).toString()).toBe(twins[1])
  })

  it('lists every block sharing the longest common prefix in the store', async () => {
    const all: string[] = []
    for await (const c of repo.blocks.cids()) all.push(c.toString())
    all.sort()
    let best = { len: 0, a: '', b: '' }
    for (let i = 0; i + 1 < all.length; i++) {
      let n = 0
      while (all[i]![n] === all[i + 1]![n]) n++
      if (n > best.len) best = { len: n, a: all[i]!, b: all[i + 1]! }
    }
    const prefix = best.a.slice(0, best.len)
    const err = await resolvePrefix(repo, prefix).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(AmbiguousRevisionError)
    expect((err as AmbiguousRevisionError).data.candidates).toEqual(expect.arrayContaining([best.a, best.b]))
    expect((err as AmbiguousRevisionError).data.candidates).toEqual(all.filter((c) => c.startsWith(prefix)))
    await expect(resolvePrefix(repo, 'bafyreiaaaaaaaaaaaaaaaaaaaa')).rejects.toBeInstanceOf(NotFoundError)
  })

  it('walks ancestors with ~N and ^N', async () => {
    expect(await cidOf('main~0')).toBe(c3.toString())
    expect(await cidOf('main~1')).toBe(c2.toString())
    expect(await cidOf('main~2')).toBe(c1.toString())
    expect(await cidOf('main^')).toBe(c2.toString())
    expect(await cidOf('main^1')).toBe(c2.toString())
    expect(await cidOf('main^^')).toBe(c1.toString())
    expect(await cidOf('main~1^')).toBe(c1.toString())
    expect(await cidOf(`${c3.toString().slice(0, 14)}~2`)).toBe(c1.toString())

    const beyond = await failure('main~3')
    expect(beyond).toBeInstanceOf(NotFoundError)
    expect((beyond as Error).message).toContain('no parent')

    const second = await failure('main^2')
    expect(second).toBeInstanceOf(NotFoundError)
    expect((second as Error).message).toContain('has 1 parent(s)')
    expect((second as NotFoundError).data.name).toBe('main^2')
  })

  it('reads the reflog with @{N}', async () => {
    expect(await cidOf('main@{0}')).toBe(c3.toString())
    expect(await cidOf('main@{1}')).toBe(c2.toString())
    expect(await cidOf('main@{2}')).toBe(c1.toString())
    expect(await cidOf('main@{1}~1')).toBe(c1.toString())
    // The reflog is about where the ref pointed, not ancestry: after a reset, @{1} is the old tip.
    await repo.setRef('main', 'main~2', { who: AUTHOR, message: 'roll back' })
    expect(await cidOf('main')).toBe(c1.toString())
    expect(await cidOf('main@{1}')).toBe(c3.toString())

    const far = await failure('main@{99}')
    expect(far).toBeInstanceOf(NotFoundError)
    expect((far as Error).message).toContain('main@{99}')
    await expect(repo.resolve('nobranch@{0}')).rejects.toBeInstanceOf(NotFoundError)
  })

  it('names an unknown revision in a NotFoundError', async () => {
    const err = await failure('nope')
    expect(err).toBeInstanceOf(NotFoundError)
    expect((err as NotFoundError).code).toBe('ERR_NOT_FOUND')
    expect((err as NotFoundError).data.name).toBe('nope')
    expect((err as Error).message).toContain('nope')
    // A well-formed CID that is not in the store.
    const absent = encodeNode({ absent: true }).cid.toString()
    const e2 = await failure(absent)
    expect(e2).toBeInstanceOf(NotFoundError)
    expect((e2 as Error).message).toContain(absent)
  })

  it('resolves rev:path to records and files', async () => {
    const a = await repo.resolveEntry('main~2:runs/1.json')
    expect(a.cid.equals(c1)).toBe(true)
    expect(a.entry.kind).toBe('record')
    expect(a.path).toBe('runs/1.json')
    const shown = await repo.show('main~2:runs/1.json')
    expect(shown.type === 'record' && shown.value).toEqual({ loss: 0.5 })
    const now = await repo.show('main:runs/1.json')
    expect(now.type === 'record' && now.value).toEqual({ loss: 0.4 })

    const f = await repo.show(`${c1.toString()}:notes.txt`)
    if (f.type !== 'file') throw new Error('expected a file')
    expect((await bytesOf(f.content())).toString()).toBe('v1\n')
    expect(f.commit?.equals(c1)).toBe(true)

    const missing = await repo.resolveEntry('main:runs/9.json').catch((e: unknown) => e)
    expect(missing).toBeInstanceOf(NotFoundError)
    expect((missing as Error).message).toContain('runs/9.json')
    // A folder is not an entry, and the error says it is a folder (not that nothing is there).
    for (const spec of ['main:runs', 'main:runs/', 'main:']) {
      const folder = await repo.resolveEntry(spec).catch((e: unknown) => e)
      expect(folder, spec).toBeInstanceOf(InvalidInputError)
      expect((folder as InvalidInputError).data.folder).toBe(true)
      expect((folder as Error).message).toContain('is a folder')
      expect((folder as Error).message).toContain('pedigree ls main')
    }
    // A path where a commit is needed.
    await expect(repo.resolve('main:runs/1.json')).rejects.toBeInstanceOf(InvalidInputError)
  })

  it('resolves tags by full name and abbreviation, peeling annotated tags to their commit', async () => {
    // A tagger that is not a person (from JavaScript) is refused before the ref is written.
    const noTagger = await repo.tag('v0', 'main', { tagger: { name: '' }, message: 'x' }).catch((e: unknown) => e)
    expect(noTagger).toBeInstanceOf(InvalidInputError)
    expect((noTagger as Error).message).toContain('the tagger has no name')
    expect(await repo.refs.get('tags/v0')).toBeUndefined()
    const light = await repo.tag('v1', 'main~2', { tagger: AUTHOR })
    expect(light.annotated).toBe(false)
    expect(light.cid.equals(c1)).toBe(true)
    const annotated = await repo.tag('v2', 'main~1', { tagger: AUTHOR, time: T0, message: 'release 2' })
    expect(annotated.annotated).toBe(true)
    expect(annotated.cid.equals(c2)).toBe(false)
    expect((await repo.refs.get('tags/v2'))?.equals(annotated.cid)).toBe(true)

    expect(await cidOf('tags/v1')).toBe(c1.toString())
    expect(await cidOf('v1')).toBe(c1.toString())
    expect(await cidOf('tags/v2')).toBe(c2.toString())
    expect(await cidOf('v2')).toBe(c2.toString())
    expect(await cidOf('v2~1')).toBe(c1.toString())
    expect(await cidOf(annotated.cid.toString())).toBe(c2.toString())
    expect(await cidOf('v2@{0}')).toBe(c2.toString())
    const tagNode = await repo.readNode<{ target: CID; message: string; name: string }>(annotated.cid)
    expect(tagNode.target.equals(c2)).toBe(true)
    expect(tagNode.message).toBe('release 2')

    // A ref named like the tag wins over the abbreviation.
    await repo.setRef('v1', 'main', { who: AUTHOR })
    expect(await cidOf('v1')).toBe(c3.toString())
    expect(await cidOf('tags/v1')).toBe(c1.toString())
  })

  it('refuses a revision that names a record or a file', async () => {
    const entries = await collect(repo.ls('main'))
    for (const e of entries) {
      const err = await failure(e.cid.toString())
      expect(err, e.path).toBeInstanceOf(InvalidInputError)
      expect((err as Error).message).toContain('not a commit')
    }
  })
})
