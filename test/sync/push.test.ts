import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { commitAt, record, text } from '../repo/fixture.js'
import { addRemote } from '../../src/sync/remote.js'
import { push } from '../../src/sync/push.js'
import { fetch } from '../../src/sync/fetch.js'
import { PathTransport } from '../../src/sync/path-transport.js'
import { pseudoRandom } from '../helpers/random.js'
import { jsonOf } from '../../src/sync/json.js'
import { HookedTransport, Stores, WHO, barrier, refsOf, rejectionOf } from './helpers.js'

let s: Stores
beforeEach(async () => {
  s = await Stores.make()
})
afterEach(async () => {
  await s.cleanup()
})

describe('push to a path remote', () => {
  it('sends everything to an empty remote, then nothing when run again', async () => {
    const local = await s.init('a')
    const remote = await s.initClosed('b')
    const c = await commitAt(local, 'main', 1, [record('runs/1.json', { loss: 0.5 }), text('notes.txt', 'hello')])
    await addRemote(local, 'origin', remote)

    const first = await push(local, { who: WHO })
    expect(jsonOf(first.refs)).toEqual([{ ref: 'main', old: null, new: c.cid.toString(), status: 'created' }])
    // commit, tree node, record, file
    expect(first.blocks).toBe(4)
    expect(first.bytes).toBeGreaterThan(0)
    expect((await refsOf(local))['remotes/origin/main']).toBe(c.cid.toString())

    const again = await push(local, { who: WHO })
    expect(again.blocks).toBe(0)
    expect(again.bytes).toBe(0)
    expect(again.negotiationRounds).toBe(0)
    expect(again.refs[0]!.status).toBe('up-to-date')

    await s.with('b', async (r) => {
      expect(await refsOf(r)).toEqual({ main: c.cid.toString() })
      const check = await r.fsck()
      expect(check.ok).toBe(true)
      expect(check.unindexed).toBe(0)
      // The remote's reflog says who pushed.
      expect((await r.reflog('main'))[0]!.who).toEqual(WHO)
    })
  })

  it('after one record changes in a 20k-record tree, sends O(depth) blocks in O(depth) round trips', { timeout: 120_000 }, async () => {
    const local = await s.init('a')
    const remote = await s.initClosed('b')
    const edits = Array.from({ length: 20_000 }, (_, i) => record(`runs/${String(i).padStart(5, '0')}.json`, { run: i, loss: 1 / (i + 1) }))
    await commitAt(local, 'main', 1, edits)
    await addRemote(local, 'origin', remote)
    const full = await push(local, { who: WHO })
    expect(full.blocks).toBeGreaterThan(20_000)
    // A first push asks in batches that grow while everything is new: rounds grow with log(width).
    expect(full.negotiationRounds).toBeLessThan(16)

    const c2 = await commitAt(local, 'main', 2, [record('runs/12345.json', { run: 12345, loss: 0 })])
    const depth = (await local.trees.node(c2.commit.tree)).level + 1
    const r = await push(local, { who: WHO })
    // The commit, one node per tree level, the record.
    expect(r.blocks).toBeLessThanOrEqual(3 * depth + 2)
    expect(r.blocks).toBe(depth + 2)
    expect(r.negotiationRounds).toBeLessThanOrEqual(depth + 2)
    // listRefs + negotiation + putBlocks + compareAndSwapRef
    expect(r.roundTrips).toBe(r.negotiationRounds + 3)
    console.log(`20k-record tree (depth ${depth}), one record changed: ${r.blocks} blocks, ${r.bytes} bytes, ${r.negotiationRounds} negotiation rounds, ${r.roundTrips} round trips; first push ${full.blocks} blocks in ${full.negotiationRounds} rounds`)
    await s.with('b', async (rr) => expect((await rr.refs.get('main'))?.equals(c2.cid)).toBe(true))
  })

  it('refuses a push that is not a fast-forward unless forced', async () => {
    const a = await s.init('a')
    const remote = await s.initClosed('r')
    await commitAt(a, 'main', 1, [record('x.json', { v: 1 })])
    await addRemote(a, 'origin', remote)
    await push(a, { who: WHO })
    // Someone else pushes on top of it.
    const b = await s.init('b')
    await addRemote(b, 'origin', remote)
    await fetch(b, { who: WHO })
    await b.refs.update('main', { next: (await b.refs.get('remotes/origin/main'))!, expect: null, who: WHO, message: 'start' })
    const theirs = await commitAt(b, 'main', 2, [record('x.json', { v: 2, by: 'b' })])
    await push(b, { who: WHO })
    // Ours: a different commit on the same base.
    const ours = await commitAt(a, 'main', 3, [record('x.json', { v: 2, by: 'a' })])

    const unknown = await rejectionOf(push(a, { who: WHO }))
    expect(unknown.code).toBe('ERR_REFUSED')
    expect(unknown.data?.reason).toBe('fetch-first')
    expect(unknown.message).toMatch(/pull/)
    await fetch(a, { who: WHO })
    const nonFf = await rejectionOf(push(a, { who: WHO }))
    expect(nonFf.code).toBe('ERR_REFUSED')
    expect(nonFf.data?.reason).toBe('non-fast-forward')
    await s.with('r', async (r) => expect((await r.refs.get('main'))?.equals(theirs.cid)).toBe(true))

    const forced = await push(a, { who: WHO, force: true })
    expect(jsonOf(forced.refs[0])).toEqual({ ref: 'main', status: 'forced', old: theirs.cid.toString(), new: ours.cid.toString() })
    await s.with('r', async (r) => {
      expect((await r.refs.get('main'))?.equals(ours.cid)).toBe(true)
      // Nothing is lost: their commit stays in the reflog.
      expect((await r.reflog('main'))[1]!.new?.equals(theirs.cid)).toBe(true)
    })
  })

  it('lets exactly one of two racing pushers win; the loser gets a conflict and keeps its commit', async () => {
    const remote = await s.init('r')
    const base = await commitAt(remote, 'main', 1, [record('x.json', { v: 1 })])
    const pushers = [await s.init('a'), await s.init('b')]
    const atCas = barrier(2)
    const commits = []
    for (const [i, p] of pushers.entries()) {
      await addRemote(p, 'origin', s.root('r'))
      await fetch(p, { who: WHO, transport: PathTransport.over(remote) })
      await p.refs.update('main', { next: base.cid, expect: null, who: WHO, message: 'start' })
      commits.push(await commitAt(p, 'main', 2 + i, [record('x.json', { v: 2, by: i })]))
    }
    // Both read the remote's main, then both try to swap it at the same moment.
    const results = await Promise.allSettled(
      pushers.map((p) => push(p, { who: WHO, transport: new HookedTransport(PathTransport.over(remote), { beforeCompareAndSwap: atCas }) })),
    )
    const won = results.findIndex((r) => r.status === 'fulfilled')
    const lost = 1 - won
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    const err = (results[lost] as PromiseRejectedResult).reason as { code: string; data: Record<string, unknown> }
    expect(err.code).toBe('ERR_CONFLICT')
    expect(err.data.expected).toBe(base.cid.toString())
    expect((await remote.refs.get('main'))?.equals(commits[won]!.cid)).toBe(true)
    // The loser's commit is still its main, and still whole.
    expect((await pushers[lost]!.refs.get('main'))?.equals(commits[lost]!.cid)).toBe(true)
    expect((await pushers[lost]!.fsck()).ok).toBe(true)
    // The remote never pointed at the loser's commit.
    expect((await remote.reflog('main')).map((l) => l.new?.toString())).not.toContain(commits[lost]!.cid.toString())
  })

  it('rejects a stale push (the remote moved after it was read) and loses nothing', async () => {
    const remote = await s.init('r')
    const base = await commitAt(remote, 'main', 1, [record('x.json', { v: 1 })])
    const a = await s.init('a')
    await addRemote(a, 'origin', s.root('r'))
    await fetch(a, { who: WHO, transport: PathTransport.over(remote) })
    await a.refs.update('main', { next: base.cid, expect: null, who: WHO, message: 'start' })
    const ours = await commitAt(a, 'main', 2, [record('x.json', { v: 2 })])
    let other
    const t = new HookedTransport(PathTransport.over(remote), {
      afterListRefs: async () => {
        other = await commitAt(remote, 'main', 3, [record('y.json', { v: 3 })])
      },
    })
    const err = await rejectionOf(push(a, { who: WHO, transport: t }))
    expect(err.code).toBe('ERR_CONFLICT')
    expect(err.message).toContain("ref 'main' changed")
    expect((await remote.refs.get('main'))?.equals(other!.cid)).toBe(true)
    expect((await a.refs.get('main'))?.equals(ours.cid)).toBe(true)
    // The tracking ref still says what a successful push last left there.
    expect((await a.refs.get('remotes/origin/main'))?.equals(base.cid)).toBe(true)
  })

  it('resumes an interrupted push, sending only what did not arrive', async () => {
    const a = await s.init('a')
    await commitAt(a, 'main', 1, Array.from({ length: 300 }, (_, i) => record(`r/${i}.json`, { i })))
    await commitAt(a, 'main', 2, [{ type: 'bytes', path: 'big.bin', bytes: pseudoRandom(7, 3_000_000) }, record('r/7.json', { i: 7, again: true })])
    const measure = await s.initClosed('m')
    const remote = await s.init('r')
    await addRemote(a, 'm', measure)
    await addRemote(a, 'origin', s.root('r'))
    const total = (await push(a, { who: WHO, remote: 'm' })).blocks

    const cut = 25
    const err = await rejectionOf(push(a, { who: WHO, transport: new HookedTransport(PathTransport.over(remote), { cutAfter: cut }) }))
    expect(err.message).toContain('connection reset')
    expect(await remote.refs.get('main')).toBeUndefined()
    const again = await push(a, { who: WHO, transport: PathTransport.over(remote) })
    expect(again.blocks).toBe(total - cut)
    expect((await remote.refs.get('main'))?.equals((await a.refs.get('main'))!)).toBe(true)
    expect((await remote.fsck()).ok).toBe(true)
  })

  it('pushes tags, and moves one only with --force', async () => {
    const a = await s.init('a')
    const remote = await s.initClosed('r')
    const c1 = await commitAt(a, 'main', 1, [record('x.json', { v: 1 })])
    await a.tag('v1', 'main', { tagger: WHO, message: 'first', time: 5 })
    await addRemote(a, 'origin', remote)
    await push(a, { who: WHO, refs: ['main', 'tags/v1'] })
    const c2 = await commitAt(a, 'main', 2, [record('x.json', { v: 2 })])
    await a.tag('v1', 'main', { tagger: WHO, force: true })
    const err = await rejectionOf(push(a, { who: WHO, refs: ['tags/v1'] }))
    expect(err.code).toBe('ERR_REFUSED')
    await push(a, { who: WHO, refs: ['main', 'tags/v1'], force: true })
    await s.with('r', async (r) => {
      expect((await r.refs.get('tags/v1'))?.equals(c2.cid)).toBe(true)
      // Before: the annotated tag node (pointing at c1); nothing was lost.
      const before = (await r.reflog('tags/v1'))[1]!.new!
      expect(String(((await r.readNode(before)) as { target: unknown }).target)).toBe(c1.cid.toString())
      expect((await r.fsck()).ok).toBe(true)
    })
  })

  it('fails clearly on a remote path with no store, changing nothing', async () => {
    const a = await s.init('a')
    await commitAt(a, 'main', 1, [record('x.json', { v: 1 })])
    await addRemote(a, 'origin', `${s.dir}/nowhere`)
    const before = await refsOf(a)
    const err = await rejectionOf(push(a, { who: WHO }))
    expect(err.code).toBe('ERR_NOT_FOUND')
    expect(err.message).toContain(`${s.dir}/nowhere`)
    expect(await refsOf(a)).toEqual(before)
  })

  it('refuses to push to remotes/… or a ref that does not exist', async () => {
    const a = await s.init('a')
    await commitAt(a, 'main', 1, [record('x.json', { v: 1 })])
    await addRemote(a, 'origin', await s.initClosed('r'))
    await push(a, { who: WHO })
    expect((await rejectionOf(push(a, { who: WHO, refs: ['remotes/origin/main'] }))).code).toBe('ERR_REFUSED')
    expect((await rejectionOf(push(a, { who: WHO, refs: ['nope'] }))).code).toBe('ERR_NOT_FOUND')
    expect((await rejectionOf(push(a, { who: WHO, remote: 'elsewhere' }))).code).toBe('ERR_NOT_FOUND')
  })
})

