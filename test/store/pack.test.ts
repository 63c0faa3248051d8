import { spawn } from 'node:child_process'
import { appendFile, mkdtemp, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Level } from 'level'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MAX_BLOCK_SIZE, cidToString } from '../../src/codec/cid.js'
import { type Block, encodeNode, rawBlock, verifyBlock } from '../../src/codec/block.js'
import { CorruptBlockError, StoreError } from '../../src/errors.js'
import { DEFAULT_PACK_THRESHOLD, levelDir, openLevelStore, type LevelStoreOptions } from '../../src/store/level.js'
import { PACK_HEADER_BYTES, packFileName } from '../../src/store/pack.js'
import type { Store } from '../../src/store/store.js'
import { collect, fingerprint, rejectionOf, seededBytes } from './fixture.js'

const KiB = 1024
const T = DEFAULT_PACK_THRESHOLD

/** Random (incompressible) bytes as a raw block. */
const raw = (seed: number, length: number): Block => rawBlock(seededBytes(seed, length))

/** JSON lines like a workflow's task log: very compressible. */
function jsonText(seed: number, length: number): Uint8Array {
  const lines: string[] = []
  let n = 0
  for (let i = 0; n < length; i++) {
    const line = JSON.stringify({ type: 'task', id: `task-${seed}-${i}`, site: 'aps', loss: ((i * 7919 + seed) % 1000) / 1000, used: [`/data/run${i % 97}.h5`] }) + '\n'
    lines.push(line)
    n += line.length
  }
  return new TextEncoder().encode(lines.join('')).subarray(0, length)
}

async function packFiles(root: string): Promise<string[]> {
  return (await readdir(join(root, 'packs'))).sort()
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path)).size
}

/** Every block reads back byte-exact through get, tryGet and getMany. */
async function expectReadable(store: Store, blocks: readonly Block[]): Promise<void> {
  const many = await store.blocks.getMany(blocks.map((b) => b.cid))
  expect(many.map(fingerprint)).toEqual(blocks.map((b) => fingerprint(b.bytes)))
  for (const b of blocks) {
    const got = await store.blocks.get(b.cid)
    expect(fingerprint(got)).toBe(fingerprint(b.bytes))
    expect(() => verifyBlock(b.cid, got)).not.toThrow()
    expect(fingerprint(await store.blocks.tryGet(b.cid))).toBe(fingerprint(b.bytes))
  }
}

