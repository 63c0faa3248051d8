import { afterAll, describe, expect, it } from 'vitest'
import { cidToString } from '../../src/codec/cid.js'
import { ensureIndexed, isIndexed, linksTo } from '../../src/repo/link-index.js'
import { Repository } from '../../src/repo/repository.js'
import { S3Bucket } from '../../src/store/s3/bucket.js'
import { parseS3Url } from '../../src/store/s3/url.js'
import { push } from '../../src/sync/push.js'
import { addRemote } from '../../src/sync/remote.js'
import { Stores, WHO } from '../sync/helpers.js'
import { useS3 } from '../support/s3.js'
import { collect } from './fixture.js'

const s3 = await useS3()

if (!s3.ok) {
  describe('S3 store: derived indexes', () => {
    it.skip(`skipped: ${s3.reason}`, () => {})
  })
} else {
  const server = s3.server
  afterAll(() => server.stop())
  const bucket = await server.bucket('index')
  const open = { s3: server.options }
  let n = 0
  const freshUrl = (label: string): string => `s3://${bucket}/${label}-${n++}`

  async function segments(url: string): Promise<number> {
    const raw = await S3Bucket.connect(parseS3Url(url), server.options)
    let count = 0
    for await (const page of raw.list('index/')) count += page.keys.length
    raw.close()
    return count
  }

  async function session<T>(url: string, fn: (repo: Repository) => Promise<T>): Promise<T> {
    const repo = await Repository.open(url, open)
    try {
      return await fn(repo)
    } finally {
      await repo.close()
    }
  }

  describe('S3 store: derived indexes persist in the bucket', () => {
    it('what one process indexed, the next one finds without indexing again; downstream lineage answers', { timeout: 120_000 }, async () => {
      const url = freshUrl('persist')
      await (await Repository.init(url, open)).close()
      const { calib, run } = await session(url, async (repo) => {
        const c1 = await repo.commit({ ref: 'main', author: WHO, message: 'calibration', edits: [{ type: 'record', path: 'calib.json', value: { gain: 2 } }] })
        const calibCid = (await repo.resolveEntry('main:calib.json')).entry.cid
        const c2 = await repo.commit({ ref: 'main', author: WHO, message: 'run', edits: [{ type: 'record', path: 'runs/1.json', value: { used: calibCid, loss: 0.1 } }] })
        return { calib: calibCid, run: c2, first: c1 }
      })
      await session(url, async (repo) => {
        expect(await isIndexed(repo, run.cid)).toBe(true)
        expect(await ensureIndexed(repo)).toBe(0)
        const sources = await collect(linksTo(repo, calib))
        expect(sources.map((s) => s.field)).toEqual(['used'])
        expect(cidToString(sources[0]!.source)).toBe(cidToString((await repo.resolveEntry('main:runs/1.json')).entry.cid))
      })
    })

    it('a push to an s3:// remote indexes only the new commits there', { timeout: 120_000 }, async () => {
      const url = freshUrl('push')
      await (await Repository.init(url, open)).close()
      const s = await Stores.make()
      try {
        const local = await s.init('local')
        for (let i = 0; i < 3; i++) await local.commit({ ref: 'main', author: WHO, message: `c${i}`, edits: [{ type: 'record', path: `r/${i}.json`, value: { i } }] })
        await addRemote(local, 'origin', url)
        await push(local, { who: WHO, open })
        await session(url, async (remote) => expect(await ensureIndexed(remote)).toBe(0))
        await local.commit({ ref: 'main', author: WHO, message: 'c3', edits: [{ type: 'record', path: 'r/3.json', value: { i: 3 } }] })
        await push(local, { who: WHO, open })
        await session(url, async (remote) => {
          expect(await ensureIndexed(remote)).toBe(0)
          for await (const e of remote.log({ from: 'main' })) expect(await isIndexed(remote, e.cid)).toBe(true)
        })
      } finally {
        await s.cleanup()
      }
    })

    it('many small segments are merged by the next reader, and nothing indexed is lost', { timeout: 180_000 }, async () => {
      const url = freshUrl('compact')
      await (await Repository.init(url, open)).close()
      for (let i = 0; i < 36; i++) {
        await session(url, (repo) => repo.commit({ ref: 'main', author: WHO, message: `c${i}`, edits: [{ type: 'record', path: `r/${i}.json`, value: { i } }] }))
      }
      expect(await segments(url)).toBeGreaterThanOrEqual(36)
      await session(url, async (repo) => expect(await ensureIndexed(repo)).toBe(0))
      expect(await segments(url)).toBeLessThanOrEqual(2)
      await session(url, async (repo) => {
        expect(await ensureIndexed(repo)).toBe(0)
        const log = await collect(repo.log({ from: 'main' }))
        expect(log).toHaveLength(36)
        for (const e of log) expect(await isIndexed(repo, e.cid)).toBe(true)
      })
    })

    it('index rebuild in one process is what the next one reads', { timeout: 120_000 }, async () => {
      const url = freshUrl('rebuild')
      await (await Repository.init(url, open)).close()
      await session(url, async (repo) => {
        for (let i = 0; i < 3; i++) await repo.commit({ ref: 'main', author: WHO, message: `c${i}`, edits: [{ type: 'record', path: `r/${i}.json`, value: { i } }] })
      })
      expect(await session(url, (repo) => repo.rebuildIndex())).toBe(3)
      await session(url, async (repo) => expect(await ensureIndexed(repo)).toBe(0))
    })
  })
}