describe('push names refs as revisions do', () => {
  it('a short tag name pushes the tag (v1 is tags/v1); a name that is neither still fails', async () => {
    const a = await s.init('a')
    const c = await commitAt(a, 'main', 1, [record('x.json', { v: 1 })])
    await a.tag('v1', 'main', { tagger: WHO, message: 'first', time: 5 })
    await addRemote(a, 'origin', await s.initClosed('r'))
    const r = await push(a, { who: WHO, refs: ['v1'] })
    expect(r.refs.map((p) => [p.ref, p.status])).toEqual([['tags/v1', 'created']])
    await s.with('r', async (remote) => {
      expect(Object.keys(await refsOf(remote))).toEqual(['tags/v1'])
      expect(String(((await remote.readNode((await remote.refs.get('tags/v1'))!)) as { target: unknown }).target)).toBe(c.cid.toString())
    })
    const err = await rejectionOf(push(a, { who: WHO, refs: ['v2'] }))
    expect(err.code).toBe('ERR_NOT_FOUND')
    expect(err.message).toContain('ref not found: v2')
  })
})

describe('the receiving side', () => {
  it('moves no ref over a DAG it does not have whole, naming the missing block', async () => {
    const a = await s.init('a')
    const c = await commitAt(a, 'main', 1, [record('x.json', { v: 1 }), record('y.json', { v: 2 })])
    const remote = await s.init('r')
    const t = PathTransport.over(remote)
    // Only the commit arrives.
    await t.putBlocks((async function* () {
      yield { cid: c.cid, bytes: await a.blocks.get(c.cid) }
    })())
    const err = await rejectionOf(t.compareAndSwapRef({ name: 'main', expected: null, next: c.cid, who: WHO, message: 'x' }))
    expect(err.code).toBe('ERR_INCOMPLETE')
    expect(err.data?.cid).toBe(c.commit.tree.toString())
    expect(await remote.refs.get('main')).toBeUndefined()
  })

  it('refuses a block whose bytes do not match its CID, storing nothing of it', async () => {
    const a = await s.init('a')
    const c = await commitAt(a, 'main', 1, [record('x.json', { v: 1 })])
    const remote = await s.init('r')
    const t = PathTransport.over(remote)
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
