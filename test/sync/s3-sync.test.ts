import { join } from 'node:path'
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cidToString } from '../../src/codec/cid.js'
import { readFile } from '../../src/model/file.js'
import { Repository } from '../../src/repo/repository.js'
import { S3Bucket } from '../../src/store/s3/bucket.js'
import { parseS3Url } from '../../src/store/s3/url.js'
import { clone } from '../../src/sync/clone.js'
import { fetch } from '../../src/sync/fetch.js'
import { pull } from '../../src/sync/pull.js'
import { push } from '../../src/sync/push.js'
import { addRemote } from '../../src/sync/remote.js'
import { pseudoRandom } from '../helpers/random.js'
import { bytesOf, commitAt, record } from '../repo/fixture.js'
import { cutProxy } from '../support/cut-proxy.js'
import { useS3 } from '../support/s3.js'
import { Stores, WHO, refsOf, rejectionOf } from './helpers.js'

const s3 = await useS3()
const realList = S3Bucket.prototype.list

if (!s3.ok) {
  describe('s3:// remotes', () => {
    it.skip(`skipped: ${s3.reason}`, () => {})
  })
} else {
  const server = s3.server
  afterAll(() => server.stop())
  const bucket = await server.bucket('sync')
  const open = { s3: server.options }
  let n = 0
  let s: Stores
  beforeEach(async () => {
    s = await Stores.make()
  })
  afterEach(async () => {
    await s.cleanup()
  })

  /** An empty store in the bucket, closed: a remote that push, fetch and clone open themselves. */
  async function s3Remote(label: string): Promise<string> {
    const url = `s3://${bucket}/${label}-${n++}`
    await (await Repository.init(url, open)).close()
    return url
  }

  async function withS3<T>(url: string, fn: (repo: Repository) => Promise<T>): Promise<T> {
    const repo = await Repository.open(url, open)
    try {
      return await fn(repo)
    } finally {
      await repo.close()
    }
  }

  describe('s3:// remotes (Ceph RGW)', () => {
    it('push, clone, then push and pull again: same CIDs, file bytes identical, a fetch finds nothing new', { timeout: 120_000 }, async () => {
      const url = await s3Remote('round-trip')
      const local = await s.init('local')
      const weights = pseudoRandom(7, 2 * 1024 * 1024 + 333)
      await commitAt(local, 'main', 1, [record('runs/1.json', { loss: 0.5 }), record('config.json', { lr: 0.1 })])
      const model = await commitAt(local, 'main', 2, [{ type: 'bytes', path: 'model/weights.bin', bytes: weights }])
      await commitAt(local, 'main', 3, [record('runs/2.json', { loss: 0.3, model: model.cid })])
      await commitAt(local, 'models/braggnn', 4, [record('eval.json', { acc: 0.9 })])
      await local.tag('v1', 'main~1', { tagger: WHO, message: 'first model', time: 10 })
      await addRemote(local, 'origin', url)

      const pushed = await push(local, { who: WHO, refs: ['main', 'models/braggnn', 'tags/v1'], open })
      expect(pushed.refs.map((r) => r.status)).toEqual(['created', 'created', 'created'])
      expect(pushed.blocks).toBeGreaterThan(10)
      const localRefs = await refsOf(local)
      const mine = Object.fromEntries(Object.entries(localRefs).filter(([k]) => !k.startsWith('remotes/')))
      await withS3(url, async (remote) => {
        expect(await refsOf(remote)).toEqual(mine)
        expect((await remote.reflog('main'))[0]!.who).toEqual(WHO)
        const check = await remote.fsck()
        expect(check.ok).toBe(true)
      })

      const copy = await clone(url, s.root('copy'), { who: WHO, open })
      expect(copy.refs.map((r) => r.ref).sort()).toEqual(['main', 'models/braggnn', 'tags/v1'])
      await s.with('copy', async (c) => {
        const theirs = Object.fromEntries(Object.entries(await refsOf(c)).filter(([k]) => !k.startsWith('remotes/')))
        expect(theirs).toEqual(mine)
        const entry = await c.resolveEntry('main:model/weights.bin')
        expect(Buffer.compare(await bytesOf(readFile(c.blocks, entry.entry.cid)), Buffer.from(weights))).toBe(0)
        expect((await c.fsck()).ok).toBe(true)
      })

      // A second round: only what is new travels, and the clone pulls it.
      const next = await commitAt(local, 'main', 5, [record('runs/3.json', { loss: 0.2 })])
      const second = await push(local, { who: WHO, open })
      expect(second.refs[0]!.status).toBe('fast-forward')
      expect(second.blocks).toBeLessThan(10)
      await s.with('copy', async (c) => {
        const pulled = await pull(c, { who: WHO, open })
        expect(pulled.status).toBe('fast-forward')
        expect(cidToString(pulled.new)).toBe(cidToString(next.cid))
        expect((await fetch(c, { who: WHO, open })).blocks).toBe(0)
      })
    })

    it('a push reads the remote\'s refs once: the ref update checks completeness from that listing, not a second one', { timeout: 120_000 }, async () => {
      const url = await s3Remote('reads')
      const local = await s.init('local')
      await commitAt(local, 'main', 1, [record('x.json', { v: 1 })])
      await addRemote(local, 'origin', url)
      await push(local, { who: WHO, open })
      for (const other of ['runs/a', 'runs/b']) await local.refs.update(other, { next: (await local.refs.get('main'))!, who: WHO, message: 'branch' })
      await push(local, { refs: ['runs/a', 'runs/b'], who: WHO, open })
      const next = await commitAt(local, 'main', 2, [record('x.json', { v: 2 })])
      const listed: string[] = []
      const list = vi.spyOn(S3Bucket.prototype, 'list').mockImplementation(function (this: S3Bucket, prefix, options) {
        if (prefix.startsWith('refs/')) listed.push(prefix)
        return realList.call(this, prefix, options)
      })
      try {
        const pushed = await push(local, { who: WHO, open })
        expect(pushed.refs.map((r) => r.status)).toEqual(['fast-forward'])
      } finally {
        list.mockRestore()
      }
      // The pusher's listing (the names, then each of the 3 refs' log), then the receiver's read
      // of 'main' before its compare-and-swap: 5. Listing every ref again for the completeness
      // check made it 9.
      expect(listed).toHaveLength(5)
      await withS3(url, async (r) => {
        expect(cidToString((await r.refs.get('main'))!)).toBe(cidToString(next.cid))
        expect((await r.fsck()).ok).toBe(true)
      })
    })

    it('a push that lost the race to another pusher is refused and changes nothing', { timeout: 120_000 }, async () => {
      const url = await s3Remote('race')
      const a = await s.init('a')
      const b = await s.init('b')
      await commitAt(a, 'main', 1, [record('x.json', { v: 1 })])
      await addRemote(a, 'origin', url)
      await push(a, { who: WHO, open })
      await addRemote(b, 'origin', url)
      await pull(b, { who: WHO, open })
      const theirs = await commitAt(b, 'main', 2, [record('x.json', { v: 2, by: 'b' })])
      await push(b, { who: WHO, open })
      await commitAt(a, 'main', 3, [record('x.json', { v: 2, by: 'a' })])
      const err = await rejectionOf(push(a, { who: WHO, open }))
      expect(err.code).toBe('ERR_REFUSED')
      await withS3(url, async (r) => {
        expect(cidToString((await r.refs.get('main'))!)).toBe(cidToString(theirs.cid))
        expect(await r.reflog('main')).toHaveLength(2)
      })
    })

    it('a network cut in the middle of uploading packs: push fails ERR_UNREACHABLE, nothing becomes reachable, a retry completes', { timeout: 180_000 }, async () => {
      const url = await s3Remote('cut')
      const local = await s.init('local')
      const first = await commitAt(local, 'main', 1, [record('runs/1.json', { loss: 0.5 })])
      await addRemote(local, 'origin', url)
      await push(local, { who: WHO, open })
      const big = pseudoRandom(11, 3 * 1024 * 1024)
      const second = await commitAt(local, 'main', 2, [{ type: 'bytes', path: 'model/weights.bin', bytes: big }, record('runs/2.json', { loss: 0.1 })])

      // Small packs, so that some are complete before the cut and one is cut half-way.
      const proxy = await cutProxy(server.endpoint, { cutAfter: 1_500_000 })
      const through = { s3: { ...server.options, endpoint: proxy.endpoint, packTarget: 512 * 1024, maxAttempts: 2 } }
      try {
        const err = await rejectionOf(push(local, { who: WHO, open: through }))
        expect(proxy.cut).toBe(true)
        expect(err.code).toBe('ERR_UNREACHABLE')
        expect(err.message).toContain(proxy.endpoint)
      } finally {
        await proxy.close()
      }

      // The remote's ref and reflog are as before, and its store is consistent.
      await withS3(url, async (r) => {
        expect(cidToString((await r.refs.get('main'))!)).toBe(cidToString(first.cid))
        expect(await r.reflog('main')).toHaveLength(1)
        expect((await r.fsck()).ok).toBe(true)
      })
      // Some packs did arrive before the cut (what the retry need not send again).
      const raw = await S3Bucket.connect(parseS3Url(url), server.options)
      let indexes = 0
      for await (const page of raw.list('packs/')) indexes += page.keys.filter((k) => k.endsWith('.idx')).length
      raw.close()
      expect(indexes).toBeGreaterThan(1)

      const retry = await push(local, { who: WHO, open })
      expect(retry.refs[0]!.status).toBe('fast-forward')
      await withS3(url, async (r) => {
        expect(cidToString((await r.refs.get('main'))!)).toBe(cidToString(second.cid))
        const entry = await r.resolveEntry('main:model/weights.bin')
        expect(Buffer.compare(await bytesOf(readFile(r.blocks, entry.entry.cid)), Buffer.from(big))).toBe(0)
        expect((await r.fsck()).ok).toBe(true)
      })
    })

    it('a commit on an S3 store whose connection is cut while its packs upload: ERR_UNREACHABLE, the ref does not move', { timeout: 120_000 }, async () => {
      const url = await s3Remote('cut-commit')
      const first = await withS3(url, (repo) => commitAt(repo, 'main', 1, [record('runs/1.json', { loss: 0.5 })]))
      const proxy = await cutProxy(server.endpoint, { cutAfter: 600_000 })
      const repo = await Repository.open(url, { s3: { ...server.options, endpoint: proxy.endpoint, maxAttempts: 2 } })
      try {
        const big = pseudoRandom(12, 2 * 1024 * 1024)
        const err = await rejectionOf(commitAt(repo, 'main', 2, [{ type: 'bytes', path: 'model/weights.bin', bytes: big }]))
        expect(proxy.cut).toBe(true)
        expect(err.code).toBe('ERR_UNREACHABLE')
      } finally {
        await repo.close().catch(() => {})
        await proxy.close()
      }
      await withS3(url, async (r) => {
        expect(cidToString((await r.refs.get('main'))!)).toBe(cidToString(first.cid))
        expect(await r.reflog('main')).toHaveLength(1)
        expect((await r.fsck()).ok).toBe(true)
      })
    })

    it('a remote URL whose prefix holds no store is ERR_NOT_FOUND naming it; a missing bucket names the bucket', { timeout: 60_000 }, async () => {
      const local = await s.init('local')
      await commitAt(local, 'main', 1, [record('a.json', { v: 1 })])
      await addRemote(local, 'empty', `s3://${bucket}/nothing-here`)
      const err = await rejectionOf(push(local, { who: WHO, remote: 'empty', open }))
      expect(err.code).toBe('ERR_NOT_FOUND')
      expect(err.message).toContain(`s3://${bucket}/nothing-here`)
      await addRemote(local, 'gone', 's3://pedigree-no-such-bucket-here/x')
      const gone = await rejectionOf(fetch(local, { who: WHO, remote: 'gone', open }))
      expect(gone.code).toBe('ERR_NOT_FOUND')
      expect(gone.data).toMatchObject({ bucket: 'pedigree-no-such-bucket-here' })
      // A clone from nowhere leaves no folder behind.
      const target = join(s.dir, 'never')
      expect((await rejectionOf(clone(`s3://${bucket}/nothing-here`, target, { who: WHO, open }))).code).toBe('ERR_NOT_FOUND')
      const { existsSync } = await import('node:fs')
      expect(existsSync(target)).toBe(false)
    })
  })
}
