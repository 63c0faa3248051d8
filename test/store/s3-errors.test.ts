import { createServer } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { encodeNode, rawBlock, decodeBlock } from '../../src/codec/block.js'
import { cidToString, type CID } from '../../src/codec/cid.js'
import { CorruptBlockError } from '../../src/errors.js'
import { Refs } from '../../src/refs/refs.js'
import { Repository } from '../../src/repo/repository.js'
import { S3Bucket } from '../../src/store/s3/bucket.js'
import { decodePackIndex, encodePackIndex } from '../../src/store/s3/pack-format.js'
import { initS3Store, openS3Store, type S3Store } from '../../src/store/s3/store.js'
import { parseS3Url } from '../../src/store/s3/url.js'
import { useS3 } from '../support/s3.js'
import { collect, fingerprint, rejectionOf, seededBytes } from './fixture.js'

const s3 = await useS3()
const WHO = { name: 'racer', email: 'racer@example.org' }
const commitCid = (i: number): CID => encodeNode({ tree: null, parents: [], message: `commit ${i}`, time: i }).cid

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

if (!s3.ok) {
  describe('S3 store: races and bad input', () => {
    it.skip(`skipped: ${s3.reason}`, () => {})
  })
} else {
  const server = s3.server
  afterAll(() => server.stop())
  const bucket = await server.bucket('store-errors')
  let n = 0
  const freshUrl = (label: string): string => `s3://${bucket}/${label}-${n++}`

  describe('S3 store: compare-and-swap between separate clients (as separate processes would be)', () => {
    it('16 racing compare-and-swaps on one ref: exactly one wins, 15 get ERR_CONFLICT, the log has base + winner', { timeout: 60_000 }, async () => {
      const url = freshUrl('race')
      const first = await initS3Store(url, server.options)
      const stores: S3Store[] = [first, ...(await Promise.all(Array.from({ length: 15 }, () => openS3Store(url, server.options))))]
      try {
        await new Refs(first.refs).update('main', { next: commitCid(0), expect: null, who: WHO, message: 'base' })
        // Every writer has read the base before any of them writes.
        for (const s of stores) expect(await s.refs.get('main')).toBe(cidToString(commitCid(0)))
        const outcomes = await Promise.allSettled(
          stores.map((s, i) => new Refs(s.refs).update('main', { next: commitCid(100 + i), expect: commitCid(0), who: WHO, message: `racer ${i}` })),
        )
        const winners = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []))
        expect(winners).toHaveLength(1)
        for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as { code?: string }).code).toBe('ERR_CONFLICT')
        const w = winners[0]!
        const reader = await openS3Store(url, server.options)
        try {
          expect(await reader.refs.get('main')).toBe(cidToString(commitCid(100 + w)))
          expect((await collect(reader.refs.log('main'))).map((r) => [r.old, r.new, r.message])).toEqual([
            [null, cidToString(commitCid(0)), 'base'],
            [cidToString(commitCid(0)), cidToString(commitCid(100 + w)), `racer ${w}`],
          ])
        } finally {
          await reader.close()
        }
      } finally {
        for (const s of stores) await s.close()
      }
    })

    it('16 writers that retry after losing: every update lands once, the log is one unbroken chain', { timeout: 120_000 }, async () => {
      const url = freshUrl('retry')
      const first = await initS3Store(url, server.options)
      const stores: S3Store[] = [first, ...(await Promise.all(Array.from({ length: 15 }, () => openS3Store(url, server.options))))]
      let conflicts = 0
      try {
        await Promise.all(
          stores.map(async (s, i) => {
            const refs = new Refs(s.refs)
            for (;;) {
              const seen = (await refs.get('main')) ?? null
              try {
                await refs.update('main', { next: commitCid(1000 + i), expect: seen, who: WHO, message: `writer ${i}` })
                return
              } catch (e) {
                if ((e as { code?: string }).code !== 'ERR_CONFLICT') throw e
                conflicts++
              }
            }
          }),
        )
        const log = await collect(stores[0]!.refs.log('main'))
        expect(log).toHaveLength(16)
        expect(log.map((r) => r.message).sort()).toEqual(Array.from({ length: 16 }, (_, i) => `writer ${i}`).sort())
        expect(log[0]!.old).toBeNull()
        for (let i = 1; i < log.length; i++) expect(log[i]!.old).toBe(log[i - 1]!.new)
        expect(await stores[0]!.refs.get('main')).toBe(log[15]!.new)
        // They did race (otherwise this test proves nothing about racing).
        expect(conflicts).toBeGreaterThan(0)
      } finally {
        for (const s of stores) await s.close()
      }
    })
  })

  describe('S3 store: verified pack reads', () => {
    /** Rewrite the (only) pack index of the store at `url` with `edit` applied to its sections. */
    async function lieInIndex(url: string, edit: (sections: ReturnType<typeof decodePackIndex>) => void): Promise<void> {
      const raw = await S3Bucket.connect(parseS3Url(url), server.options)
      try {
        const keys: string[] = []
        for await (const page of raw.list('packs/')) keys.push(...page.keys.filter((k) => k.endsWith('.idx')))
        expect(keys).toHaveLength(1)
        const sections = decodePackIndex(keys[0]!, (await raw.get(keys[0]!))!)
        edit(sections)
        await raw.put(keys[0]!, encodePackIndex(sections))
      } finally {
        raw.close()
      }
    }

    it('a pack whose index points a CID at another block is ERR_CORRUPT naming the CID; its neighbours still read', { timeout: 60_000 }, async () => {
      const url = freshUrl('lying-index')
      const a = rawBlock(seededBytes(1, 3000))
      const b = encodeNode({ type: 'task', i: 2 })
      const c = rawBlock(seededBytes(3, 500))
      const store = await initS3Store(url, server.options)
      await store.blocks.putMany([a, b, c])
      await store.close()
      // Swap where the index says a and b are: each entry now names the other's section.
      await lieInIndex(url, (sections) => {
        const ia = sections.findIndex((s) => s.cid.equals(a.cid))
        const ib = sections.findIndex((s) => s.cid.equals(b.cid))
        const { offset, length } = sections[ia]!
        sections[ia] = { ...sections[ia]!, offset: sections[ib]!.offset, length: sections[ib]!.length }
        sections[ib] = { ...sections[ib]!, offset, length }
      })
      const reopened = await openS3Store(url, server.options)
      try {
        for (const read of [() => reopened.blocks.get(a.cid), () => reopened.blocks.getMany([c.cid, b.cid])]) {
          const err = await rejectionOf(read())
          expect(err).toBeInstanceOf(CorruptBlockError)
          expect(err.code).toBe('ERR_CORRUPT')
          expect([cidToString(a.cid), cidToString(b.cid)]).toContain(err.data?.cid)
          expect(err.message).toContain(err.data?.cid as string)
          expect(err.message).toContain('packs/')
        }
        expect(fingerprint(await reopened.blocks.get(c.cid))).toBe(fingerprint(c.bytes))
      } finally {
        await reopened.close()
      }
    })

    it('an index that claims more bytes than the pack holds is ERR_CORRUPT naming the CID', { timeout: 60_000 }, async () => {
      const url = freshUrl('short-pack')
      const a = rawBlock(seededBytes(4, 2000))
      const store = await initS3Store(url, server.options)
      await store.blocks.put(a)
      await store.close()
      await lieInIndex(url, (sections) => {
        sections[0] = { ...sections[0]!, length: sections[0]!.length + 100_000 }
      })
      const reopened = await openS3Store(url, server.options)
      try {
        const err = await rejectionOf(reopened.blocks.get(a.cid))
        expect(err.code).toBe('ERR_CORRUPT')
        expect(err.data?.cid).toBe(cidToString(a.cid))
      } finally {
        await reopened.close()
      }
    })

    it('blocks read back through a fresh client verify against their CIDs, across several packs', { timeout: 60_000 }, async () => {
      const url = freshUrl('packs')
      const blocks = Array.from({ length: 40 }, (_, i) => (i % 2 ? rawBlock(seededBytes(100 + i, 20_000)) : encodeNode({ i, name: `node-${i}` })))
      const store = await initS3Store(url, { ...server.options, packTarget: 100_000 })
      for (let i = 0; i < blocks.length; i += 7) await store.blocks.putMany(blocks.slice(i, i + 7))
      await store.close()
      expect(store.blocks.packsWritten).toBeGreaterThan(2)
      const reopened = await openS3Store(url, server.options)
      try {
        expect(await reopened.blocks.load()).toBe(store.blocks.packsWritten)
        const got = await reopened.blocks.getMany(blocks.map((b) => b.cid).reverse())
        got.reverse().forEach((bytes, i) => expect(() => decodeBlock(blocks[i]!.cid, bytes!)).not.toThrow())
        expect(got.map(fingerprint)).toEqual(blocks.map((b) => fingerprint(b.bytes)))
      } finally {
        await reopened.close()
      }
    })
  })

  describe('S3 store: errors name the bucket and the operation', () => {
    it('a missing bucket is ERR_NOT_FOUND naming it, for open and for init', { timeout: 60_000 }, async () => {
      const missing = `pedigree-missing-${process.pid}-${Date.now().toString(36)}`
      const opened = await rejectionOf(openS3Store(`s3://${missing}/lab`, server.options))
      expect(opened.code).toBe('ERR_NOT_FOUND')
      expect(opened.message).toContain(missing)
      expect(opened.data).toMatchObject({ what: 'S3 bucket', bucket: missing, operation: 'GetObject' })
      const created = await rejectionOf(initS3Store(`s3://${missing}/lab`, server.options))
      expect(created.code).toBe('ERR_NOT_FOUND')
      expect(created.data).toMatchObject({ bucket: missing, operation: 'PutObject' })
    })

    it('a wrong secret key is ERR_FORBIDDEN naming the bucket and the operation; nothing is written', { timeout: 60_000 }, async () => {
      const url = freshUrl('denied')
      const wrong = { ...server.options, credentials: { accessKeyId: server.options.credentials!.accessKeyId, secretAccessKey: 'not-the-secret' } }
      const err = await rejectionOf(initS3Store(url, wrong))
      expect(err.code).toBe('ERR_FORBIDDEN')
      expect(err.message).toContain(bucket)
      expect(err.data).toMatchObject({ bucket, operation: 'PutObject' })
      // The prefix is still not a store: the refused init left nothing.
      expect((await rejectionOf(openS3Store(url, server.options))).code).toBe('ERR_NOT_FOUND')
      const good = await initS3Store(url, server.options)
      await good.close()
      const read = await rejectionOf(openS3Store(url, wrong))
      expect(read.code).toBe('ERR_FORBIDDEN')
      expect(read.data).toMatchObject({ bucket, operation: 'GetObject' })
    })

    it('an endpoint that refuses connections is ERR_UNREACHABLE naming it', { timeout: 60_000 }, async () => {
      const endpoint = `http://127.0.0.1:${await closedPort()}`
      const err = await rejectionOf(openS3Store(`s3://${bucket}/x`, { ...server.options, endpoint, maxAttempts: 2 }))
      expect(err.code).toBe('ERR_UNREACHABLE')
      expect(err.message).toContain(endpoint)
      expect(err.data).toMatchObject({ bucket, endpoint })
    })

    it('an endpoint that accepts connections and then says nothing is ERR_UNREACHABLE once the idle timeout passes', { timeout: 60_000 }, async () => {
      const sockets = new Set<import('node:net').Socket>()
      const silent = createServer((s) => {
        sockets.add(s)
        s.on('error', () => {})
      })
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
      const endpoint = `http://127.0.0.1:${(silent.address() as { port: number }).port}`
      try {
        const err = await rejectionOf(openS3Store(`s3://${bucket}/x`, { ...server.options, endpoint, maxAttempts: 1, idleTimeoutMs: 300 }))
        expect(err.code).toBe('ERR_UNREACHABLE')
        expect(err.message).toContain(endpoint)
      } finally {
        for (const s of sockets) s.destroy()
        await new Promise((resolve) => silent.close(resolve))
      }
    })

    it('a prefix that holds no store is ERR_NOT_FOUND; a second init of a store is ERR_EXISTS and changes nothing', { timeout: 60_000 }, async () => {
      const url = freshUrl('twice')
      const none = await rejectionOf(Repository.open(url, { s3: server.options }))
      expect(none.code).toBe('ERR_NOT_FOUND')
      expect(none.message).toContain('pedigree init --store')
      const repo = await Repository.init(url, { s3: server.options })
      const c = await repo.commit({ ref: 'main', author: WHO, message: 'one', edits: [{ type: 'record', path: 'a.json', value: { v: 1 } }] })
      await repo.close()
      expect((await rejectionOf(Repository.init(url, { s3: server.options }))).code).toBe('ERR_EXISTS')
      const again = await Repository.open(url, { s3: server.options })
      try {
        expect((await again.refs.get('main'))?.equals(c.cid)).toBe(true)
        expect((await again.reflog('main')).map((e) => e.message)).toHaveLength(1)
        expect((await again.fsck()).ok).toBe(true)
      } finally {
        await again.close()
      }
    })

    it('rejects a malformed S3 URL with ERR_INVALID_INPUT before any request', async () => {
      for (const bad of ['s3://', 's3://Upper_Case/x', 's3://b/../x', 's3://ab/x']) {
        expect((await rejectionOf(openS3Store(bad, server.options))).code).toBe('ERR_INVALID_INPUT')
      }
    })
  })
}
