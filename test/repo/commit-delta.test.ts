import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { writeFileFromBytes } from '../../src/model/file.js'
import { MemoryBlockstore } from '../../src/store/memory.js'
import { fingerprint } from '../store/fixture.js'
import { pseudoRandom } from '../helpers/random.js'
import { type RepoFixture, bytesOf, collect, commitAt, levelRepo } from './fixture.js'

const KiB = 1024
const MiB = 1024 * KiB

/** `bytes` with `regions` 100 KiB regions rewritten at seeded places. */
function scattered(bytes: Uint8Array, regions: number, seed: number): Uint8Array {
  const out = bytes.slice()
  for (let k = 0; k < regions; k++) {
    const at = Math.floor(((k + 0.37) * (bytes.length - 100 * KiB)) / regions)
    out.set(pseudoRandom(seed + k, 100 * KiB), at)
  }
  return out
}

describe('a new version of a large file stores its changed chunks as deltas (level)', () => {
  let fx: RepoFixture
  beforeEach(async () => {
    fx = await levelRepo()
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  it('2% of a 16 MiB checkpoint rewritten in 100 KiB regions costs under 3% of it, and every version checks out byte-exact', async () => {
    const { repo, dir } = fx
    const v1 = pseudoRandom(1, 16 * MiB)
    const v2 = scattered(v1, 3, 100)
    const v3 = scattered(v2, 3, 200)
    const stored = async (): Promise<number> => (await repo.du()).store!.stored
    const source = join(dir, 'weights.bin')
    await writeFile(source, v1)
    await commitAt(repo, 'main', 1, [{ type: 'file', path: 'model/weights.bin', source }])
    const before2 = await stored()
    await writeFile(source, v2)
    await commitAt(repo, 'main', 2, [{ type: 'file', path: 'model/weights.bin', source }])
    const before3 = await stored()
    await commitAt(repo, 'main', 3, [{ type: 'bytes', path: 'model/weights.bin', bytes: v3 }])
    const after = await stored()
    // Each version changed 300 KiB (1.8%); without deltas, the chunks those regions touch cost 6–9%.
    expect(before3 - before2).toBeLessThan(0.03 * v1.length)
    expect(after - before3).toBeLessThan(0.03 * v1.length)
    expect(before3 - before2).toBeGreaterThan(300 * KiB)
    for (const [rev, bytes] of [
      ['main', v3],
      ['main~1', v2],
      ['main~2', v1],
    ] as const) {
      const shown = await repo.show(`${rev}:model/weights.bin`)
      if (!('content' in shown)) throw new Error(`${rev}:model/weights.bin is not a file`)
      expect(fingerprint(await bytesOf(shown.content()))).toBe(fingerprint(bytes))
    }
    await repo.checkout('main~1', { outDir: join(dir, 'out') })
    expect(fingerprint(await readFile(join(dir, 'out', 'model/weights.bin')))).toBe(fingerprint(v2))
    // diff says what the new chunks cost to send (whole) and to keep here (as deltas).
    const [change] = await collect(repo.diff('main~2', 'main~1'))
    expect(change!.storage!.newBytes).toBeGreaterThan(600 * KiB)
    expect(change!.storage!.newStored).toBeGreaterThan(300 * KiB)
    expect(change!.storage!.newStored).toBeLessThan(change!.storage!.newBytes / 2)
    expect(change!.storage!.newStored).toBeLessThanOrEqual(before3 - before2)
    const report = await repo.fsck()
    expect(report.ok).toBe(true)
  })

  it('the CIDs are those of the bytes alone: the same as in a store that never saw the previous version', async () => {
    const { repo } = fx
    const v1 = pseudoRandom(3, 4 * MiB)
    const v2 = scattered(v1, 2, 300)
    await commitAt(repo, 'main', 1, [{ type: 'bytes', path: 'w.bin', bytes: v1 }])
    await commitAt(repo, 'main', 2, [{ type: 'bytes', path: 'w.bin', bytes: v2 }])
    const entry = await repo.trees.get((await repo.readCommit((await repo.refs.get('main'))!)).tree, 'w.bin')
    const alone = await writeFileFromBytes(new MemoryBlockstore(), v2)
    expect(entry!.cid.equals(alone.cid)).toBe(true)
  })
})
