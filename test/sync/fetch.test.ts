import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { RAW } from '../../src/codec/cid.js'
import { readFile } from '../../src/model/file.js'
import type { Repository } from '../../src/repo/repository.js'
import { clone } from '../../src/sync/clone.js'
import { fetch } from '../../src/sync/fetch.js'
import { PathTransport } from '../../src/sync/path-transport.js'
import { pull } from '../../src/sync/pull.js'
import { addRemote } from '../../src/sync/remote.js'
import { pseudoRandom } from '../helpers/random.js'
import { bytesOf, commitAt, record } from '../repo/fixture.js'
import { HookedTransport, Stores, WHO, refsOf, rejectionOf } from './helpers.js'

let s: Stores
beforeEach(async () => {
  s = await Stores.make()
})
afterEach(async () => {
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

describe('fetch and pull', () => {
  it('pull creates, then fast-forwards, the local ref; fetch records remotes/<remote>/…', async () => {
    const remote = await s.init('r')
    await facility(remote)
    const local = await s.init('l')
    await addRemote(local, 'origin', s.root('r'))
    const t = () => PathTransport.over(remote)

    const first = await pull(local, { who: WHO, transport: t() })
    expect(first.status).toBe('created')
    expect(first.new.equals((await remote.refs.get('main'))!)).toBe(true)
    expect(first.fetch.blocks).toBeGreaterThan(0)
    const refs = await refsOf(local)
    expect(refs['main']).toBe(refs['remotes/origin/main'])
    expect(refs['remotes/origin/main']).toBe((await remote.refs.get('main'))!.toString())

    const c4 = await commitAt(remote, 'main', 5, [record('runs/3.json', { loss: 0.2 })])
    const second = await pull(local, { who: WHO, transport: t() })
    expect(second.status).toBe('fast-forward')
    expect(second.new.equals(c4.cid)).toBe(true)
    // The commit, the tree nodes on the changed path, the record.
    expect(second.fetch.blocks).toBeLessThanOrEqual(6)
    expect((await local.refs.get('main'))?.equals(c4.cid)).toBe(true)

    expect((await pull(local, { who: WHO, transport: t() })).status).toBe('up-to-date')
    // Commits that arrived by sync are indexed for lineage.
    const check = await local.fsck()
    expect(check.ok).toBe(true)
    expect(check.unindexed).toBe(0)

    // Fetch with no refs named takes them all, tags too.
    const all = await fetch(local, { who: WHO, transport: t() })
    expect(all.refs.map((r) => r.tracking).sort()).toEqual(['remotes/origin/main', 'remotes/origin/models/braggnn', 'remotes/origin/tags/v1'])
    expect((await local.fsck()).ok).toBe(true)
  })

  it('refuses to pull over diverged history, leaving the local ref as it was', async () => {
    const remote = await s.init('r')
    const base = await commitAt(remote, 'main', 1, [record('x.json', { v: 1 })])
    const local = await s.init('l')
    await addRemote(local, 'origin', s.root('r'))
    await pull(local, { who: WHO, transport: PathTransport.over(remote) })
    const ours = await commitAt(local, 'main', 2, [record('x.json', { v: 2, by: 'local' })])
    const theirs = await commitAt(remote, 'main', 3, [record('x.json', { v: 2, by: 'remote' })])

    const err = await rejectionOf(pull(local, { who: WHO, transport: PathTransport.over(remote) }))
    expect(err.code).toBe('ERR_REFUSED')
    expect(err.data?.reason).toBe('diverged')
    expect(err.message).toContain('diverged')
    expect(err.message).toContain('pedigree ref set main remotes/origin/main')
    expect(err.message).toContain('--force')
    expect((await local.refs.get('main'))?.equals(ours.cid)).toBe(true)
    // Their commits arrived and are kept where they can be looked at.
    expect((await local.refs.get('remotes/origin/main'))?.equals(theirs.cid)).toBe(true)
    expect((await local.readCommit(theirs.cid)).parents[0]?.equals(base.cid)).toBe(true)

    // A local ref that is ahead is left alone.
    await local.refs.update('main', { next: theirs.cid, expect: ours.cid, who: WHO, message: 'take theirs' })
    const ahead = await commitAt(local, 'main', 4, [record('y.json', { v: 1 })])
    const r = await pull(local, { who: WHO, transport: PathTransport.over(remote) })
    expect(r.status).toBe('ahead')
    expect((await local.refs.get('main'))?.equals(ahead.cid)).toBe(true)
  })

  it('fails naming the CID when the remote serves a block whose bytes do not match it; no ref moves', async () => {
    const remote = await s.init('r')
    await facility(remote)
    const local = await s.init('l')
    await addRemote(local, 'origin', s.root('r'))
    const target = (await remote.resolveEntry('main:config.json')).entry.cid
    const t = new HookedTransport(PathTransport.over(remote), {
      serve: (b) => (b.cid.equals(target) ? { cid: b.cid, bytes: new TextEncoder().encode('forged') } : b),
    })
    const err = await rejectionOf(fetch(local, { who: WHO, transport: t }))
    expect(err.code).toBe('ERR_CORRUPT')
    expect(err.data?.cid).toBe(target.toString())
    expect(err.message).toContain(target.toString())
    expect(await refsOf(local)).toEqual({})
    expect(await local.blocks.has(target)).toBe(false)

    // A forged commit is caught the same way (in a store that does not have it yet).
    const other = await s.init('l2')
    await addRemote(other, 'origin', s.root('r'))
    const head = (await remote.refs.get('main'))!
    const forged = new HookedTransport(PathTransport.over(remote), {
      serve: (b) => (b.cid.equals(head) ? { cid: b.cid, bytes: b.bytes.slice(1) } : b),
    })
    const e2 = await rejectionOf(pull(other, { who: WHO, transport: forged }))
    expect(e2.code).toBe('ERR_CORRUPT')
    expect(e2.data?.cid).toBe(head.toString())
    expect(await refsOf(other)).toEqual({})
    // With an honest remote, both complete.
    expect((await pull(local, { who: WHO, transport: PathTransport.over(remote) })).status).toBe('created')
    expect((await local.fsck()).ok).toBe(true)
  })

  it('fails naming the CID when the remote leaves out a block under the ref it advertises', async () => {
    const remote = await s.init('r')
    await facility(remote)
    const local = await s.init('l')
    await addRemote(local, 'origin', s.root('r'))
    // A chunk of the large file.
    const file = (await remote.resolveEntry('main:model/weights.bin')).entry.cid
    const node = (await remote.readNode(file)) as { chunks: [import('../../src/codec/cid.js').CID, number][] }
    const chunk = node.chunks[1]![0]
    expect(chunk.code).toBe(RAW)
    const t = new HookedTransport(PathTransport.over(remote), { serve: (b) => (b.cid.equals(chunk) ? undefined : b) })
    const err = await rejectionOf(fetch(local, { who: WHO, transport: t }))
    expect(err.code).toBe('ERR_INCOMPLETE')
    expect(err.data?.cid).toBe(chunk.toString())
    expect(err.message).toContain(chunk.toString())
    expect(await refsOf(local)).toEqual({})

    // What did arrive was verified and stays: the next fetch sends only the rest.
    const again = await fetch(local, { who: WHO, transport: PathTransport.over(remote) })
    expect(again.blocks).toBe(1)
    expect((await local.fsck()).ok).toBe(true)
  })

  it('resumes an interrupted fetch, filling the holes it left', async () => {
    const remote = await s.init('r')
    await commitAt(remote, 'main', 1, Array.from({ length: 2000 }, (_, i) => record(`r/${i}.json`, { i })))
    const local = await s.init('l')
    await addRemote(local, 'origin', s.root('r'))
    let served = 0
    const cut = new HookedTransport(PathTransport.over(remote), {
      serve: (b) => {
        if (++served > 40) throw new Error('connection reset')
        return b
      },
    })
    expect((await rejectionOf(fetch(local, { who: WHO, transport: cut }))).message).toContain('connection reset')
    expect(await refsOf(local)).toEqual({})
    // The commit and the top of its tree arrived; the rest did not.
    const head = (await remote.refs.get('main'))!
    expect(await local.blocks.has(head)).toBe(true)

    const again = await fetch(local, { who: WHO, transport: PathTransport.over(remote) })
    expect(again.blocks).toBe(2000 + (await remote.fsck()).checked.trees + 1 - 40)
    expect((await local.refs.get('remotes/origin/main'))?.equals(head)).toBe(true)
    expect((await local.fsck()).ok).toBe(true)
  })

  it('fails clearly when the remote path holds no store, changing nothing', async () => {
    const local = await s.init('l')
    await commitAt(local, 'main', 1, [record('x.json', { v: 1 })])
    await addRemote(local, 'origin', join(s.dir, 'nowhere'))
    const before = await refsOf(local)
    const err = await rejectionOf(fetch(local, { who: WHO }))
    expect(err.code).toBe('ERR_NOT_FOUND')
    expect(err.message).toContain(join(s.dir, 'nowhere'))
    expect(await refsOf(local)).toEqual(before)
  })

  it('waits for a remote store held by someone else, then fails naming it', async () => {
    const remote = await s.init('r')
    await commitAt(remote, 'main', 1, [record('x.json', { v: 1 })])
    const local = await s.init('l')
    await addRemote(local, 'origin', s.root('r'))
    const err = await rejectionOf(fetch(local, { who: WHO, open: { lockTimeoutMs: 200 } }))
    expect(err.code).toBe('ERR_LOCKED')
    expect(err.message).toContain(s.root('r'))
    expect(await refsOf(local)).toEqual({})
  })
})

describe('pull of a tag that moved upstream', () => {
  for (const annotated of [true, false]) {
    it(`${annotated ? 'an annotated' : 'a lightweight'} tag: refused as "the tag moved upstream", suggesting the ref set --force that works; the local tag is unchanged`, async () => {
      const remote = await s.init('r')
      await commitAt(remote, 'main', 1, [record('x.json', { v: 1 })])
      await commitAt(remote, 'main', 2, [record('x.json', { v: 2 })])
      const opts = annotated ? { tagger: WHO, message: 'v2', time: 5 } : { tagger: WHO }
      await remote.tag('v2', 'main~1', opts)
      const local = await s.init('l')
      await addRemote(local, 'origin', s.root('r'))
      await pull(local, { ref: 'tags/v2', who: WHO, transport: PathTransport.over(remote) })
      const before = (await local.refs.get('tags/v2'))!.toString()
      await remote.tag('v2', 'main', { ...opts, force: true })
      const err = await rejectionOf(pull(local, { ref: 'tags/v2', who: WHO, transport: PathTransport.over(remote) }))
      expect(err.code).toBe('ERR_REFUSED')
      expect(err.message).toContain('the tag moved upstream')
      expect(err.message).toContain('pedigree ref set tags/v2 remotes/origin/tags/v2 --force')
      expect(err.message).not.toContain('diverged')
      expect(err.message).not.toContain('use --force')
      expect(err.data).toMatchObject({ ref: 'tags/v2', reason: 'tag-moved' })
      expect((await local.refs.get('tags/v2'))!.toString()).toBe(before)
    })
  }
})

describe('clone', () => {
  it('gives identical CIDs and byte-exact files', async () => {
    const source = await s.init('r')
    const { weights } = await facility(source)
    await source.close()
    const target = join(s.dir, 'copy', '.pedigree')
    const r = await clone(s.root('r'), target, { who: WHO })
    expect(r.location).toBe(target)
    expect(r.blocks).toBeGreaterThan(5)

    const theirs = await s.with('r', refsOf)
    await s.with('copy', async (copy) => {
      const ours = await refsOf(copy)
      for (const [name, cid] of Object.entries(theirs)) {
        expect(ours[name]).toBe(cid)
        expect(ours[`remotes/origin/${name}`]).toBe(cid)
      }
      const entry = await copy.resolveEntry('main:model/weights.bin')
      expect(Buffer.compare(await bytesOf(readFile(copy.blocks, entry.entry.cid)), Buffer.from(weights))).toBe(0)
      const check = await copy.fsck()
      expect(check.ok).toBe(true)
      expect(check.unindexed).toBe(0)
      // The source is now its origin: a pull finds nothing new.
      expect((await pull(copy, { who: WHO })).status).toBe('up-to-date')
    })
  })

  it('creates nothing when the source cannot be reached', async () => {
    const target = join(s.dir, 'copy', '.pedigree')
    const err = await rejectionOf(clone(join(s.dir, 'nowhere'), target, { who: WHO }))
    expect(err.code).toBe('ERR_NOT_FOUND')
    expect(existsSync(join(s.dir, 'copy'))).toBe(false)
  })

  it('removes what it made when the transfer fails', async () => {
    const source = await s.init('r')
    await facility(source)
    const head = (await source.refs.get('main'))!
    const t = new HookedTransport(PathTransport.over(source), { serve: (b) => (b.cid.equals(head) ? { cid: b.cid, bytes: new Uint8Array([1]) } : b) })
    const target = join(s.dir, 'copy', '.pedigree')
    const err = await rejectionOf(clone(s.root('r'), target, { who: WHO, transport: t }))
    expect(err.code).toBe('ERR_CORRUPT')
    expect(existsSync(join(s.dir, 'copy'))).toBe(false)
  })
})
