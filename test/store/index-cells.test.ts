import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Repository } from '../../src/repo/repository.js'
import { entriesForPrefixes, type IndexCells } from '../../src/store/ref-cells.js'

/** Index entries with keys that share prefixes, as the link index writes them. */
const ENTRIES: [string, string][] = [
  ['p/bafyA/a.json', ''],
  ['p/bafyA/b.json', ''],
  ['p/bafyA/c.json', ''],
  ['p/bafyA/d.json', ''],
  ['p/bafyAB/x.json', ''],
  ['p/bafyB/only.json', ''],
  ['d/bafyA/bafyC/used', ''],
  ['q/other', ''],
]

const PREFIXES = ['p/bafyB/', 'p/bafyA/', 'p/bafyNone/', 'p/bafyAB/', 'd/bafyA/', 'p/bafyA/', 'zzz/']

async function oneByOne(index: IndexCells, prefixes: string[], limit: number): Promise<[string, string][][]> {
  const out: [string, string][][] = []
  for (const prefix of prefixes) {
    const got: [string, string][] = []
    for await (const e of index.entries(prefix, { limit })) got.push(e)
    out.push(got)
  }
  return out
}

describe.each([
  ['level', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pedigree-index-'))
    return { repo: await Repository.init(join(dir, '.pedigree')), cleanup: () => rm(dir, { recursive: true, force: true }) }
  }],
  ['memory', async () => ({ repo: Repository.memory(), cleanup: async () => {} })],
] as const)('index cells on %s', (_name, open) => {
  let repo: Repository
  let cleanup: () => Promise<unknown>
  beforeEach(async () => {
    ;({ repo, cleanup } = await open())
    await repo.store.index.putMany(ENTRIES)
  })
  afterEach(async () => {
    await repo.close()
    await cleanup()
  })

  it('entries stops at the end of its prefix and honours the limit', async () => {
    const [a, ab] = await oneByOne(repo.store.index, ['p/bafyA/', 'p/bafyAB/'], 3)
    expect(a!.map(([k]) => k)).toEqual(['p/bafyA/a.json', 'p/bafyA/b.json', 'p/bafyA/c.json'])
    expect(ab!.map(([k]) => k)).toEqual(['p/bafyAB/x.json'])
  })

  it('many prefixes at once (in any order, repeated, absent) give what one lookup each gives', async () => {
    for (const limit of [1, 3, 10]) {
      expect(await entriesForPrefixes(repo.store.index, PREFIXES, limit)).toEqual(await oneByOne(repo.store.index, PREFIXES, limit))
    }
    expect(await entriesForPrefixes(repo.store.index, [], 3)).toEqual([])
  })

  it('getMany gives each key what get gives, in order, undefined where absent', async () => {
    await repo.store.index.putMany([['f/bafyA', 'a.json'], ['f/bafyB', 'only.json'], ['f/bafyA', 'd.json']])
    const keys = ['f/bafyB', 'f/none', 'f/bafyA', 'p/bafyA/a.json', 'f/bafyB', 'f/bafy']
    expect(await repo.store.index.getMany(keys)).toEqual(['only.json', undefined, 'd.json', '', 'only.json', undefined])
    expect(await repo.store.index.getMany(keys)).toEqual(await Promise.all(keys.map((k) => repo.store.index.get(k))))
    expect(await repo.store.index.getMany([])).toEqual([])
  })
})
