import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { cidToString } from '../../src/codec/cid.js'
import { encodeNode, rawBlock } from '../../src/codec/block.js'
import {
  AmbiguousRevisionError,
  ConflictError,
  CorruptBlockError,
  InvalidInputError,
  InvalidRefNameError,
  NotFoundError,
  PedigreeError,
  RefusedError,
  StoreError,
  StoreLockedError,
  UnsafePathError,
} from '../../src/errors.js'
import { Repository } from '../../src/repo/repository.js'
import { DAEMON_FILE, DaemonStore, daemonSocketPath, errorFromWire, errorToWire, openDaemonStore } from '../../src/store/daemon.js'
import { startStoreSocket } from '../../src/server/store-socket.js'
import { openLevelStore } from '../../src/store/level.js'
import type { RefLogRecord } from '../../src/store/ref-cells.js'
import { collect, rejectionOf, seededBytes } from '../store/fixture.js'
import { serveStore, type ServedStore } from './fixture.js'

const who = { name: 'ana', email: 'ana@example.org' }
const commitCid = (i: number): string => cidToString(encodeNode({ tree: null, parents: [], message: `c${i}`, time: i }).cid)
const rec = (old: string | null, next: string | null, message: string): RefLogRecord => ({ old, new: next, who, time: 1_700_000_000_000, message })

let dir: string
let served: ServedStore

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pedigree-daemon-store-'))
  served = await serveStore(dir)
})
afterEach(async () => {
  await served.stop().catch(() => {})
  await rm(dir, { recursive: true, force: true })
})

describe('blocks through the daemon', () => {
  it('delta bases travel with putMany: the store behind the daemon keeps the block as a delta, and it reads back byte-exact', async () => {
    const v1 = rawBlock(seededBytes(1, 256 * 1024))
    const changed = v1.bytes.slice()
    changed.set(seededBytes(2, 10_000), 50_000)
    const v2 = rawBlock(changed)
    const other = rawBlock(seededBytes(3, 256 * 1024))
    await served.client.blocks.put(v1)
    await served.client.blocks.putMany([v2, other], { deltaBase: (b) => (b.cid.equals(v2.cid) ? v1.cid : undefined) })
    const sizes = await served.level.blocks.storedSizes!([v1.cid, v2.cid, other.cid])
    expect(sizes.map((x) => x!.size)).toEqual([v1.bytes.length, v2.bytes.length, other.bytes.length])
    expect(sizes[0]!.stored).toBe(v1.bytes.length)
    expect(sizes[1]!.stored).toBeLessThan(11_000)
    expect(sizes[2]!.stored).toBe(other.bytes.length)
    const back = await served.client.blocks.getMany([v2.cid, other.cid])
    expect(Buffer.compare(back[0]!, v2.bytes)).toBe(0)
    expect(Buffer.compare(back[1]!, other.bytes)).toBe(0)
  })

  it('a getMany of many large blocks (back-pressure at every block) leaves no listeners behind: no MaxListenersExceededWarning', async () => {
    const blocks = Array.from({ length: 24 }, (_, i) => rawBlock(seededBytes(100 + i, 512 * 1024)))
    await served.level.blocks.putMany(blocks)
    const warnings: Error[] = []
    const onWarning = (w: Error): void => {
      warnings.push(w)
    }
    process.on('warning', onWarning)
    try {
      for (let round = 0; round < 2; round++) {
        const back = await served.client.blocks.getMany(blocks.map((b) => b.cid))
        back.forEach((b, i) => expect(Buffer.compare(b!, blocks[i]!.bytes)).toBe(0))
      }
      // Warnings are emitted on the next tick.
      await new Promise((r) => setTimeout(r, 50))
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).toEqual([])
  })
})

