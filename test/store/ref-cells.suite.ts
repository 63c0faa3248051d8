import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { cidToString } from '../../src/codec/cid.js'
import { encodeNode } from '../../src/codec/block.js'
import type { RefLogRecord } from '../../src/store/ref-cells.js'
import type { Store } from '../../src/store/store.js'
import { type BackendFixture, type SuiteOptions, collect } from './fixture.js'

export type { BackendFixture, SuiteOptions, SuiteSupports } from './fixture.js'

/** A realistic ref value: the CID text of a commit-like node. */
const commit = (i: number): string => cidToString(encodeNode({ tree: null, parents: [], message: `commit ${i}`, time: i }).cid)

const alice = { name: 'Alice Example', email: 'alice@example.org' }
const bot = { name: 'beamline-bot' }
const T0 = 1_700_000_000_123

function rec(old: string | null, next: string | null, message: string, who: RefLogRecord['who'] = alice, time = T0): RefLogRecord {
  return { old, new: next, who, time, message }
}

/**
 * The conformance suite for RefCells (compare-and-swap with an append-only log) and
 * ConfigCells, run by every backend.
 *
 * @example
 * refCellsSuite({ name: 'memory', open: async () => ({ store: openMemoryStore(), cleanup: async () => {} }), supports: { persistent: false } })
 */