describe('level store: pack files for large blocks', () => {
  let root: string
  let store: Store | undefined

  const open = async (options: LevelStoreOptions = {}): Promise<Store> => {
    await store?.close()
    store = await openLevelStore(root, { lockTimeoutMs: 2_000, ...options })
    return store
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'pedigree-pack-'))
    store = undefined
  })
  afterEach(async () => {
    await store?.close().catch(() => {})
    await rm(root, { recursive: true, force: true })
  })

  it('round-trips blocks around the threshold and at MAX_BLOCK_SIZE byte-exact; only those at or above it go to a pack', async () => {
    const s = await open()
    const blocks = [
      raw(1, T - 1),
      raw(2, T),
      raw(3, T + 1),
      raw(4, MAX_BLOCK_SIZE - 1),
      raw(5, MAX_BLOCK_SIZE),
      rawBlock(jsonText(6, T - 1)),
      rawBlock(jsonText(7, T)),
      rawBlock(jsonText(8, MAX_BLOCK_SIZE)),
      encodeNode(seededBytes(9, MAX_BLOCK_SIZE - 5)),
      rawBlock(new Uint8Array(0)),
      raw(10, 10),
    ]
    await s.blocks.putMany(blocks.slice(0, 6))
    for (const b of blocks.slice(6)) await s.blocks.put(b)
    await expectReadable(s, blocks)
    expect(await s.blocks.hasMany(blocks.map((b) => b.cid))).toEqual(blocks.map(() => true))
    // The pack holds the large blocks once each (random ones as they are, JSON deflated).
    const packed = blocks.filter((b) => b.bytes.length >= T)
    const sizes = await s.blocks.storedSizes!(packed.map((b) => b.cid))
    const storedBytes = sizes.reduce((n, x) => n + x!.stored, 0)
    const headers = packed.reduce((n, b) => n + 1 + b.cid.bytes.length + 9, 0)
    expect(await packFiles(root)).toEqual([packFileName(1)])
    expect(await sizeOf(join(root, 'packs', packFileName(1)))).toBe(PACK_HEADER_BYTES + headers + storedBytes)
  })

  it('lists pack blocks and LevelDB blocks together in cids({ prefix }) and answers has for both', async () => {
    const s = await open()
    const small = [raw(20, 100), encodeNode({ type: 'task', i: 21 })]
    const large = [raw(22, 200 * KiB), rawBlock(jsonText(23, 100 * KiB))]
    await s.blocks.putMany([...small, ...large])
    const all = [...small, ...large].map((b) => cidToString(b.cid)).sort()
    expect((await collect(s.blocks.cids())).map(cidToString).sort()).toEqual(all)
    expect((await collect(s.blocks.cids({ prefix: 'bafk' }))).map(cidToString).sort()).toEqual(all.filter((c) => c.startsWith('bafk')))
    for (const b of large) {
      const text = cidToString(b.cid)
      expect((await collect(s.blocks.cids({ prefix: text.slice(0, 14) }))).map(cidToString)).toEqual([text])
      expect(await s.blocks.has(b.cid)).toBe(true)
    }
  })

  it('stores JSON text deflated (under half its size) and random bytes as they are, and reads both back exactly', async () => {
    const s = await open()
    const text = rawBlock(jsonText(30, 512 * KiB))
    const node = rawBlock(jsonText(31, 8 * KiB)) // a LevelDB value, compressed too
    const noise = raw(32, 512 * KiB)
    const smallNoise = raw(33, 8 * KiB)
    await s.blocks.putMany([text, node, noise, smallNoise])
    const [t, n, r, sr] = await s.blocks.storedSizes!([text.cid, node.cid, noise.cid, smallNoise.cid])
    expect(t!.size).toBe(512 * KiB)
    expect(t!.stored).toBeLessThan(0.5 * t!.size)
    expect(n!.stored).toBeLessThan(0.5 * n!.size)
    expect(r).toEqual({ size: 512 * KiB, stored: 512 * KiB })
    expect(sr).toEqual({ size: 8 * KiB, stored: 8 * KiB })
    await expectReadable(s, [text, node, noise, smallNoise])
    expect(await s.blocks.storedSizes!([raw(34, 10).cid])).toEqual([undefined])
  })

  it('keeps every block across close and reopen, and goes on appending to the same pack', async () => {
    let s = await open()
    const first = [raw(40, 300 * KiB), rawBlock(jsonText(41, 300 * KiB)), raw(42, 1000)]
    await s.blocks.putMany(first)
    const packPath = join(root, 'packs', packFileName(1))
    const sizeBefore = await sizeOf(packPath)
    s = await open()
    await expectReadable(s, first)
    const second = [raw(43, 64 * KiB)]
    await s.blocks.putMany(second)
    expect(await sizeOf(packPath)).toBe(sizeBefore + 1 + second[0]!.cid.bytes.length + 9 + 64 * KiB)
    s = await open()
    await expectReadable(s, [...first, ...second])
  })

  it('starts a new pack past the target size, and reads blocks from every pack', async () => {
    let s = await open({ packTarget: 1024 * KiB })
    const blocks = Array.from({ length: 10 }, (_, i) => raw(50 + i, 300 * KiB))
    await s.blocks.putMany(blocks.slice(0, 6))
    for (const b of blocks.slice(6)) await s.blocks.put(b)
    const packs = await packFiles(root)
    expect(packs.length).toBeGreaterThanOrEqual(3)
    for (const p of packs) expect(await sizeOf(join(root, 'packs', p))).toBeLessThanOrEqual(1024 * KiB)
    await expectReadable(s, blocks)
    s = await open({ packTarget: 1024 * KiB })
    await expectReadable(s, blocks)
  })

  it('a crash after the pack append but before the index write is harmless: the tail is dropped on reopen and later writes read back', async () => {
    let s = await open()
    const before = [raw(60, 200 * KiB), rawBlock(jsonText(61, 200 * KiB))]
    await s.blocks.putMany(before)
    await s.close()
    store = undefined
    const packPath = join(root, 'packs', packFileName(1))
    const indexedEnd = await sizeOf(packPath)
    // What a crash leaves: bytes of an append whose index entries never reached LevelDB.
    const lost = raw(62, 150 * KiB)
    await appendFile(packPath, Buffer.concat([Buffer.from([lost.cid.bytes.length]), lost.cid.bytes, Buffer.alloc(9, 0xee), seededBytes(63, 150 * KiB)]))
    // …and a pack that an interrupted roll created.
    await writeFile(join(root, 'packs', packFileName(2)), seededBytes(64, 5000))

    s = await open()
    expect(await packFiles(root)).toEqual([packFileName(1)])
    expect(await sizeOf(packPath)).toBe(indexedEnd)
    await expectReadable(s, before)
    expect(await s.blocks.has(lost.cid)).toBe(false)
    const after = [raw(65, 100 * KiB), rawBlock(jsonText(66, 100 * KiB)), lost]
    await s.blocks.putMany(after)
    await expectReadable(s, [...before, ...after])
    s = await open()
    await expectReadable(s, [...before, ...after])
    expect((await collect(s.blocks.cids())).length).toBe(before.length + after.length)
  })

  it('a pack shorter than its index (a damaged disk) reads as corrupt, never as other bytes, and new blocks go to a new pack', async () => {
    let s = await open()
    const a = raw(70, 100 * KiB)
    const b = raw(71, 100 * KiB)
    await s.blocks.putMany([a, b])
    await s.close()
    store = undefined
    const packPath = join(root, 'packs', packFileName(1))
    await truncate(packPath, (await sizeOf(packPath)) - 10 * KiB)
    s = await open()
    expect(fingerprint(await s.blocks.get(a.cid))).toBe(fingerprint(a.bytes))
    const err = await rejectionOf(s.blocks.get(b.cid))
    expect(err).toBeInstanceOf(CorruptBlockError)
    expect(err.message).toContain(cidToString(b.cid))
    const c = raw(72, 100 * KiB)
    await s.blocks.put(c)
    expect(await packFiles(root)).toEqual([packFileName(1), packFileName(2)])
    s = await open()
    await expectReadable(s, [a, c])
    await expect(s.blocks.get(b.cid)).rejects.toBeInstanceOf(CorruptBlockError)
  })

  it('concurrent writers of overlapping large blocks store each block once', async () => {
    const s = await open()
    const blocks = Array.from({ length: 24 }, (_, i) => (i % 3 === 0 ? rawBlock(jsonText(80 + i, 40 * KiB)) : raw(80 + i, 40 * KiB + i)))
    await Promise.all([
      s.blocks.putMany(blocks.slice(0, 12)),
      s.blocks.putMany(blocks.slice(6, 18)),
      s.blocks.putMany(blocks.slice(12)),
      ...blocks.map((b) => s.blocks.put(b)),
    ])
    await expectReadable(s, blocks)
    const sizes = await s.blocks.storedSizes!(blocks.map((b) => b.cid))
    const records = blocks.reduce((n, b, i) => n + 1 + b.cid.bytes.length + 9 + sizes[i]!.stored, 0)
    expect(await sizeOf(join(root, 'packs', packFileName(1)))).toBe(PACK_HEADER_BYTES + records)
  })

  it('honours a configured threshold: below it blocks stay LevelDB values', async () => {
    const s = await open({ packThreshold: 256 * KiB })
    const blocks = [raw(90, 255 * KiB), raw(91, 256 * KiB)]
    await s.blocks.putMany(blocks)
    await expectReadable(s, blocks)
    expect(await sizeOf(join(root, 'packs', packFileName(1)))).toBe(PACK_HEADER_BYTES + 1 + blocks[1]!.cid.bytes.length + 9 + 256 * KiB)
  })

  it('refuses a store written before packs (untagged values) instead of misreading it', async () => {
    const db = new Level<string, unknown>(levelDir(root), { keyEncoding: 'utf8', valueEncoding: 'json' })
    const old = raw(95, 100)
    await db.sublevel<string, Uint8Array>('b', { valueEncoding: 'view' }).put(cidToString(old.cid), old.bytes)
    await db.close()
    const err = await rejectionOf(openLevelStore(root, { lockTimeoutMs: 1_000 }))
    expect(err).toBeInstanceOf(StoreError)
    expect(err.message).toContain('earlier version')
    // It let go of the store: the next attempt fails the same way, not on the lock.
    expect((await rejectionOf(openLevelStore(root, { lockTimeoutMs: 1_000 }))).message).toContain('earlier version')
  })
})