describe('refs through the daemon', () => {
  it('two clients racing a compare-and-swap from the same value: exactly one wins, one log line', async () => {
    const other = await served.connect()
    await served.client.refs.compareAndSwap('main', rec(null, commitCid(0), 'start'))
    const results = await Promise.all([
      served.client.refs.compareAndSwap('main', rec(commitCid(0), commitCid(1), 'from a')),
      other.refs.compareAndSwap('main', rec(commitCid(0), commitCid(2), 'from b')),
    ])
    expect(results.filter(Boolean)).toHaveLength(1)
    const winner = results[0] ? commitCid(1) : commitCid(2)
    expect(await other.refs.get('main')).toBe(winner)
    expect(await served.level.refs.get('main')).toBe(winner)
    expect((await collect(served.client.refs.log('main'))).map((r) => r.message)).toEqual(['start', results[0] ? 'from a' : 'from b'])
  })

  it('64 concurrent creations of one ref from 4 clients: exactly one wins', async () => {
    const clients = [served.client, await served.connect(), await served.connect(), await served.connect()]
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => clients[i % 4]!.refs.compareAndSwap('race', rec(null, commitCid(i), `try ${i}`))))
    expect(results.filter(Boolean)).toHaveLength(1)
    expect(await collect(served.client.refs.log('race'))).toHaveLength(1)
  })

  it('a listing longer than one streamed page arrives whole and in order; stopping early leaves the daemon working', async () => {
    const names = Array.from({ length: 1000 }, (_, i) => `runs/${String(i).padStart(4, '0')}`)
    await Promise.all(names.map((n, i) => served.level.refs.compareAndSwap(n, rec(null, commitCid(i), 'create'))))
    expect((await collect(served.client.refs.list('runs/'))).map(([n]) => n)).toEqual(names)
    let seen = 0
    for await (const _ of served.client.refs.list()) if (++seen === 3) break
    for await (const _ of served.client.refs.logged()) break
    expect(await served.client.refs.get('runs/0999')).toBe(commitCid(999))
    expect(await collect(served.client.refs.logged())).toHaveLength(1000)
  })
})

describe('config and index through the daemon', () => {
  it('config: set, get, entries, delete round-trip JSON values; a non-JSON value is refused as the store refuses it', async () => {
    const value = { scope: 'write', n: 3, list: [1, 'two', null], nested: { ok: true } }
    await served.client.config.set('token.a', value)
    await served.client.config.set('token.b', null)
    await served.client.config.set('remote.x', 'url')
    expect(await served.client.config.get('token.a')).toEqual(value)
    expect(await served.client.config.get('token.b')).toBeNull()
    expect(await served.client.config.get('absent')).toBeUndefined()
    expect(await collect(served.client.config.entries('token.'))).toEqual([
      ['token.a', value],
      ['token.b', null],
    ])
    // The daemon's own store sees the same values.
    expect(await served.level.config.get('remote.x')).toBe('url')
    await served.client.config.delete('token.a')
    expect(await served.client.config.get('token.a')).toBeUndefined()
    const refused = await rejectionOf(served.client.config.set('f', () => 1))
    const local = await rejectionOf(served.level.config.set('f', () => 1))
    expect(refused).toBeInstanceOf(InvalidInputError)
    expect(refused.message).toBe(local.message)
  })

  it('index: putMany, get, getMany, entries with a limit, entriesMany, clear', async () => {
    const entries: [string, string][] = [
      ['p/a/1', 'x'],
      ['p/a/2', 'y'],
      ['p/a/3', 'z'],
      ['p/b/1', ''],
      ['q/1', 'q'],
    ]
    await served.client.index.putMany(entries)
    expect(await served.client.index.get('p/a/2')).toBe('y')
    expect(await served.client.index.get('nope')).toBeUndefined()
    expect(await served.client.index.getMany(['nope', 'p/a/2', 'q/'])).toEqual([undefined, 'y', undefined])
    expect(await collect(served.client.index.entries('p/a/'))).toEqual(entries.slice(0, 3))
    expect(await collect(served.client.index.entries('p/', { limit: 2 }))).toEqual(entries.slice(0, 2))
    expect(await served.client.index.entriesMany!(['q/', 'p/a/', 'none/'], { limit: 2 })).toEqual([[entries[4]], entries.slice(0, 2), []])
    await served.client.index.clear('p/')
    expect(await collect(served.client.index.entries(''))).toEqual([entries[4]])
  })
})