export function refCellsSuite({ name, open, supports, timeoutMs }: SuiteOptions): void {
  describe(`ref cells conformance: ${name}`, timeoutMs ? { timeout: timeoutMs } : {}, () => {
    let fixture: BackendFixture
    let store: Store

    beforeEach(async () => {
      fixture = await open()
      store = fixture.store
    })
    afterEach(async () => {
      await fixture.cleanup()
    })

    const log = (ref: string): Promise<RefLogRecord[]> => collect(store.refs.log(ref))

    describe('compare-and-swap', () => {
      it('creates a ref when old is null', async () => {
        expect(await store.refs.get('main')).toBeUndefined()
        expect(await store.refs.compareAndSwap('main', rec(null, commit(1), 'commit (initial): first'))).toBe(true)
        expect(await store.refs.get('main')).toBe(commit(1))
        expect(await collect(store.refs.list())).toEqual([['main', commit(1)]])
        expect(await log('main')).toEqual([rec(null, commit(1), 'commit (initial): first')])
      })

      it('updates a ref when old is its current value', async () => {
        await store.refs.compareAndSwap('main', rec(null, commit(1), 'one'))
        expect(await store.refs.compareAndSwap('main', rec(commit(1), commit(2), 'two', bot, T0 + 5))).toBe(true)
        expect(await store.refs.get('main')).toBe(commit(2))
        expect(await log('main')).toEqual([rec(null, commit(1), 'one'), rec(commit(1), commit(2), 'two', bot, T0 + 5)])
      })

      it('refuses a stale old value: returns false, value unchanged, no log line', async () => {
        await store.refs.compareAndSwap('main', rec(null, commit(1), 'one'))
        await store.refs.compareAndSwap('main', rec(commit(1), commit(2), 'two'))
        const before = await log('main')

        expect(await store.refs.compareAndSwap('main', rec(commit(1), commit(3), 'stale'))).toBe(false)
        expect(await store.refs.compareAndSwap('main', rec(null, commit(3), 'create over existing'))).toBe(false)
        expect(await store.refs.compareAndSwap('main', rec(commit(1), null, 'stale delete'))).toBe(false)

        expect(await store.refs.get('main')).toBe(commit(2))
        expect(await log('main')).toEqual(before)
        expect(before).toHaveLength(2)
      })

      it('refuses to update a ref that does not exist, leaving no trace', async () => {
        expect(await store.refs.compareAndSwap('ghost', rec(commit(1), commit(2), 'no such ref'))).toBe(false)
        expect(await store.refs.compareAndSwap('ghost', rec(commit(1), null, 'no such ref'))).toBe(false)
        expect(await store.refs.get('ghost')).toBeUndefined()
        expect(await log('ghost')).toEqual([])
        expect(await collect(store.refs.list())).toEqual([])
        expect(await collect(store.refs.logged())).toEqual([])
      })

      it('deletes a ref when new is null; the log keeps it and it can be created again', async () => {
        await store.refs.compareAndSwap('topic', rec(null, commit(1), 'create'))
        expect(await store.refs.compareAndSwap('topic', rec(commit(1), null, 'delete'))).toBe(true)
        expect(await store.refs.get('topic')).toBeUndefined()
        expect(await collect(store.refs.list())).toEqual([])
        expect(await collect(store.refs.logged())).toEqual(['topic'])
        expect(await store.refs.compareAndSwap('topic', rec(null, commit(5), 'create again'))).toBe(true)
        expect(await store.refs.get('topic')).toBe(commit(5))
        expect((await log('topic')).map((r) => [r.old, r.new, r.message])).toEqual([
          [null, commit(1), 'create'],
          [commit(1), null, 'delete'],
          [null, commit(5), 'create again'],
        ])
      })
    })

    describe('log', () => {
      it('is oldest first and preserves who, time and message exactly', async () => {
        const lines = [
          rec(null, commit(1), 'commit (initial): raw scan 2024-05-01', alice, T0),
          rec(commit(1), commit(2), 'pull: fast-forward from hpc\n\nwith a body line — and “unicode”', bot, T0 + 1),
          rec(commit(2), commit(3), '', { name: 'Zoë Ünïcode', email: 'zoe@example.org' }, T0 - 1000), // clocks go backwards
          rec(commit(3), null, 'branch: deleted', bot, 0),
        ]
        for (const line of lines) expect(await store.refs.compareAndSwap('models/braggnn', line)).toBe(true)
        const got = await log('models/braggnn')
        expect(got).toEqual(lines)
        expect(got[1]!.who).toEqual({ name: 'beamline-bot' })
        expect(got[0]!.who.email).toBe('alice@example.org')
        expect(typeof got[0]!.time).toBe('number')
      })

      it('cannot be rewritten through the objects passed in or handed out', async () => {
        const line = rec(null, commit(1), 'original', { name: 'Alice', email: 'a@example.org' })
        await store.refs.compareAndSwap('main', line)
        line.message = 'rewritten'
        line.who.name = 'Mallory'
        const [first] = await log('main')
        first!.message = 'rewritten'
        first!.who.name = 'Mallory'
        expect(await log('main')).toEqual([rec(null, commit(1), 'original', { name: 'Alice', email: 'a@example.org' })])
      })

      it('keeps the logs of different refs apart, including refs whose names share a prefix', async () => {
        await store.refs.compareAndSwap('a', rec(null, commit(1), 'a1'))
        await store.refs.compareAndSwap('a/b', rec(null, commit(2), 'ab1'))
        await store.refs.compareAndSwap('ab', rec(null, commit(3), 'ab'))
        await store.refs.compareAndSwap('a', rec(commit(1), commit(4), 'a2'))
        expect((await log('a')).map((r) => r.message)).toEqual(['a1', 'a2'])
        expect((await log('a/b')).map((r) => r.message)).toEqual(['ab1'])
        expect((await log('ab')).map((r) => r.message)).toEqual(['ab'])
        expect(await log('a/')).toEqual([])
      })

      it('a sequential chain of 200 updates is logged completely, in order', async () => {
        let prev: string | null = null
        for (let i = 0; i < 200; i++) {
          const next = commit(i)
          expect(await store.refs.compareAndSwap('chain', rec(prev, next, `step ${i}`, bot, T0 + i))).toBe(true)
          prev = next
        }
        const got = await log('chain')
        expect(got).toHaveLength(200)
        expect(got.map((r) => r.message)).toEqual(Array.from({ length: 200 }, (_, i) => `step ${i}`))
        expect(got.map((r) => r.time)).toEqual(Array.from({ length: 200 }, (_, i) => T0 + i))
        for (let i = 1; i < 200; i++) expect(got[i]!.old).toBe(got[i - 1]!.new)
        expect(got[0]!.old).toBeNull()
        expect(await store.refs.get('chain')).toBe(commit(199))
      })
    })

    describe('concurrency', () => {
      it('50 concurrent swaps from the same old value: exactly one wins', async () => {
        await store.refs.compareAndSwap('main', rec(null, commit(0), 'base'))
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store.refs.compareAndSwap('main', rec(commit(0), commit(100 + i), `racer ${i}`))),
        )
        const winners = results.flatMap((ok, i) => (ok ? [i] : []))
        expect(winners).toHaveLength(1)
        const winner = winners[0]!
        expect(await store.refs.get('main')).toBe(commit(100 + winner))
        expect(await log('main')).toEqual([rec(null, commit(0), 'base'), rec(commit(0), commit(100 + winner), `racer ${winner}`)])
      })

      it('50 concurrent creations of the same ref: exactly one wins', async () => {
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store.refs.compareAndSwap('new-branch', rec(null, commit(200 + i), `create ${i}`))),
        )
        expect(results.filter(Boolean)).toHaveLength(1)
        const winner = results.indexOf(true)
        expect(await store.refs.get('new-branch')).toBe(commit(200 + winner))
        expect(await log('new-branch')).toHaveLength(1)
      })

      it('concurrent swaps on different refs all succeed, one log line each', async () => {
        const names = Array.from({ length: 40 }, (_, i) => `runs/${String(i).padStart(2, '0')}`)
        const results = await Promise.all(names.map((n, i) => store.refs.compareAndSwap(n, rec(null, commit(i), `create ${n}`))))
        expect(results.every(Boolean)).toBe(true)
        expect(await collect(store.refs.list('runs/'))).toEqual(names.map((n, i) => [n, commit(i)]))
        for (const n of names) expect((await log(n)).map((r) => r.message)).toEqual([`create ${n}`])
      })
    })

    describe('list and logged', () => {
      const names = ['models/braggnn', 'main', 'models', 'modelsx', 'models/ptycho/v2', 'tags/v1', 'models/é', 'models/中', 'models/a', 'remotes/hpc/main']

      beforeEach(async () => {
        for (const [i, n] of names.entries()) expect(await store.refs.compareAndSwap(n, rec(null, commit(i), 'create'))).toBe(true)
      })

      it('list() returns every ref sorted by name', async () => {
        const expected = names.map((n, i) => [n, commit(i)] as [string, string]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        expect(await collect(store.refs.list())).toEqual(expected)
      })

      it('list(prefix) returns exactly the refs whose names start with it, sorted, non-ASCII included', async () => {
        const got = await collect(store.refs.list('models/'))
        expect(got.map(([n]) => n)).toEqual(['models/a', 'models/braggnn', 'models/ptycho/v2', 'models/é', 'models/中'])
        expect(got[1]).toEqual(['models/braggnn', commit(0)])
        expect((await collect(store.refs.list('models'))).map(([n]) => n)).toEqual([
          'models',
          'models/a',
          'models/braggnn',
          'models/ptycho/v2',
          'models/é',
          'models/中',
          'modelsx',
        ])
        expect((await collect(store.refs.list('models/中'))).map(([n]) => n)).toEqual(['models/中'])
        expect(await collect(store.refs.list('nope/'))).toEqual([])
        expect(await collect(store.refs.list('zzz'))).toEqual([])
      })

      it('list() leaves out deleted refs; logged() still names them, once each', async () => {
        await store.refs.compareAndSwap('models/é', rec(commit(6), null, 'delete'))
        await store.refs.compareAndSwap('tags/v1', rec(commit(5), null, 'delete'))
        await store.refs.compareAndSwap('main', rec(commit(1), commit(50), 'update'))
        const listed = (await collect(store.refs.list())).map(([n]) => n)
        expect(listed).not.toContain('models/é')
        expect(listed).not.toContain('tags/v1')
        expect(listed).toHaveLength(names.length - 2)
        const logged = await collect(store.refs.logged())
        expect(logged).toHaveLength(names.length)
        expect(new Set(logged)).toEqual(new Set(names))
      })
    })

    describe('config cells', () => {
      it('get of an absent key is undefined; set then get round-trips JSON values', async () => {
        expect(await store.config.get('remote.hpc')).toBeUndefined()
        const remote = { url: 's3://bucket/prefix', fetch: ['main', 'tags/*'], depth: 3, verify: true, note: null, nested: { a: [1, { b: 'c' }] } }
        await store.config.set('remote.hpc', remote)
        await store.config.set('format', 1)
        await store.config.set('name', 'light source ✓')
        await store.config.set('flag', false)
        await store.config.set('nothing', null)
        expect(await store.config.get('remote.hpc')).toEqual(remote)
        expect(await store.config.get('format')).toBe(1)
        expect(await store.config.get('name')).toBe('light source ✓')
        expect(await store.config.get('flag')).toBe(false)
        expect(await store.config.get('nothing')).toBeNull()
      })

      it('set overwrites; delete removes; deleting an absent key is fine', async () => {
        await store.config.set('k', { v: 1 })
        await store.config.set('k', { v: 2 })
        expect(await store.config.get('k')).toEqual({ v: 2 })
        await store.config.delete('k')
        expect(await store.config.get('k')).toBeUndefined()
        await store.config.delete('never-set')
        expect(await collect(store.config.entries())).toEqual([])
      })

      it('stored values are not changed by mutating what was set or got', async () => {
        const value = { list: [1, 2], inner: { x: 'y' } }
        await store.config.set('v', value)
        value.list.push(3)
        value.inner.x = 'changed'
        const got = await store.config.get<{ list: number[]; inner: { x: string } }>('v')
        got!.list.push(4)
        expect(await store.config.get('v')).toEqual({ list: [1, 2], inner: { x: 'y' } })
      })

      it('entries(prefix) lists exactly the matching keys, sorted', async () => {
        const keys = ['remote.lab', 'remote.hpc', 'remote', 'remotes.x', 'format', 'remote.中', 'remote.aps']
        for (const [i, k] of keys.entries()) await store.config.set(k, { i })
        expect(await collect(store.config.entries('remote.'))).toEqual([
          ['remote.aps', { i: 6 }],
          ['remote.hpc', { i: 1 }],
          ['remote.lab', { i: 0 }],
          ['remote.中', { i: 5 }],
        ])
        expect((await collect(store.config.entries())).map(([k]) => k)).toEqual([...keys].sort())
        expect(await collect(store.config.entries('zzz'))).toEqual([])
        await store.config.delete('remote.hpc')
        expect((await collect(store.config.entries('remote.'))).map(([k]) => k)).toEqual(['remote.aps', 'remote.lab', 'remote.中'])
      })
    })

    describe('persistence', () => {
      it.skipIf(!supports.persistent)('refs, logs and config survive close and reopen', async () => {
        await store.refs.compareAndSwap('main', rec(null, commit(1), 'one'))
        await store.refs.compareAndSwap('main', rec(commit(1), commit(2), 'two', bot, T0 + 1))
        await store.refs.compareAndSwap('gone', rec(null, commit(3), 'create'))
        await store.refs.compareAndSwap('gone', rec(commit(3), null, 'delete'))
        await store.config.set('remote.hpc', { url: 'https://hpc.example.org' })
        store = await fixture.reopen!()
        expect(await store.refs.get('main')).toBe(commit(2))
        expect(await store.refs.get('gone')).toBeUndefined()
        expect(await collect(store.refs.list())).toEqual([['main', commit(2)]])
        expect(await log('main')).toEqual([rec(null, commit(1), 'one'), rec(commit(1), commit(2), 'two', bot, T0 + 1)])
        expect(new Set(await collect(store.refs.logged()))).toEqual(new Set(['main', 'gone']))
        expect(await store.config.get('remote.hpc')).toEqual({ url: 'https://hpc.example.org' })
        // The log continues where it stopped, and stale swaps are still refused.
        expect(await store.refs.compareAndSwap('main', rec(commit(1), commit(9), 'stale'))).toBe(false)
        expect(await store.refs.compareAndSwap('main', rec(commit(2), commit(3), 'three'))).toBe(true)
        expect((await log('main')).map((r) => r.message)).toEqual(['one', 'two', 'three'])
      })
    })
  })
}
