import { afterAll, describe, expect, it, vi } from 'vitest'
import { decodeBlock, encodeNode, rawBlock, type Block } from '../../src/codec/block.js'
import { cidToString, sha256 } from '../../src/codec/cid.js'
import { S3Bucket } from '../../src/store/s3/bucket.js'
import { decodeMergedIndex, encodeMergedIndex, encodePack, encodePackIndex, mergedIndexName, parseMergedIndexName, type MergedSection } from '../../src/store/s3/pack-format.js'
import { initS3Store, openS3Store, type S3StoreOptions } from '../../src/store/s3/store.js'
import { parseS3Url } from '../../src/store/s3/url.js'
import { useS3 } from '../support/s3.js'
import { fingerprint, rejectionOf, seededBytes } from './fixture.js'

// How a store in S3 learns which packs exist: one listing when it is first read, again only
// for blocks it does not find (another process may have written them), and a merged index so
// that a store of many small commits is not one GET per pack.

const s3 = await useS3()
const realList = S3Bucket.prototype.list

if (!s3.ok) {
  describe('S3 store: merged pack indexes', () => {
    it.skip(`skipped: ${s3.reason}`, () => {})
  })
} else {
  const server = s3.server
  afterAll(() => server.stop())
  const bucket = await server.bucket('merged-index')
  let n = 0
  const freshUrl = (label: string): string => `s3://${bucket}/${label}-${n++}`
  // Merge after 8 packs (64 by default), so that a test writes a few dozen packs, not hundreds.
  const options = (): S3StoreOptions => ({ ...server.options, mergeAt: 8 })
  const blocksOf = (pack: number): Block[] => [encodeNode({ pack, kind: 'record' }), rawBlock(seededBytes(1000 + pack, 3000 + pack))]

  /** Write `count` packs (one putMany and flush each, as `count` commits would). */
  async function writePacks(url: string, from: number, count: number): Promise<{ blocks: Block[]; merges: number }> {
    const store = await openS3Store(url, options())
    const blocks: Block[] = []
    try {
      for (let p = from; p < from + count; p++) {
        const bs = blocksOf(p)
        await store.blocks.putMany(bs)
        await store.blocks.flush()
        blocks.push(...bs)
      }
      return { blocks, merges: store.blocks.mergesWritten }
    } finally {
      await store.close()
    }
  }

  /** Open a fresh reader; how many GETs and LISTs loading every index took, and whether every block reads back exactly. */
  async function readAll(url: string, blocks: Block[]): Promise<{ packs: number; gets: number; lists: number; merges: number }> {
    const reader = await openS3Store(url, options())
    try {
      const before = { ...reader.bucket.stats }
      const packs = await reader.blocks.load()
      const gets = reader.bucket.stats.gets - before.gets
      const lists = reader.bucket.stats.lists - before.lists
      const got = await reader.blocks.getMany(blocks.map((b) => b.cid))
      got.forEach((bytes, i) => expect(() => decodeBlock(blocks[i]!.cid, bytes!)).not.toThrow())
      expect(got.map((b) => fingerprint(b!))).toEqual(blocks.map((b) => fingerprint(b.bytes)))
      return { packs, gets, lists, merges: reader.blocks.mergesWritten }
    } finally {
      await reader.close()
    }
  }

  async function keysUnder(url: string, prefix: string): Promise<string[]> {
    const raw = await S3Bucket.connect(parseS3Url(url), server.options)
    try {
      const keys: string[] = []
      for await (const page of raw.list(prefix)) keys.push(...page.keys)
      return keys
    } finally {
      raw.close()
    }
  }

  describe('S3 store: merged pack indexes', () => {
    it('a writer past 8 packs writes a merged index; a reader then loads 12 packs with 2 LISTs and 4 GETs, and every block reads back', { timeout: 120_000 }, async () => {
      const url = freshUrl('many')
      await (await initS3Store(url, options())).close()
      const first = await writePacks(url, 0, 12)
      // Pack 9 was the 9th this process loaded one by one: it merged all 9 then, and not again.
      expect(first.merges).toBe(1)
      const merged = (await keysUnder(url, 'packs/')).filter((k) => k.endsWith('.midx'))
      expect(merged).toHaveLength(1)
      // Named by 9999999999 - 9, and by the time before which it holds every pack.
      expect(merged[0]).toMatch(/^packs\/m\/9999999990-\d{13}-[0-9a-f]{64}\.midx$/)

      // A LIST of one key under packs/m/ and the merged index (9 packs); a LIST of the packs
      // begun since, and the indexes of the 3 packs written after it.
      expect(await readAll(url, first.blocks)).toEqual({ packs: 12, gets: 4, lists: 2, merges: 0 })

      // A second writer starts from the merged index, and merges again once 9 more packs are
      // known beyond it (9 + 3 + 6 = 18 packs); the next reader takes the larger merged index.
      const second = await writePacks(url, 12, 9)
      expect(second.merges).toBe(1)
      expect(await readAll(url, [...first.blocks, ...second.blocks])).toEqual({ packs: 21, gets: 4, lists: 2, merges: 0 })
    })

    it('a merged index that cannot be read is passed over: the pack indexes are read one by one', { timeout: 120_000 }, async () => {
      const url = freshUrl('unreadable')
      await (await initS3Store(url, options())).close()
      const { blocks } = await writePacks(url, 0, 5)
      // Garbage under a merged index's name that claims more packs than any other.
      const raw = await S3Bucket.connect(parseS3Url(url), server.options)
      try {
        const junk = new TextEncoder().encode('not an index at all')
        await raw.put(`packs/${mergedIndexName(9_999_999_999, Date.now(), Buffer.from(sha256(junk)).toString('hex'))}`, junk)
      } finally {
        raw.close()
      }
      // The junk (listed first under packs/m/, read once), then a listing of every pack and each of the 5 pack indexes.
      expect(await readAll(url, blocks)).toEqual({ packs: 5, gets: 6, lists: 2, merges: 0 })
    })

    it("a merged index that points a block at another block's place fails that read with ERR_CORRUPT naming the CID", { timeout: 120_000 }, async () => {
      const url = freshUrl('lying')
      await (await initS3Store(url, options())).close()
      const { blocks } = await writePacks(url, 0, 10)
      const raw = await S3Bucket.connect(parseS3Url(url), server.options)
      try {
        const name = (await keysUnder(url, 'packs/')).find((k) => k.endsWith('.midx'))!
        const { packs, sections } = decodeMergedIndex(name, (await raw.get(name))!)
        // The first block is said to be where the second one is.
        const a = sections.findIndex((s) => s.key === cidToString(blocks[0]!.cid))
        const b = sections.findIndex((s) => s.key === cidToString(blocks[1]!.cid))
        const lying = sections.map((s, i) => (i === a ? { ...s, pack: sections[b]!.pack, offset: sections[b]!.offset, length: sections[b]!.length } : s))
        const bytes = encodeMergedIndex(packs, lying)
        // Named as covering one pack more than the honest one, so that a reader takes it.
        const { completeBefore } = parseMergedIndexName(name.slice('packs/'.length))!
        await raw.put(`packs/${mergedIndexName(packs.length + 1, completeBefore!, Buffer.from(sha256(bytes)).toString('hex'))}`, bytes)
      } finally {
        raw.close()
      }
      const reader = await openS3Store(url, options())
      try {
        const err = await rejectionOf(reader.blocks.get(blocks[0]!.cid))
        expect(err.code).toBe('ERR_CORRUPT')
        expect(err.data?.cid).toBe(cidToString(blocks[0]!.cid))
        // Blocks it does not lie about read as they are.
        expect(fingerprint(await reader.blocks.get(blocks[3]!.cid))).toBe(fingerprint(blocks[3]!.bytes))
      } finally {
        await reader.close()
      }
    })
  })

  describe('S3 store: when packs are listed again', () => {
    it('the first read lists the packs once; a block another process wrote since is found by listing again, but not by a negotiation', { timeout: 60_000 }, async () => {
      const url = freshUrl('relist')
      await (await initS3Store(url, options())).close()
      const { blocks } = await writePacks(url, 0, 2)
      const reader = await openS3Store(url, options())
      try {
        // The first question waits for the first listing, which started after it was asked:
        // fresh enough, so a missing block does not list a second time.
        const stranger = rawBlock(seededBytes(99, 500))
        // (No merged index yet: one LIST finds none under packs/m/, one lists every pack.)
        expect(await reader.blocks.hasMany([blocks[0]!.cid, stranger.cid])).toEqual([true, false])
        expect(reader.bucket.stats.lists).toBe(2)
        // Another process writes a pack.
        const later = await writePacks(url, 2, 1)
        const fresh = later.blocks[0]!
        // A negotiation answers from what was listed: no listing, and the new block looks absent
        // (it would only be sent again).
        expect(await reader.blocks.hasManyListed([blocks[1]!.cid, fresh.cid])).toEqual([true, false])
        expect(reader.bucket.stats.lists).toBe(2)
        // A commit checking a link lists the packs begun since and finds it.
        expect(await reader.blocks.hasMany([fresh.cid])).toEqual([true])
        expect(reader.bucket.stats.lists).toBe(3)
        expect(fingerprint(await reader.blocks.get(fresh.cid))).toBe(fingerprint(fresh.bytes))
      } finally {
        await reader.close()
      }
    })

    it('a store with a merged index is never listed whole: a reader lists one key under packs/m/, then only the packs begun since', { timeout: 120_000 }, async () => {
      const url = freshUrl('incremental')
      await (await initS3Store(url, options())).close()
      const { blocks } = await writePacks(url, 0, 12)
      const reader = await openS3Store(url, options())
      const prefixes: string[] = []
      const list = vi.spyOn(reader.bucket, 'list').mockImplementation(function (this: S3Bucket, prefix, opts) {
        prefixes.push(opts?.startAfter ? `${prefix} after ${opts.startAfter}` : prefix)
        return realList.call(this, prefix, opts)
      })
      try {
        expect(fingerprint(await reader.blocks.get(blocks[11]!.cid))).toBe(fingerprint(blocks[11]!.bytes))
        const later = await writePacks(url, 12, 1)
        // A block another process wrote since: found by listing the packs begun since.
        expect(fingerprint(await reader.blocks.get(later.blocks[0]!.cid))).toBe(fingerprint(later.blocks[0]!.bytes))
        expect(prefixes).toHaveLength(3)
        expect(prefixes[0]).toBe('packs/m/')
        for (const p of prefixes.slice(1)) expect(p).toMatch(/^packs\/t\/ after packs\/t\/\d{13}$/)
      } finally {
        list.mockRestore()
        await reader.close()
      }
    })

    it('a pack named by a writer whose clock is an hour behind is found all the same: a block still missing lists every pack (once a minute at most)', { timeout: 120_000 }, async () => {
      const url = freshUrl('skewed')
      await (await initS3Store(url, options())).close()
      await writePacks(url, 0, 10)
      const reader = await openS3Store(url, options())
      try {
        await reader.blocks.load()
        const behind = await openS3Store(url, { ...options(), clock: () => Date.now() - 3_600_000 })
        const late = rawBlock(seededBytes(77, 2000))
        try {
          await behind.blocks.putMany([late])
          await behind.blocks.flush()
        } finally {
          await behind.close()
        }
        const before = reader.bucket.stats.lists
        // The packs begun since the last listing do not include it (its name is an hour old);
        // a listing of every pack does.
        expect(fingerprint(await reader.blocks.get(late.cid))).toBe(fingerprint(late.bytes))
        expect(reader.bucket.stats.lists - before).toBe(2)
        // A block that is nowhere: the newest packs are listed again, but not every pack.
        const nowhere = rawBlock(seededBytes(78, 2000))
        const again = reader.bucket.stats.lists
        expect(await reader.blocks.tryGet(nowhere.cid)).toBeUndefined()
        expect(reader.bucket.stats.lists - again).toBe(1)
      } finally {
        await reader.close()
      }
    })

    it('a store written before 2026-12 (packs and merged index named by their hash alone) reads back whole, and its first reader gives it a merged index under packs/m/', { timeout: 120_000 }, async () => {
      const url = freshUrl('older')
      await (await initS3Store(url, options())).close()
      const raw = await S3Bucket.connect(parseS3Url(url), server.options)
      const blocks: Block[] = []
      try {
        // Packs as the older layout wrote them, and its merged index of the first 9.
        const packs: string[] = []
        const sections: MergedSection[] = []
        for (let p = 0; p < 12; p++) {
          const bs = blocksOf(p)
          blocks.push(...bs)
          const { car, sections: at } = encodePack(bs)
          const id = Buffer.from(sha256(car)).toString('hex')
          await raw.put(`packs/${id}.car`, car)
          await raw.put(`packs/${id}.idx`, encodePackIndex(at))
          if (p < 9) {
            packs.push(id)
            for (const a of at) sections.push({ key: cidToString(a.cid), pack: id, offset: a.offset, length: a.length })
          }
        }
        const bytes = encodeMergedIndex(packs, sections)
        await raw.put(`packs/${String(9).padStart(10, '0')}-${Buffer.from(sha256(bytes)).toString('hex')}.midx`, bytes)
      } finally {
        raw.close()
      }
      // The first reader: none under packs/m/, so every pack is listed; the old merged index
      // and the 3 indexes after it are read, and a merged index of all 12 is written.
      expect(await readAll(url, blocks)).toEqual({ packs: 12, gets: 4, lists: 2, merges: 1 })
      // The next one reads that: no full listing, one GET.
      expect(await readAll(url, blocks)).toEqual({ packs: 12, gets: 1, lists: 2, merges: 0 })
    })
  })
}