describe('errors through the daemon', () => {
  it('get of a missing block is a NotFoundError naming the CID, as the store itself throws', async () => {
    const cid = rawBlock(seededBytes(7, 100)).cid
    const remote = await rejectionOf(served.client.blocks.get(cid))
    const local = await rejectionOf(served.level.blocks.get(cid))
    expect(remote).toBeInstanceOf(NotFoundError)
    expect(remote.code).toBe('ERR_NOT_FOUND')
    expect(remote.message).toBe(local.message)
    expect(remote.message).toContain(cidToString(cid))
    expect(remote.data).toEqual(local.data)
  })

  it('an error the store throws in the daemon arrives as the same class, code, message and data', async () => {
    // The store refuses what is not a list of entries: thrown by the daemon's side.
    const e = await rejectionOf(served.client.index.putMany('not a list' as never))
    expect(e).toBeInstanceOf(InvalidInputError)
    expect(e.code).toBe('ERR_INVALID_INPUT')
  })

  it('every error class of the library survives the wire', () => {
    const samples: PedigreeError[] = [
      new NotFoundError('block', 'bafyx', 'detail', { extra: 1 }),
      new InvalidInputError('bad', { a: 1 }),
      new InvalidRefNameError('a..b', 'has ..'),
      new AmbiguousRevisionError('bafy', ['bafy1', 'bafy2']),
      new ConflictError('moved', { ref: 'main' }),
      new CorruptBlockError('bafyz', 'hash mismatch'),
      new UnsafePathError('../x', 'escapes'),
      new StoreLockedError('/s', 1000, 'someone'),
      new RefusedError('no', {}),
      new StoreError('disk', { location: '/s' }),
      new PedigreeError('ERR_EXISTS', 'exists', { name: 'n' }),
    ]
    for (const e of samples) {
      const back = errorFromWire(JSON.parse(JSON.stringify(errorToWire(e))))
      expect(back.constructor).toBe(e.constructor)
      expect(back).toBeInstanceOf(PedigreeError)
      expect(back.name).toBe(e.name)
      expect((back as PedigreeError).code).toBe(e.code)
      expect(back.message).toBe(e.message)
      expect((back as PedigreeError).data).toEqual(e.data)
    }
    const plain = errorFromWire(errorToWire(new TypeError('boom')))
    expect(plain).not.toBeInstanceOf(PedigreeError)
    expect(plain.message).toBe('boom')
  })

  it('a daemon that stops mid-way gives a StoreError saying so, not a hang', async () => {
    await served.server.close()
    const e = await rejectionOf(served.client.refs.get('main'))
    expect(e).toBeInstanceOf(StoreError)
    expect(e.message).toContain('cannot reach the store daemon')
  })
})

describe('the socket and the DAEMON file', () => {
  it('the socket is mode 0600; DAEMON names it, this host and pid; both go on close', async () => {
    expect((await stat(served.socketPath)).mode & 0o777).toBe(0o600)
    const info = JSON.parse(await readFile(join(dir, DAEMON_FILE), 'utf8'))
    expect(info).toMatchObject({ pid: process.pid, host: hostname(), socket: served.socketPath, what: 'pedigree daemon' })
    expect((await stat(join(dir, DAEMON_FILE))).mode & 0o777).toBe(0o600)
    await served.server.close()
    expect(existsSync(join(dir, DAEMON_FILE))).toBe(false)
    expect(existsSync(served.socketPath)).toBe(false)
  })

  it('a store whose path is too long for a socket gets one in a private per-user folder of the temp dir', async () => {
    const deep = join(dir, 'x'.repeat(60), 'y'.repeat(60), '.pedigree')
    const path = daemonSocketPath(deep)
    expect(path.startsWith(tmpdir())).toBe(true)
    expect(Buffer.byteLength(path)).toBeLessThanOrEqual(100)
    expect(daemonSocketPath(deep)).toBe(path)
    const store = await openLevelStore(deep, { lockTimeoutMs: 2_000 })
    const daemon = await startStoreSocket(store)
    try {
      expect(daemon.socketPath).toBe(path)
      const dirMode = (await stat(join(path, '..'))).mode & 0o777
      expect(dirMode).toBe(0o700)
      const client = await openDaemonStore(path, deep)
      await client.config.set('k', 1)
      expect(await store.config.get('k')).toBe(1)
      await client.close()
    } finally {
      await daemon.close()
      await store.close()
    }
    expect(existsSync(path)).toBe(false)
  })

  it('a client refuses a socket that serves another store', async () => {
    const e = await rejectionOf(openDaemonStore(served.socketPath, join(dir, 'elsewhere')))
    expect(e.message).toContain('does not serve the store')
  })

  it('serving a store that is itself a daemon client is refused', async () => {
    const e = await rejectionOf(startStoreSocket(served.client, { socketPath: join(dir, 'again.sock') }))
    expect((e as PedigreeError).code).toBe('ERR_EXISTS')
  })
})