/** The modules a child process imports, found relative to this file so that any clone works. */
const LEVEL_MODULE = new URL('../../src/store/level.ts', import.meta.url).href
const BLOCK_MODULE = new URL('../../src/codec/block.ts', import.meta.url).href
const FIXTURE_MODULE = new URL('./fixture.ts', import.meta.url).href
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href

/**
 * Writes batches of large blocks forever, as a commit would: the blocks, then a ref update
 * naming the batch (`main` → the batch's first block), then a line saying so. With `once`, it
 * writes one batch, updates the ref only if asked (`ref`), and kills itself.
 */
const WRITER = `
const [levelModule, blockModule, fixtureModule, root, first, mode] = process.argv.slice(2)
const { openLevelStore } = await import(levelModule)
const { rawBlock } = await import(blockModule)
const { seededBytes } = await import(fixtureModule)
const store = await openLevelStore(root)
const who = { name: 'writer' }
let old = (await store.refs.get('main')) ?? null
for (let batch = Number(first); ; batch++) {
  const blocks = []
  for (let k = 0; k < 8; k++) blocks.push(rawBlock(seededBytes(batch * 100 + k, 20000 + ((batch * 7 + k) % 13) * 9000)))
  await store.blocks.putMany(blocks)
  if (mode === 'once') process.kill(process.pid, 'SIGKILL')
  const next = blocks[0].cid.toString()
  if (!(await store.refs.compareAndSwap('main', { old, new: next, who, time: Date.now(), message: 'batch ' + batch }))) throw new Error('lost the ref')
  old = next
  if (mode === 'once-ref') process.kill(process.pid, 'SIGKILL')
  process.stdout.write(JSON.stringify({ stored: batch }) + '\\n')
}
`
const batchBlocks = (batch: number): Block[] =>
  Array.from({ length: 8 }, (_, k) => rawBlock(seededBytes(batch * 100 + k, 20000 + ((batch * 7 + k) % 13) * 9000)))

