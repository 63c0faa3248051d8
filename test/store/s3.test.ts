import { afterAll, describe, it } from 'vitest'
import { initS3Store, openS3Store, type S3Store } from '../../src/store/s3/store.js'
import { useS3 } from '../support/s3.js'
import { blockstoreSuite } from './blockstore.suite.js'
import type { BackendFixture } from './fixture.js'
import { refCellsSuite } from './ref-cells.suite.js'

const s3 = await useS3()

if (!s3.ok) {
  describe('S3 store conformance', () => {
    it.skip(`skipped: ${s3.reason}`, () => {})
  })
} else {
  const server = s3.server
  afterAll(() => server.stop())
  const bucket = await server.bucket('store-suite')
  let n = 0

  /**
   * A fresh store under its own prefix of one bucket per file. Small packs (64 KiB) so that
   * the suite's blocks spread over several packs and reads cross pack boundaries.
   */
  async function openTmpS3(): Promise<BackendFixture> {
    const url = `s3://${bucket}/suite/${process.pid}-${n++}`
    const options = { ...server.options, packTarget: 64 * 1024 }
    let current: S3Store | undefined = await initS3Store(url, options)
    return {
      store: current,
      async reopen() {
        await current?.close()
        current = undefined
        current = await openS3Store(url, options)
        return current
      },
      async cleanup() {
        await current?.close()
        current = undefined
      },
    }
  }

  blockstoreSuite({ name: 's3 (Ceph RGW)', open: openTmpS3, supports: { persistent: true }, timeoutMs: 60_000 })
  refCellsSuite({ name: 's3 (Ceph RGW)', open: openTmpS3, supports: { persistent: true }, timeoutMs: 60_000 })
}
