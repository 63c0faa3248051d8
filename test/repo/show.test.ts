import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { CID } from '../../src/codec/cid.js'
import { InvalidInputError, NotFoundError } from '../../src/errors.js'
import type { Repository } from '../../src/repo/repository.js'
import { pseudoRandom } from '../helpers/random.js'
import { AUTHOR, BACKENDS, T0, bytesOf, collect, commitAt, record, text, type RepoFixture } from './fixture.js'

/** More than one block, so the file is a file node over chunks, not a raw block. */
const BIG = Buffer.from(pseudoRandom(7, 3 * 1024 * 1024 + 17))

describe.each(BACKENDS)('show by CID ($name)', ({ open }) => {
  let fx: RepoFixture
  let repo: Repository
  let c1: CID
  const entry = async (path: string): Promise<CID> => (await collect(repo.ls('main'))).find((e) => e.path === path)!.cid

  beforeEach(async () => {
    fx = await open()
    repo = fx.repo
    c1 = (
      await commitAt(repo, 'main', 1, [
        record('runs/1.json', { loss: 0.5, tags: ['a'] }),
        text('notes.txt', 'hello\n'),
        { type: 'bytes', path: 'model/weights.bin', bytes: BIG },
      ])
    ).cid
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  it('a record, by CID or unique prefix: its value, as REV:PATH gives it', async () => {
    const cid = await entry('runs/1.json')
    const byPath = await repo.show('main:runs/1.json')
    if (byPath.type !== 'record') throw new Error('expected a record')
    for (const rev of [cid.toString(), cid.toString().slice(0, 14)]) {
      const r = await repo.show(rev)
      if (r.type !== 'record') throw new Error(`expected a record, got ${r.type}`)
      expect(r.cid.equals(cid)).toBe(true)
      expect(r.value).toEqual({ loss: 0.5, tags: ['a'] })
      expect(r.size).toBe(byPath.size)
      expect(r.path).toBeUndefined()
      expect(r.commit).toBeUndefined()
    }
  })

  it('a file: a raw block and a chunked file node, their bytes exactly', async () => {
    const small = await repo.show((await entry('notes.txt')).toString())
    if (small.type !== 'file') throw new Error('expected a file')
    expect(small.size).toBe(6)
    expect((await bytesOf(small.content())).toString()).toBe('hello\n')

    const weights = await entry('model/weights.bin')
    expect(weights.code).toBe(0x71) // a file node, not a raw block
    const big = await repo.show(weights.toString().slice(0, 20))
    if (big.type !== 'file') throw new Error('expected a file')
    expect(big.size).toBe(BIG.length)
    expect((await bytesOf(big.content())).equals(BIG)).toBe(true)
  })

  it('an annotated tag, by ref or by its CID: the tag, then its commit', async () => {
    const t = await repo.tag('v1', 'main', { tagger: AUTHOR, time: T0, message: 'release 1' })
    for (const rev of ['tags/v1', 'v1', t.cid.toString(), t.cid.toString().slice(0, 16)]) {
      const r = await repo.show(rev)
      if (r.type !== 'commit') throw new Error('expected a commit')
      expect(r.cid.equals(c1), rev).toBe(true)
      expect(r.tag?.cid.equals(t.cid)).toBe(true)
      expect(r.tag?.tag).toMatchObject({ name: 'v1', message: 'release 1', time: T0, tagger: AUTHOR })
    }
    // Past the tag (~0) is a commit, shown without it.
    const past = await repo.show('tags/v1~0')
    expect(past.type === 'commit' && past.tag).toBeUndefined()
    const plain = await repo.show('main')
    expect(plain.type === 'commit' && plain.tag).toBeUndefined()
  })

  it('an absent CID is not found; a commit is still needed where one is', async () => {
    await expect(repo.show('bafyreiaaaaaaaaaaaaaaaaaaa')).rejects.toBeInstanceOf(NotFoundError)
    // Still a commit is needed where one is: resolve refuses a record.
    await expect(repo.resolve((await entry('runs/1.json')).toString())).rejects.toBeInstanceOf(InvalidInputError)
  })
})
