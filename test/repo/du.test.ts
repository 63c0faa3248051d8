import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { NotFoundError } from '../../src/errors.js'
import { du } from '../../src/repo/du.js'
import { prng } from '../helpers/random.js'
import { BACKENDS, type RepoFixture, commitAt, record } from './fixture.js'

const KiB = 1024
const MiB = 1024 * KiB

/** Incompressible bytes, like float weights. */
function randomBytes(seed: number, n: number): Uint8Array {
  const rand = prng(seed)
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i += 4) {
    const x = (rand() * 2 ** 32) >>> 0
    out[i] = x
    out[i + 1] = x >>> 8
    out[i + 2] = x >>> 16
    out[i + 3] = x >>> 24
  }
  return out
}

/** A copy of `bytes` with 2% of it rewritten, in 5 regions scattered over the file. */
function scatteredEdit(bytes: Uint8Array, seed: number): Uint8Array {
  const out = bytes.slice()
  const region = Math.floor((bytes.length * 0.02) / 5)
  for (let k = 0; k < 5; k++) {
    const at = Math.floor(((k + 0.5) * bytes.length) / 5)
    out.set(randomBytes(seed + k, region), at)
  }
  return out
}

function jsonLines(n: number): Uint8Array {
  let s = ''
  for (let i = 0; s.length < n; i++) s += JSON.stringify({ type: 'task', id: `task-${i}`, site: 'aps', loss: (i % 997) / 997, used: [`/data/run${i % 100}.h5`] }) + '\n'
  return new TextEncoder().encode(s).subarray(0, n)
}

for (const backend of BACKENDS) {
  describe(`du (${backend.name})`, () => {
    let fx: RepoFixture
    beforeEach(async () => {
      fx = await backend.open()
    })
    afterEach(async () => {
      await fx.cleanup()
    })

    it('a 5 MiB checkpoint under two paths, then a version with 2% changed: logical bytes exact, stored well under them', async () => {
      const { repo } = fx
      const v1 = randomBytes(1, 5 * MiB)
      const v2 = scatteredEdit(v1, 100)
      await commitAt(repo, 'main', 1, [
        { type: 'bytes', path: 'model/weights.bin', bytes: v1 },
        { type: 'bytes', path: 'backup/weights.bin', bytes: v1 },
        record('runs/1.json', { loss: 0.3 }),
      ])
      const second = await commitAt(repo, 'main', 2, [{ type: 'bytes', path: 'model/weights.bin', bytes: v2 }, record('runs/2.json', { loss: 0.2 })])
      const { refs, store } = await du(repo)
      expect(refs.map((r) => r.name)).toEqual(['main'])
      const main = refs[0]!
      const recordBytes = async (rev: string): Promise<number> => {
        let n = 0
        for await (const e of repo.ls(rev)) if (e.kind === 'record') n += e.size
        return n
      }
      const records1 = await recordBytes('main~1')
      const records2 = await recordBytes('main')
      expect(main.commit.equals(second.cid)).toBe(true)
      expect(main.commits).toBe(2)
      expect(main.logical).toBe(10 * MiB + records2)
      expect(main.logicalAllVersions).toBe(20 * MiB + records1 + records2)
      expect(main.missing).toBe(0)
      // One copy of v1, plus only the chunks the edits touched, plus metadata.
      expect(main.unique).toBeGreaterThan(5 * MiB)
      expect(main.unique).toBeLessThan(5 * MiB + 2.5 * MiB)
      expect(main.stored).toBeLessThanOrEqual(main.unique)
      expect(main.stored).toBeLessThan(0.5 * main.logicalAllVersions)
      expect(main.ratio).toBeCloseTo(main.logicalAllVersions / main.stored, 6)
      expect(main.ratio).toBeGreaterThan(2)
      // Everything in the store is this history (plus the empty tree a new store starts with).
      expect(store!.blocks).toBeGreaterThanOrEqual(main.blocks)
      expect(store!.blocks).toBeLessThanOrEqual(main.blocks + 1)
      expect(store!.size).toBeGreaterThanOrEqual(main.unique)
      expect(store!.stored).toBeLessThanOrEqual(store!.size)
    })

    it('counts compression in stored bytes where the backend compresses', async () => {
      const { repo } = fx
      const text = jsonLines(2 * MiB)
      await commitAt(repo, 'logs', 1, [{ type: 'bytes', path: 'tasks.jsonl', bytes: text }])
      const [logs] = (await du(repo, { revs: ['logs'] })).refs
      expect(logs!.logical).toBe(2 * MiB)
      expect(logs!.unique).toBeGreaterThan(2 * MiB)
      if (backend.name === 'memory') expect(logs!.stored).toBe(logs!.unique)
      else expect(logs!.stored).toBeLessThan(0.5 * logs!.unique)
    })

    it('measures each ref on its own, and revisions such as main~1; refsOnly skips the store scan', async () => {
      const { repo } = fx
      const shared = randomBytes(5, 300 * KiB)
      await commitAt(repo, 'main', 1, [{ type: 'bytes', path: 'a.bin', bytes: shared }])
      await commitAt(repo, 'main', 2, [{ type: 'bytes', path: 'b.bin', bytes: randomBytes(6, 200 * KiB) }])
      await commitAt(repo, 'other', 3, [{ type: 'bytes', path: 'a.bin', bytes: shared }])
      await repo.tag('v1', 'main~1', { tagger: { name: 'ana' }, message: 'first release' })
      const result = await du(repo, { revs: ['main', 'main~1', 'other'], refsOnly: true })
      expect(result.store).toBeUndefined()
      const [main, first, other] = result.refs
      expect(main!.name).toBe('main')
      expect(first!.name).toBe('main~1')
      expect(main!.logical).toBe(500 * KiB)
      expect(main!.logicalAllVersions).toBe(300 * KiB + 500 * KiB)
      expect(first!.commits).toBe(1)
      expect(first!.logical).toBe(300 * KiB)
      expect(other!.logical).toBe(300 * KiB)
      // The shared file is counted in both refs: each says what it needs on its own.
      expect(other!.unique).toBeGreaterThan(300 * KiB)
      expect(main!.unique).toBeGreaterThan(other!.unique + 200 * KiB)
      const all = await du(repo)
      expect(all.refs.map((r) => r.name)).toEqual(['main', 'other', 'tags/v1'])
      expect(all.refs[0]!.commit.equals(main!.commit)).toBe(true)
      // An annotated tag: its commit's history plus the tag node itself.
      const tagged = all.refs[2]!
      expect(tagged.commit.equals(first!.commit)).toBe(true)
      expect(tagged.logical).toBe(300 * KiB)
      expect(tagged.blocks).toBe(first!.blocks + 1)
    })

    it('a revision that names nothing is NotFoundError', async () => {
      await commitAt(fx.repo, 'main', 1, [record('a.json', { a: 1 })])
      await expect(du(fx.repo, { revs: ['nosuchref'] })).rejects.toBeInstanceOf(NotFoundError)
    })

    it('an empty store has no refs and only the empty tree', async () => {
      const { refs, store } = await du(fx.repo)
      expect(refs).toEqual([])
      expect(store!.blocks).toBeLessThanOrEqual(1)
    })
  })
}