describe('level store: killed while writing', () => {
  let root: string
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'pedigree-kill-'))
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  /**
   * Run the writer from batch `first`. Unless `mode` makes it kill itself, SIGKILL it at some
   * moment (mid-encode, mid-append, mid-fdatasync or mid-index) once it has stored `count`
   * batches. Resolves with the last batch it reported.
   */
  async function runWriter(first: number, count: number, mode = 'loop'): Promise<number> {
    const script = join(root, 'writer.mjs')
    await writeFile(script, WRITER)
    const child = spawn(process.execPath, ['--import', TSX_LOADER, script, LEVEL_MODULE, BLOCK_MODULE, FIXTURE_MODULE, root, String(first), mode], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    return new Promise<number>((resolve, reject) => {
      let last = first - 1
      let buffered = ''
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString()
        let nl: number
        while ((nl = buffered.indexOf('\n')) >= 0) {
          last = (JSON.parse(buffered.slice(0, nl)) as { stored: number }).stored
          buffered = buffered.slice(nl + 1)
          if (last === first + count - 1) setTimeout(() => child.kill('SIGKILL'), Math.random() * 15)
        }
      })
      child.on('exit', (code, signal) => {
        if (signal === 'SIGKILL') resolve(last)
        else reject(new Error(`writer exited with ${code} before it was killed: ${stderr}`))
      })
    })
  }

  /** The batch `main` names after a reopen, or -1. */
  async function refBatch(store: Store, upTo: number): Promise<number> {
    const main = await store.refs.get('main')
    if (main === undefined) return -1
    for (let b = upTo; b >= 0; b--) if (cidToString(batchBlocks(b)[0]!.cid) === main) return b
    throw new Error(`main names no batch: ${main}`)
  }

  it('whatever moment it is killed at, the ref names a batch whose blocks are all there byte-exact, and writing goes on', { timeout: 120_000 }, async () => {
    let next = 0
    const stored: number[] = []
    for (let round = 0; round < 4; round++) {
      const last = await runWriter(next, 4)
      const store = await openLevelStore(root, { lockTimeoutMs: 5_000 })
      try {
        for (let batch = next; batch <= last; batch++) stored.push(batch)
        // Every batch the writer saw its ref update for, and the ref's own batch, is complete.
        const named = await refBatch(store, last + 1)
        expect(named).toBeGreaterThanOrEqual(last)
        if (named > last) stored.push(named)
        for (const batch of stored) await expectReadable(store, batchBlocks(batch))
        next = Math.max(last, named) + 2
      } finally {
        await store.close()
      }
    }
    const store = await openLevelStore(root, { lockTimeoutMs: 5_000 })
    try {
      const extra = [raw(999, 300 * KiB), rawBlock(jsonText(998, 300 * KiB))]
      await store.blocks.putMany(extra)
      await expectReadable(store, extra)
    } finally {
      await store.close()
    }
  })

  it('blocks written without a ref update may be lost to a crash, and then leave no trace; with one they are durable', async () => {
    await runWriter(0, 1, 'once') // putMany, then SIGKILL: nothing reaches the written blocks
    let store = await openLevelStore(root, { lockTimeoutMs: 5_000 })
    try {
      expect(await store.refs.get('main')).toBeUndefined()
      const lost = batchBlocks(0)
      // Write-behind: not yet flushed when it died, so not indexed; the pack's unindexed tail is gone.
      expect(await store.blocks.hasMany(lost.map((b) => b.cid))).toEqual(lost.map(() => false))
      expect(await collect(store.blocks.cids())).toEqual([])
      // The pack it had started was never indexed: removed on open.
      expect(await readdir(join(root, 'packs'))).toEqual([])
    } finally {
      await store.close()
    }
    await runWriter(1, 1, 'once-ref') // putMany, ref update, then SIGKILL
    store = await openLevelStore(root, { lockTimeoutMs: 5_000 })
    try {
      expect(await refBatch(store, 1)).toBe(1)
      await expectReadable(store, batchBlocks(1))
    } finally {
      await store.close()
    }
  })
})

