import { openMemoryStore } from '../../src/store/memory.js'
import { blockstoreSuite } from './blockstore.suite.js'
import type { BackendFixture } from './fixture.js'
import { refCellsSuite } from './ref-cells.suite.js'

async function openMemory(): Promise<BackendFixture> {
  const store = openMemoryStore()
  return {
    store,
    cleanup: () => store.close(),
    corrupt: async (cid, bytes) => store.blocks.corrupt(cid, bytes),
  }
}

blockstoreSuite({ name: 'memory', open: openMemory, supports: { persistent: false } })
refCellsSuite({ name: 'memory', open: openMemory, supports: { persistent: false } })
