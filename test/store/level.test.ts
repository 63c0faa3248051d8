import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openLevelStore } from '../../src/store/level.js'
import type { Store } from '../../src/store/store.js'
import { blockstoreSuite } from './blockstore.suite.js'
import type { BackendFixture } from './fixture.js'
import { refCellsSuite } from './ref-cells.suite.js'

/** A LevelDB store in a fresh temporary directory, removed by cleanup. No corrupt hook: put does not re-hash. */
async function openTmpLevel(): Promise<BackendFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'pedigree-level-'))
  let current: Store | undefined = await openLevelStore(dir, { lockTimeoutMs: 2_000 })
  return {
    store: current,
    async reopen() {
      await current?.close()
      current = undefined
      current = await openLevelStore(dir, { lockTimeoutMs: 2_000 })
      return current
    },
    async cleanup() {
      try {
        await current?.close()
      } finally {
        current = undefined
        await rm(dir, { recursive: true, force: true })
      }
    },
  }
}

blockstoreSuite({ name: 'level', open: openTmpLevel, supports: { persistent: true } })
refCellsSuite({ name: 'level', open: openTmpLevel, supports: { persistent: true } })
