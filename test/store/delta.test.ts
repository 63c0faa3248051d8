import { mkdtemp, open as openFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { cidToString, type CID } from '../../src/codec/cid.js'
import { rawBlock, type Block } from '../../src/codec/block.js'
import { ENCODING_DELTA } from '../../src/codec/compress.js'
import { parseDelta } from '../../src/codec/delta.js'
import { CorruptBlockError } from '../../src/errors.js'
import { levelDir, openLevelStore } from '../../src/store/level.js'
import { packFileName } from '../../src/store/pack.js'
import type { Store } from '../../src/store/store.js'
import { fingerprint, rejectionOf, seededBytes } from './fixture.js'

const KiB = 1024

/** `bytes` with `length` bytes rewritten at `at`. */
function edited(bytes: Uint8Array, at: number, length: number, seed: number): Block {
  const out = bytes.slice()
  out.set(seededBytes(seed, length), at)
  return rawBlock(out)
}

/** A block's index entry as LevelDB holds it, read with the store closed. */
async function indexEntry(root: string, cid: CID): Promise<Uint8Array | undefined> {
  const db = new Level<string, unknown>(levelDir(root), { keyEncoding: 'utf8', valueEncoding: 'json' })
  try {
    return await db.sublevel<string, Uint8Array>('b', { valueEncoding: 'view' }).get(cidToString(cid))
  } finally {
    await db.close()
  }
}

/** The stored bytes of a packed block (index entry: tag, encoding, pack, offset hi/lo, stored, size). */
async function storedBytes(root: string, entry: Uint8Array): Promise<Uint8Array> {
  const view = new DataView(entry.buffer, entry.byteOffset, entry.byteLength)
  const fh = await openFile(join(root, 'packs', packFileName(view.getUint32(2))), 'r')
  try {
    const out = new Uint8Array(view.getUint32(14))
    await fh.read(out, 0, out.length, view.getUint32(6) * 2 ** 32 + view.getUint32(10))
    return out
  } finally {
    await fh.close()
  }
}

describe('level store: blocks stored as deltas against a similar block', () => {
  let root: string
  let store: Store | undefined
  const v1 = rawBlock(seededBytes(1, 256 * KiB))
  const v2 = edited(v1.bytes, 10 * KiB, 20 * KiB, 2)
  const v3 = edited(v2.bytes, 200 * KiB, 10 * KiB, 3)

  const reopen = async (): Promise<Store> => {
    await store?.close()
    store = await openLevelStore(root, { lockTimeoutMs: 2_000 })
    return store
  }
  const storedSize = async (s: Store, b: Block): Promise<number> => (await s.blocks.storedSizes!([b.cid]))[0]!.stored
  const expectExact = async (s: Store, blocks: Block[]): Promise<void> => {
    expect((await s.blocks.getMany(blocks.map((b) => b.cid))).map(fingerprint)).toEqual(blocks.map((b) => fingerprint(b.bytes)))
    for (const b of blocks) expect(fingerprint(await s.blocks.get(b.cid))).toBe(fingerprint(b.bytes))
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'pedigree-delta-'))
    store = undefined
  })
  afterEach(async () => {
    await store?.close().catch(() => {})
    await rm(root, { recursive: true, force: true })
  })

  it('a block named with a similar base costs about its changed bytes, and reads back byte-exact, also after reopening', async () => {
    const s = await reopen()
    await s.blocks.put(v1)
    await s.blocks.putMany([v2], { deltaBase: (b) => (b.cid.equals(v2.cid) ? v1.cid : undefined) })
    expect(await storedSize(s, v1)).toBe(v1.bytes.length)
    const stored = await storedSize(s, v2)
    expect(stored).toBeGreaterThan(20 * KiB)
    expect(stored).toBeLessThan(21 * KiB)
    await expectExact(s, [v1, v2])
    await expectExact(await reopen(), [v2, v1])
    await store!.close()
    store = undefined
    const entry = (await indexEntry(root, v2.cid))!
    expect(entry[1]).toBe(ENCODING_DELTA)
    expect(parseDelta(await storedBytes(root, entry)).base.equals(v1.cid)).toBe(true)
  })

  it('a delta is never taken against a delta: a base stored as one is replaced by its own base', async () => {
    const s = await reopen()
    await s.blocks.put(v1)
    await s.blocks.putMany([v2], { deltaBase: () => v1.cid })
    await s.blocks.putMany([v3], { deltaBase: () => v2.cid })
    // v3 against v1 holds both edits.
    expect(await storedSize(s, v3)).toBeGreaterThan(30 * KiB)
    expect(await storedSize(s, v3)).toBeLessThan(31 * KiB)
    await expectExact(s, [v3, v2, v1])
    await s.close()
    store = undefined
    const entry = (await indexEntry(root, v3.cid))!
    expect(parseDelta(await storedBytes(root, entry)).base.equals(v1.cid)).toBe(true)
  })

  it('stores the block whole when the base is absent, unrelated, the block itself, or compression is off', async () => {
    const s = await reopen()
    const unrelated = rawBlock(seededBytes(9, 256 * KiB))
    await s.blocks.putMany([v1], { deltaBase: () => v2.cid }) // v2 is not in the store
    await s.blocks.putMany([unrelated], { deltaBase: () => v1.cid })
    await s.blocks.putMany([v2], { deltaBase: () => v1.cid, compress: false })
    expect(await storedSize(s, v1)).toBe(v1.bytes.length)
    expect(await storedSize(s, unrelated)).toBe(unrelated.bytes.length)
    expect(await storedSize(s, v2)).toBe(v2.bytes.length)
    await expectExact(s, [v1, unrelated, v2])
  })

  it('a delta whose base has gone is a CorruptBlockError naming both blocks; the base itself is untouched', async () => {
    const s = await reopen()
    await s.blocks.put(v1)
    await s.blocks.putMany([v2], { deltaBase: () => v1.cid })
    await s.close()
    store = undefined
    const db = new Level<string, unknown>(levelDir(root), { keyEncoding: 'utf8', valueEncoding: 'json' })
    await db.sublevel('b').del(cidToString(v1.cid))
    await db.close()
    const again = await reopen()
    const err = await rejectionOf(again.blocks.get(v2.cid))
    expect(err).toBeInstanceOf(CorruptBlockError)
    expect(err.message).toContain(cidToString(v2.cid))
    expect(err.message).toContain(`stored as a delta against ${cidToString(v1.cid)}, which is missing`)
  })
})
