import { afterAll, describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import { cidToString } from '../../src/codec/cid.js'
import { S3Bucket } from '../../src/store/s3/bucket.js'
import { initS3Store, openS3Store } from '../../src/store/s3/store.js'
import { parseS3Url } from '../../src/store/s3/url.js'
import type { RefLogRecord } from '../../src/store/ref-cells.js'
import { pool } from '../../src/store/s3/pool.js'
import { useS3 } from '../support/s3.js'

const s3 = await useS3()
const commit = (i: number): string => cidToString(encodeNode({ tree: null, parents: [], message: `commit ${i}`, time: i }).cid)

if (!s3.ok) {
  describe('S3 refs: long logs', () => {
    it.skip(`skipped: ${s3.reason}`, () => {})
  })
} else {
  const server = s3.server
  afterAll(() => server.stop())
  const bucket = await server.bucket('long-log')

  describe('S3 refs: updates from the last entry seen', () => {
    it('an update right after a read lists nothing more; a stale last-seen entry is found out and refused', { timeout: 60_000 }, async () => {
      const url = `s3://${bucket}/seen`
      await (await initS3Store(url, server.options)).close()
      const line = (old: number | null, next: number, message: string): RefLogRecord => ({ old: old === null ? null : commit(old), new: commit(next), who: { name: 'bot' }, time: next, message })
      const a = await openS3Store(url, server.options)
      const b = await openS3Store(url, server.options)
      try {
        expect(await a.refs.compareAndSwap('main', line(null, 1, 'create'))).toBe(true)
        // b reads the ref (one listing), then updates it from what it read: no second listing.
        expect(await b.refs.get('main')).toBe(commit(1))
        const before = { ...b.bucket.stats }
        expect(await b.refs.compareAndSwap('main', line(1, 2, 'b moves it'))).toBe(true)
        expect(b.bucket.stats.lists - before.lists).toBe(0)
        // a last saw entry 0 (commit 1): its update from commit 1 finds entry 1 taken, reads the
        // log, and is refused; from the value b wrote it goes through, as entry 2.
        expect(await a.refs.compareAndSwap('main', line(1, 3, 'stale'))).toBe(false)
        expect(await a.refs.get('main')).toBe(commit(2))
        expect(await a.refs.compareAndSwap('main', line(2, 3, 'a moves it'))).toBe(true)
        expect(await b.refs.get('main')).toBe(commit(3))
        const messages: string[] = []
        for await (const r of b.refs.log('main')) messages.push(r.message)
        expect(messages).toEqual(['create', 'b moves it', 'a moves it'])
      } finally {
        await a.close()
        await b.close()
      }
    })
  })

  describe('S3 refs: long logs', () => {
    it('a fresh reader finds the head of a 1281-entry log in a few requests, not by listing it all', { timeout: 180_000 }, async () => {
      const url = `s3://${bucket}/long`
      await (await initS3Store(url, server.options)).close()
      // 1280 entries written directly (as 1280 earlier updates would have), for speed.
      const raw = await S3Bucket.connect(parseS3Url(url), server.options)
      const line = (i: number): RefLogRecord => ({ old: i === 0 ? null : commit(i - 1), new: commit(i), who: { name: 'bot' }, time: i, message: `update ${i}` })
      await pool(
        Array.from({ length: 1280 }, (_, i) => i),
        16,
        async (i) => {
          await raw.put(`refs/main/${String(i).padStart(12, '0')}`, new TextEncoder().encode(JSON.stringify(line(i))), { createOnly: true })
        },
      )
      raw.close()

      // The 1281st update, through the store: entry 1280, which also leaves a hint.
      const writer = await openS3Store(url, server.options)
      expect(await writer.refs.compareAndSwap('main', line(1280))).toBe(true)
      await writer.close()

      const reader = await openS3Store(url, server.options)
      try {
        const before = { ...reader.bucket.stats }
        expect(await reader.refs.get('main')).toBe(commit(1280))
        // A first page of the log (256 keys), the hint, the log from the hint on, the last entry
        // (listing the rest of the log from the first page on would take two more pages).
        expect(reader.bucket.stats.lists - before.lists).toBe(2)
        expect(reader.bucket.stats.gets - before.gets).toBe(2)
        // Updates go on from there, and stale ones are still refused.
        expect(await reader.refs.compareAndSwap('main', line(1280))).toBe(false)
        expect(await reader.refs.compareAndSwap('main', line(1281))).toBe(true)
        expect(await reader.refs.get('main')).toBe(commit(1281))
        // Nothing was lost or written twice: 1282 numbered entries (and the hint).
        const again = await S3Bucket.connect(parseS3Url(url), server.options)
        const keys: string[] = []
        for await (const page of again.list('refs/main/')) keys.push(...page.keys)
        again.close()
        expect(keys.filter((k) => /\/\d{12}$/.test(k))).toHaveLength(1282)
        expect(keys.at(-2)).toBe(`refs/main/${String(1281).padStart(12, '0')}`)
      } finally {
        await reader.close()
      }
    })
  })
}
