import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { readFile } from '../../src/model/file.js'
import { isIndexed, linksTo } from '../../src/repo/link-index.js'
import type { Repository } from '../../src/repo/repository.js'
import { clone } from '../../src/sync/clone.js'
import { fetch } from '../../src/sync/fetch.js'
import { openHttpTransport } from '../../src/sync/http-transport.js'
import { jsonOf } from '../../src/sync/json.js'
import { pull } from '../../src/sync/pull.js'
import { push } from '../../src/sync/push.js'
import { addRemote } from '../../src/sync/remote.js'
import { pseudoRandom } from '../helpers/random.js'
import { bytesOf, commitAt, record } from '../repo/fixture.js'
import { Servers } from '../server/helpers.js'
import { HookedTransport, Stores, WHO, barrier, refsOf, rejectionOf } from './helpers.js'

/*
 * Push, fetch, pull and clone against a real `pedigree serve` (in this process, on an
 * ephemeral 127.0.0.1 port), through the remote's http:// URL: the same behaviours the path
 * remote has, over HTTP.
 */

let s: Stores
let servers: Servers
beforeEach(async () => {
  s = await Stores.make()
  servers = new Servers()
})
afterEach(async () => {
  await servers.closeAll()
  await s.cleanup()
})

/** A store like a facility's: records, a chunked file, a branch and an annotated tag. */
async function facility(repo: Repository): Promise<{ weights: Uint8Array }> {
  const weights = pseudoRandom(42, 3 * 1024 * 1024 + 17)
  await commitAt(repo, 'main', 1, [record('runs/1.json', { loss: 0.5 }), record('config.json', { lr: 0.1 })])
  const model = await commitAt(repo, 'main', 2, [{ type: 'bytes', path: 'model/weights.bin', bytes: weights }])
  await commitAt(repo, 'main', 3, [record('runs/2.json', { loss: 0.3, model: model.cid })])
  await commitAt(repo, 'models/braggnn', 4, [record('eval.json', { acc: 0.9 })])
  await repo.tag('v1', 'main~1', { tagger: WHO, message: 'first model', time: 10 })
  return { weights }
}