describe('level store: a failed flush', () => {
  let root: string
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'pedigree-failflush-'))
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('keeps the ref where it was and refuses later writes, rather than let a ref reach blocks that may be lost', async () => {
    const store = await openLevelStore(root)
    const who = { name: 'ana' }
    const first = raw(1, 100 * KiB)
    await store.blocks.put(first)
    expect(await store.refs.compareAndSwap('main', { old: null, new: cidToString(first.cid), who, time: 1, message: 'one' })).toBe(true)
    // The disk fails the next fdatasync (simulated: the only way to reach it from a test).
    const packs = (store.blocks as unknown as { packs: { sync: () => Promise<void> } }).packs
    packs.sync = async () => {
      throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })
    }
    const second = raw(2, 100 * KiB)
    await store.blocks.put(second)
    const err = await rejectionOf(store.refs.compareAndSwap('main', { old: cidToString(first.cid), new: cidToString(second.cid), who, time: 2, message: 'two' }))
    expect(err).toBeInstanceOf(StoreError)
    expect(err.message).toContain('EIO')
    expect(await store.refs.get('main')).toBe(cidToString(first.cid))
    await expect(store.blocks.put(raw(3, 100 * KiB))).rejects.toBeInstanceOf(StoreError)
    await expect(store.blocks.put(raw(4, 100))).rejects.toBeInstanceOf(StoreError)
    await store.close()
    // Reopened, the store has what was durable: the first block and the ref on it.
    const again = await openLevelStore(root)
    try {
      expect(await again.refs.get('main')).toBe(cidToString(first.cid))
      await expectReadable(again, [first])
      expect(await again.blocks.has(second.cid)).toBe(false)
    } finally {
      await again.close()
    }
  })
})