describe('Repository.open finds the daemon', () => {
  async function initStore(): Promise<string> {
    const root = join(dir, 'repo', '.pedigree')
    const repo = await Repository.init(root)
    await repo.close()
    return root
  }

  it('routes through a running daemon; with daemon: false it opens LevelDB and waits for its lock', async () => {
    const root = await initStore()
    const level = await openLevelStore(root, { holder: 'pedigree daemon' })
    const daemon = await startStoreSocket(level)
    try {
      const repo = await Repository.open(join(dir, 'repo'))
      expect(repo.store).toBeInstanceOf(DaemonStore)
      expect(repo.location).toBe(root)
      const r = await repo.record('runs/1.json', { loss: 0.5 }, { author: who })
      const entries = await collect(repo.log({ from: 'main' }))
      expect(entries[0]!.cid.toString()).toBe(r.cid.toString())
      await repo.close()
      // The daemon's own store has it.
      expect(await level.refs.get('main')).toBe(r.cid.toString())

      const waited: string[] = []
      const locked = await rejectionOf(Repository.open(root, { daemon: false, lockTimeoutMs: 300, onWait: (m) => waited.push(m) }))
      expect(locked).toBeInstanceOf(StoreLockedError)
      expect(waited[0]).toContain('pedigree daemon')
    } finally {
      await daemon.close()
      await level.close()
    }
    // Daemon gone: the next open uses LevelDB directly.
    const direct = await Repository.open(root)
    expect(direct.store).not.toBeInstanceOf(DaemonStore)
    await direct.close()
  })

  it('a process already waiting for the lock when a daemon takes the store goes through the daemon when its wait runs out', async () => {
    const root = await initStore()
    const level = await openLevelStore(root, { holder: 'pedigree daemon' })
    let daemon: Awaited<ReturnType<typeof startStoreSocket>> | undefined
    try {
      const waited: string[] = []
      const opening = Repository.open(root, { lockTimeoutMs: 1_000, onWait: (m) => waited.push(m) })
      await new Promise((r) => setTimeout(r, 200))
      daemon = await startStoreSocket(level)
      const repo = await opening
      expect(waited[0]).toContain('`pedigree daemon`')
      expect(repo.store).toBeInstanceOf(DaemonStore)
      await repo.store.config.set('seen', true)
      expect(await level.config.get('seen')).toBe(true)
      await repo.close()
    } finally {
      await daemon?.close()
      await level.close()
    }
  })

  it('ignores a stale DAEMON file (its process is dead, its socket gone) and opens LevelDB', async () => {
    const root = await initStore()
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
    const pid = Number(dead.stdout)
    await writeFile(join(root, DAEMON_FILE), JSON.stringify({ pid, host: hostname(), socket: join(root, 'daemon.sock'), since: new Date().toISOString(), what: 'pedigree daemon' }))
    const t0 = Date.now()
    const repo = await Repository.open(root)
    expect(repo.store).not.toBeInstanceOf(DaemonStore)
    expect(Date.now() - t0).toBeLessThan(2_000)
    await repo.close()
  })

  it('ignores a DAEMON file whose process lives but whose socket does not answer', async () => {
    const root = await initStore()
    await writeFile(join(root, DAEMON_FILE), JSON.stringify({ pid: process.pid, host: hostname(), socket: join(root, 'daemon.sock'), since: new Date().toISOString(), what: 'pedigree daemon' }))
    const repo = await Repository.open(root)
    expect(repo.store).not.toBeInstanceOf(DaemonStore)
    await repo.close()
  })
})