describe('push over HTTP', () => {
  it('sends everything to an empty remote, then nothing when run again', async () => {
    const local = await s.init('a')
    const remote = await s.init('b')
    const server = await servers.start(remote, { allowAnonymousWrite: true })
    const { weights } = await facility(local)
    await addRemote(local, 'origin', server.url)

    const first = await push(local, { who: WHO, refs: ['main', 'models/braggnn', 'tags/v1'] })
    expect(first.url).toBe(server.url)
    expect(first.refs.map((r) => r.status)).toEqual(['created', 'created', 'created'])
    expect(first.blocks).toBeGreaterThan(10)
    expect(first.bytes).toBeGreaterThan(weights.length)
    expect(await refsOf(remote)).toEqual({
      main: (await local.refs.get('main'))!.toString(),
      'models/braggnn': (await local.refs.get('models/braggnn'))!.toString(),
      'tags/v1': (await local.refs.get('tags/v1'))!.toString(),
    })
    const check = await remote.fsck()
    expect(check.ok).toBe(true)
    expect(check.unindexed).toBe(0)
    // The remote's reflog says who pushed, and that it came over HTTP without a token.
    const entry = (await remote.reflog('main'))[0]!
    expect(entry.who).toEqual(WHO)
    expect(entry.message).toContain('over HTTP, no token')

    // A no-op push: one round trip (the refs), nothing sent.
    const again = await push(local, { who: WHO, refs: ['main', 'models/braggnn', 'tags/v1'] })
    expect(again).toMatchObject({ blocks: 0, bytes: 0, negotiationRounds: 0, roundTrips: 1 })
    expect(again.refs.map((r) => r.status)).toEqual(['up-to-date', 'up-to-date', 'up-to-date'])
  })

  it('after one record changes in a 5k-record tree, sends O(depth) blocks in O(depth) round trips', async () => {
    const local = await s.init('a')
    const remote = await s.init('b')
    const server = await servers.start(remote, { allowAnonymousWrite: true })
    await commitAt(local, 'main', 1, Array.from({ length: 5000 }, (_, i) => record(`runs/${String(i).padStart(5, '0')}.json`, { run: i, loss: 1 / (i + 1) })))
    await addRemote(local, 'origin', server.url)
    expect((await push(local, { who: WHO })).blocks).toBeGreaterThan(5000)

    const c2 = await commitAt(local, 'main', 2, [record('runs/01234.json', { run: 1234, loss: 0 })])
    const depth = (await local.trees.node(c2.commit.tree)).level + 1
    const r = await push(local, { who: WHO })
    expect(r.blocks).toBe(depth + 2)
    expect(r.bytes).toBeLessThan(64 * 1024)
    // The commit is asked about with its tree, then one round per tree level below the root, then the record.
    expect(r.negotiationRounds).toBe(depth + 1)
    expect(r.roundTrips).toBe(r.negotiationRounds + 3)
    expect(r.roundTrips).toBeLessThanOrEqual(8)
    expect((await remote.refs.get('main'))?.equals(c2.cid)).toBe(true)
  })

  it('refuses a push that is not a fast-forward unless forced, with the same error as a path remote', async () => {
    const hub = await s.init('hub')
    const server = await servers.start(hub, { allowAnonymousWrite: true })
    const a = await s.init('a')
    const b = await s.init('b')
    await commitAt(a, 'main', 1, [record('x.json', { v: 1 })])
    await addRemote(a, 'origin', server.url)
    await addRemote(b, 'origin', server.url)
    await push(a, { who: WHO })
    expect((await pull(b, { who: WHO })).status).toBe('created')
    const theirs = await commitAt(b, 'main', 2, [record('x.json', { v: 2, by: 'b' })])
    await push(b, { who: WHO })
    const ours = await commitAt(a, 'main', 3, [record('x.json', { v: 2, by: 'a' })])

    const unknown = await rejectionOf(push(a, { who: WHO }))
    expect(unknown.code).toBe('ERR_REFUSED')
    expect(unknown.data?.reason).toBe('fetch-first')
    // Diverged: pull says so and moves nothing.
    const diverged = await rejectionOf(pull(a, { who: WHO }))
    expect(diverged.code).toBe('ERR_REFUSED')
    expect((await a.refs.get('main'))?.equals(ours.cid)).toBe(true)
    const nonFf = await rejectionOf(push(a, { who: WHO }))
    expect(nonFf.data?.reason).toBe('non-fast-forward')
    expect((await hub.refs.get('main'))?.equals(theirs.cid)).toBe(true)

    const forced = await push(a, { who: WHO, force: true })
    expect(jsonOf(forced.refs[0])).toEqual({ ref: 'main', status: 'forced', old: theirs.cid.toString(), new: ours.cid.toString() })
    expect((await hub.refs.get('main'))?.equals(ours.cid)).toBe(true)
    // Nothing is lost: their commit stays in the hub's reflog.
    expect((await hub.reflog('main'))[1]!.new?.equals(theirs.cid)).toBe(true)
  })

  it('rejects a stale push (the remote moved after it was read): ERR_CONFLICT, remote history intact', async () => {
    const remote = await s.init('r')
    const server = await servers.start(remote, { allowAnonymousWrite: true })
    const base = await commitAt(remote, 'main', 1, [record('x.json', { v: 1 })])
    const a = await s.init('a')
    await addRemote(a, 'origin', server.url)
    await pull(a, { who: WHO })
    const ours = await commitAt(a, 'main', 2, [record('x.json', { v: 2 })])
    let other
    const t = new HookedTransport(await openHttpTransport(server.url), {
      afterListRefs: async () => {
        other = await commitAt(remote, 'main', 3, [record('y.json', { v: 3 })])
      },
    })
    const err = await rejectionOf(push(a, { who: WHO, transport: t }))
    expect(err.code).toBe('ERR_CONFLICT')
    expect(err.message).toContain("ref 'main' changed")
    expect(err.message).toContain('fetch first (pedigree pull origin main), then push again')
    expect(err.data).toEqual({ ref: 'main', expected: base.cid.toString(), actual: other!.cid.toString(), reason: 'fetch-first' })
    expect((await remote.refs.get('main'))?.equals(other!.cid)).toBe(true)
    expect((await remote.readCommit(other!.cid)).parents[0]?.equals(base.cid)).toBe(true)
    expect((await a.refs.get('main'))?.equals(ours.cid)).toBe(true)
    expect((await remote.fsck()).ok).toBe(true)
  })

  it('lets exactly one of two racing pushers win; the loser gets a conflict', async () => {
    const remote = await s.init('r')
    const server = await servers.start(remote, { allowAnonymousWrite: true })
    await commitAt(remote, 'main', 1, [record('x.json', { v: 1 })])
    const pushers = [await s.init('a'), await s.init('b')]
    const commits = []
    for (const [i, p] of pushers.entries()) {
      await addRemote(p, 'origin', server.url)
      await pull(p, { who: WHO })
      commits.push(await commitAt(p, 'main', 2 + i, [record('x.json', { v: 2, by: i })]))
    }
    const atCas = barrier(2)
    const results = await Promise.allSettled(
      pushers.map(async (p) => push(p, { who: WHO, transport: new HookedTransport(await openHttpTransport(server.url), { beforeCompareAndSwap: atCas }) })),
    )
    const won = results.filter((r) => r.status === 'fulfilled')
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    expect(won).toHaveLength(1)
    expect(lost).toHaveLength(1)
    expect(lost[0]!.reason.code).toBe('ERR_CONFLICT')
    const winner = results[0]!.status === 'fulfilled' ? commits[0]! : commits[1]!
    expect((await remote.refs.get('main'))?.equals(winner.cid)).toBe(true)
  })

  it('resumes an interrupted push, sending only what did not arrive', async () => {
    const a = await s.init('a')
    await commitAt(a, 'main', 1, Array.from({ length: 300 }, (_, i) => record(`r/${i}.json`, { i })))
    await commitAt(a, 'main', 2, [{ type: 'bytes', path: 'big.bin', bytes: pseudoRandom(7, 3_000_000) }])
    const measure = await s.initClosed('m')
    await addRemote(a, 'm', measure)
    const total = (await push(a, { who: WHO, remote: 'm' })).blocks
    const remote = await s.init('r')
    const server = await servers.start(remote, { allowAnonymousWrite: true })
    await addRemote(a, 'origin', server.url)

    const cut = 25
    const err = await rejectionOf(push(a, { who: WHO, transport: new HookedTransport(await openHttpTransport(server.url), { cutAfter: cut }) }))
    // The sender's own failure is reported, not the aborted request it caused.
    expect(err.message).toContain('connection reset')
    expect(await remote.refs.get('main')).toBeUndefined()

    // The CAR ended cleanly after the last block read: the server kept those 25.
    const again = await push(a, { who: WHO })
    expect(again.blocks).toBe(total - cut)
    expect((await remote.refs.get('main'))?.equals((await a.refs.get('main'))!)).toBe(true)
    expect((await remote.fsck()).ok).toBe(true)
  })
})

describe('fetch, pull and clone over HTTP', () => {
  it('clone gives identical CIDs and byte-exact files; site B commits and pushes back; site A pulls', async () => {
    const siteA = await s.init('a')
    const { weights } = await facility(siteA)
    const server = await servers.start(siteA, { allowAnonymousWrite: true })

    const target = join(s.dir, 'b', '.pedigree')
    const r = await clone(server.url, target, { who: WHO })
    expect(r.url).toBe(server.url)
    expect(r.blocks).toBeGreaterThan(10)
    const theirs = await refsOf(siteA)
    await s.with('b', async (siteB) => {
      const ours = await refsOf(siteB)
      for (const [name, cid] of Object.entries(theirs)) {
        expect(ours[name]).toBe(cid)
        expect(ours[`remotes/origin/${name}`]).toBe(cid)
      }
      const entry = await siteB.resolveEntry('main:model/weights.bin')
      expect(Buffer.compare(await bytesOf(readFile(siteB.blocks, entry.entry.cid)), Buffer.from(weights))).toBe(0)
      expect((await siteB.fsck()).ok).toBe(true)
      expect((await pull(siteB, { who: WHO })).status).toBe('up-to-date')

      // Site B works and pushes back.
      const next = await commitAt(siteB, 'main', 9, [record('runs/3.json', { loss: 0.2, site: 'b' })])
      const pushed = await push(siteB, { who: WHO })
      expect(pushed.refs[0]).toMatchObject({ status: 'fast-forward' })
      expect((await siteA.refs.get('main'))?.equals(next.cid)).toBe(true)
      expect((await push(siteB, { who: WHO })).blocks).toBe(0)
    })
    // And a third store fetches what site A now has, over HTTP.
    const c = await s.init('c')
    await addRemote(c, 'origin', server.url)
    const f = await fetch(c, { who: WHO, refs: ['main'] })
    expect(f.refs[0]).toMatchObject({ ref: 'main', status: 'new' })
    expect((await c.refs.get('remotes/origin/main'))?.equals((await siteA.refs.get('main'))!)).toBe(true)
    expect((await fetch(c, { who: WHO, refs: ['main'] })).blocks).toBe(0)
  })

  it('a fetch of a ref the server does not have fails naming it', async () => {
    const remote = await s.init('r')
    await commitAt(remote, 'main', 1, [record('x.json', { v: 1 })])
    const server = await servers.start(remote)
    const local = await s.init('l')
    await addRemote(local, 'origin', server.url)
    const err = await rejectionOf(fetch(local, { who: WHO, refs: ['nope'] }))
    expect(err.code).toBe('ERR_NOT_FOUND')
    expect(err.message).toContain(server.url)
    expect(await refsOf(local)).toEqual({})
  })
})

describe('the receiving side over HTTP', () => {
  it('indexes pushed commits for lineage after answering, and before the server closes', async () => {
    const local = await s.init('a')
    const remote = await s.init('b')
    const server = await servers.start(remote, { allowAnonymousWrite: true })
    const scan = await commitAt(local, 'main', 1, [record('raw/scan.json', { beamline: 7 })])
    const scanCid = (await local.resolveEntry('main:raw/scan.json')).cid
    const head = await commitAt(local, 'main', 2, [record('tasks/t1.json', { used: scanCid, status: 'done' })])
    await addRemote(local, 'origin', server.url)
    await push(local, { who: WHO, refs: ['main'] })
    await server.close()
    // Closed: the queue of deferred indexing has run, so the index holds both commits and the link.
    expect(await isIndexed(remote, scan.cid)).toBe(true)
    expect(await isIndexed(remote, head.cid)).toBe(true)
    const sources: string[] = []
    for await (const l of linksTo(remote, scanCid)) sources.push(`${l.field}`)
    expect(sources).toEqual(['used'])
  })

  it('moves no ref over a DAG it does not have whole; the error names the missing blocks as a path remote does', async () => {
    const a = await s.init('a')
    const c = await commitAt(a, 'main', 1, [record('x.json', { v: 1 }), record('y.json', { v: 2 })])
    const remote = await s.init('r')
    const server = await servers.start(remote, { allowAnonymousWrite: true })
    const t = await openHttpTransport(server.url)
    // Only the commit arrives.
    expect(await t.putBlocks((async function* () {
      yield { cid: c.cid, bytes: await a.blocks.get(c.cid) }
    })())).toEqual({ blocks: 1, bytes: (await a.blocks.get(c.cid)).length })
    const err = await rejectionOf(t.compareAndSwapRef({ name: 'main', expected: null, next: c.cid, who: WHO, message: 'x' }))
    expect(err.code).toBe('ERR_INCOMPLETE')
    expect(err.data?.cid).toBe(c.commit.tree.toString())
    expect(err.data?.missing).toEqual([{ cid: c.commit.tree.toString(), as: 'tree' }])
    expect(await remote.refs.get('main')).toBeUndefined()
    // push repairs such holes from that error (it sends what the server says is missing).
    await addRemote(a, 'origin', server.url)
    const r = await push(a, { who: WHO })
    expect(r.refs[0]!.status).toBe('created')
    expect((await remote.fsck()).ok).toBe(true)
  })

  it('refuses a block whose bytes do not match its CID, storing nothing of it', async () => {
    const a = await s.init('a')
    const c = await commitAt(a, 'main', 1, [record('x.json', { v: 1 })])
    const remote = await s.init('r')
    const server = await servers.start(remote, { allowAnonymousWrite: true })
    const t = await openHttpTransport(server.url)
    const bytes = new Uint8Array(await a.blocks.get(c.cid))
    bytes[bytes.length - 1] ^= 1
    const err = await rejectionOf(t.putBlocks((async function* () {
      yield { cid: c.cid, bytes }
    })()))
    expect(err.code).toBe('ERR_CORRUPT')
    expect(err.data?.cid).toBe(c.cid.toString())
    expect(await remote.blocks.has(c.cid)).toBe(false)
  })
})
