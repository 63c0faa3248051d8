import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CID, MAX_BLOCK_SIZE, cidToString } from '../../src/codec/cid.js'
import { type Block, decodeBlock, encodeNode, rawBlock, verifyBlock } from '../../src/codec/block.js'
import { CorruptBlockError, NotFoundError } from '../../src/errors.js'
import type { Store } from '../../src/store/store.js'
import { type BackendFixture, type SuiteOptions, collect, fingerprint, rejectionOf, seededBytes, thrownBy } from './fixture.js'

export type { BackendFixture, SuiteOptions, SuiteSupports } from './fixture.js'

const str = (cid: CID): string => cidToString(cid)
const raw = (seed: number, length = 64): Block => rawBlock(seededBytes(seed, length))
const node = (i: number): Block => encodeNode({ type: 'task', i, name: `task-${i}`, tags: ['a', String(i % 7)] })

/**
 * The conformance suite every blockstore backend runs (STYLE.md habit 4).
 *
 * @example
 * blockstoreSuite({ name: 'level', open: openTmpLevel, supports: { persistent: true } })
 */
export function blockstoreSuite({ name, open, supports, timeoutMs }: SuiteOptions): void {
  describe(`blockstore conformance: ${name}`, timeoutMs ? { timeout: timeoutMs } : {}, () => {
    let fixture: BackendFixture
    let store: Store

    beforeEach(async () => {
      fixture = await open()
      store = fixture.store
    })
    afterEach(async () => {
      await fixture.cleanup()
    })

    /** Store `bytes` under `cid` although they do not hash to it. */
    async function storeMismatching(cid: CID, good: Uint8Array, bad: Uint8Array): Promise<void> {
      if (fixture.corrupt) {
        await store.blocks.put({ cid, bytes: good })
        await fixture.corrupt(cid, bad)
      } else {
        // put does not re-hash: writing under a CID never stored before is how corruption looks here.
        await store.blocks.put({ cid, bytes: bad })
      }
    }

    describe('manifest', () => {
      it('declares what it supports as booleans', () => {
        expect(typeof store.blocks.supports.delete).toBe('boolean')
        expect(typeof store.blocks.supports.prefixScan).toBe('boolean')
        if (supports.persistent) expect(fixture.reopen, 'a persistent backend must provide reopen').toBeTypeOf('function')
      })
    })

    describe('put, get, has', () => {
      it('returns exactly the bytes that were put, for raw and dag-cbor blocks', async () => {
        const a = raw(1)
        const b = node(2)
        await store.blocks.put(a)
        await store.blocks.put(b)
        expect(new Uint8Array(await store.blocks.get(a.cid))).toEqual(a.bytes)
        expect(new Uint8Array(await store.blocks.get(b.cid))).toEqual(b.bytes)
        expect(new Uint8Array((await store.blocks.tryGet(b.cid))!)).toEqual(b.bytes)
        expect(await store.blocks.has(a.cid)).toBe(true)
        expect(await store.blocks.has(b.cid)).toBe(true)
        // What comes back is a valid block that decodes to what was encoded.
        expect(decodeBlock(b.cid, await store.blocks.get(b.cid))).toEqual({ type: 'task', i: 2, name: 'task-2', tags: ['a', '2'] })
      })

      it('accepts the same block twice and lists it once', async () => {
        const a = raw(3)
        await store.blocks.put(a)
        await store.blocks.put(a)
        await store.blocks.putMany([a, a])
        expect(fingerprint(await store.blocks.get(a.cid))).toBe(fingerprint(a.bytes))
        expect((await collect(store.blocks.cids())).map(str)).toEqual([str(a.cid)])
      })

      it('keeps what was put even if the writer reuses its buffer afterwards', async () => {
        const a = raw(4)
        const b = raw(5)
        const bufA = a.bytes.slice()
        const bufB = b.bytes.slice()
        await store.blocks.put({ cid: a.cid, bytes: bufA })
        await store.blocks.putMany([{ cid: b.cid, bytes: bufB }])
        bufA.fill(0)
        bufB.fill(0)
        const got = await store.blocks.getMany([a.cid, b.cid])
        expect(got.map(fingerprint)).toEqual([fingerprint(a.bytes), fingerprint(b.bytes)])
        expect(() => verifyBlock(a.cid, got[0]!)).not.toThrow()
      })
    })

    describe('getMany, hasMany, putMany', () => {
      it('answers in the order asked, including repeats', async () => {
        const blocks = [raw(10), node(11), raw(12), node(13)]
        await store.blocks.putMany(blocks)
        const order = [blocks[3]!, blocks[0]!, blocks[3]!, blocks[2]!, blocks[1]!]
        const got = await store.blocks.getMany(order.map((b) => b.cid))
        expect(got.map(fingerprint)).toEqual(order.map((b) => fingerprint(b.bytes)))
        expect(await store.blocks.hasMany(order.map((b) => b.cid))).toEqual([true, true, true, true, true])
      })

      it('handles empty lists', async () => {
        await store.blocks.putMany([])
        expect(await store.blocks.getMany([])).toEqual([])
        expect(await store.blocks.hasMany([])).toEqual([])
        expect(await collect(store.blocks.cids())).toEqual([])
      })
    })

    describe('missing blocks', () => {
      it('get throws NotFoundError (ERR_NOT_FOUND) naming the CID', async () => {
        await store.blocks.put(raw(20))
        const missing = raw(21).cid
        const err = await rejectionOf(store.blocks.get(missing))
        expect(err).toBeInstanceOf(NotFoundError)
        expect(err.code).toBe('ERR_NOT_FOUND')
        expect(err.message).toContain(str(missing))
        expect(err.data).toMatchObject({ name: str(missing) })
      })

      it('tryGet is undefined and has is false', async () => {
        await store.blocks.put(raw(22))
        const missing = node(23).cid
        expect(await store.blocks.tryGet(missing)).toBeUndefined()
        expect(await store.blocks.has(missing)).toBe(false)
      })

      it('getMany and hasMany mark exactly the missing positions', async () => {
        const present = [raw(24), node(25), raw(26)]
        const absent = [raw(27), node(28)]
        await store.blocks.putMany(present)
        const ask = [absent[0]!, present[0]!, present[1]!, absent[1]!, present[2]!, absent[0]!]
        expect(await store.blocks.hasMany(ask.map((b) => b.cid))).toEqual([false, true, true, false, true, false])
        const got = await store.blocks.getMany(ask.map((b) => b.cid))
        expect(got.map(fingerprint)).toEqual([
          'undefined',
          fingerprint(present[0]!.bytes),
          fingerprint(present[1]!.bytes),
          'undefined',
          fingerprint(present[2]!.bytes),
          'undefined',
        ])
      })
    })

    describe('corrupt bytes', () => {
      it('a verified read of a raw block with the wrong bytes throws CorruptBlockError naming the CID', async () => {
        const good = raw(30)
        const bad = good.bytes.slice()
        bad[17] = bad[17]! ^ 0x01 // one flipped bit
        await storeMismatching(good.cid, good.bytes, bad)
        const bytes = await store.blocks.get(good.cid)
        expect(fingerprint(bytes)).toBe(fingerprint(bad))
        const err = thrownBy(() => verifyBlock(good.cid, bytes))
        expect(err).toBeInstanceOf(CorruptBlockError)
        expect(err.code).toBe('ERR_CORRUPT')
        expect(err.message).toContain(str(good.cid))
        expect(err.data).toMatchObject({ cid: str(good.cid) })
        expect(thrownBy(() => decodeBlock(good.cid, bytes))).toBeInstanceOf(CorruptBlockError)
      })

      it('a verified decode of a dag-cbor node with another node\'s bytes throws CorruptBlockError naming the CID', async () => {
        const good = node(31)
        const other = node(32) // valid dag-cbor, wrong hash: only re-hashing can tell
        await storeMismatching(good.cid, good.bytes, other.bytes)
        const [bytes] = await store.blocks.getMany([good.cid])
        expect(bytes).toBeDefined()
        const err = thrownBy(() => decodeBlock(good.cid, bytes!))
        expect(err).toBeInstanceOf(CorruptBlockError)
        expect(err.code).toBe('ERR_CORRUPT')
        expect(err.message).toContain(str(good.cid))
        expect(err.data).toMatchObject({ cid: str(good.cid) })
      })

      it('intact neighbours still verify', async () => {
        const good = raw(33)
        const neighbour = node(34)
        await store.blocks.put(neighbour)
        await storeMismatching(good.cid, good.bytes, raw(35).bytes)
        expect(decodeBlock(neighbour.cid, await store.blocks.get(neighbour.cid))).toMatchObject({ i: 34 })
      })
    })

    describe('concurrent writers', () => {
      it('500 concurrent puts and overlapping putMany batches are all readable afterwards', async () => {
        const blocks = Array.from({ length: 500 }, (_, i) => (i % 2 ? raw(1000 + i, 32 + (i % 50)) : node(1000 + i)))
        await Promise.all([
          ...blocks.map((b) => store.blocks.put(b)),
          store.blocks.putMany(blocks.slice(0, 200)),
          store.blocks.putMany(blocks.slice(100, 350)),
          store.blocks.putMany(blocks.slice(300, 500)),
          store.blocks.putMany(blocks.filter((_, i) => i % 3 === 0)),
          ...blocks.slice(0, 50).map((b) => store.blocks.put(b)), // the same block from two writers at once
        ])
        const cids = blocks.map((b) => b.cid)
        expect((await store.blocks.hasMany(cids)).every(Boolean)).toBe(true)
        const got = await store.blocks.getMany(cids)
        expect(got.map(fingerprint)).toEqual(blocks.map((b) => fingerprint(b.bytes)))
        const listed = (await collect(store.blocks.cids())).map(str)
        expect(listed.length).toBe(500) // no duplicates, nothing lost
        expect(new Set(listed)).toEqual(new Set(cids.map(str)))
      })
    })

    describe('sizes', () => {
      it('round-trips a raw block of exactly MAX_BLOCK_SIZE bytes byte-exact, and one byte less', async () => {
        const max = raw(40, MAX_BLOCK_SIZE)
        const almost = raw(41, MAX_BLOCK_SIZE - 1)
        expect(max.bytes.length).toBe(MAX_BLOCK_SIZE)
        await store.blocks.put(max)
        await store.blocks.putMany([almost])
        const [a, b] = await store.blocks.getMany([max.cid, almost.cid])
        expect(fingerprint(a)).toBe(fingerprint(max.bytes))
        expect(fingerprint(b)).toBe(fingerprint(almost.bytes))
        expect(() => verifyBlock(max.cid, a!)).not.toThrow()
      })

      it('round-trips a dag-cbor node that encodes to exactly MAX_BLOCK_SIZE bytes', async () => {
        // A byte string of n >= 65536 bytes has a 5-byte CBOR header.
        const big = encodeNode(seededBytes(42, MAX_BLOCK_SIZE - 5))
        expect(big.bytes.length).toBe(MAX_BLOCK_SIZE)
        await store.blocks.put(big)
        const got = await store.blocks.get(big.cid)
        expect(fingerprint(got)).toBe(fingerprint(big.bytes))
        expect(fingerprint(decodeBlock<Uint8Array>(big.cid, got))).toBe(fingerprint(seededBytes(42, MAX_BLOCK_SIZE - 5)))
      })

      it('putMany of several maximum-size blocks round-trips', async () => {
        const blocks = [raw(43, MAX_BLOCK_SIZE), raw(44, MAX_BLOCK_SIZE), raw(45, MAX_BLOCK_SIZE)]
        await store.blocks.putMany(blocks)
        const got = await store.blocks.getMany(blocks.map((b) => b.cid))
        expect(got.map(fingerprint)).toEqual(blocks.map((b) => fingerprint(b.bytes)))
      })

      it('stores a block of size 0 as present, not missing', async () => {
        const empty = rawBlock(new Uint8Array(0))
        await store.blocks.put(empty)
        expect(await store.blocks.has(empty.cid)).toBe(true)
        expect(await store.blocks.hasMany([empty.cid])).toEqual([true])
        const got = await store.blocks.get(empty.cid)
        expect(got).toBeInstanceOf(Uint8Array)
        expect(got.length).toBe(0)
        const tried = await store.blocks.tryGet(empty.cid)
        expect(tried).toBeInstanceOf(Uint8Array)
        expect(tried!.length).toBe(0)
        const [many] = await store.blocks.getMany([empty.cid])
        expect(many).toBeInstanceOf(Uint8Array)
        expect(many!.length).toBe(0)
        expect(() => verifyBlock(empty.cid, got)).not.toThrow()
        expect((await collect(store.blocks.cids())).map(str)).toEqual([str(empty.cid)])
      })
    })

    describe('cids({ prefix })', () => {
      const raws = Array.from({ length: 12 }, (_, i) => raw(500 + i))
      const nodes = Array.from({ length: 8 }, (_, i) => node(600 + i))
      const all = [...raws, ...nodes].map((b) => str(b.cid))
      const expected = (prefix: string): string[] => all.filter((c) => c.startsWith(prefix)).sort()

      beforeEach(async () => {
        await store.blocks.putMany([...raws.slice(0, 6), ...nodes.slice(0, 4)])
        await Promise.all([...raws.slice(6), ...nodes.slice(4)].map((b) => store.blocks.put(b)))
      })

      it('without a prefix lists every CID once', async () => {
        const listed = (await collect(store.blocks.cids())).map(str)
        expect([...listed].sort()).toEqual([...all].sort())
        for (const cid of await collect(store.blocks.cids())) expect(CID.asCID(cid)).not.toBeNull()
      })

      it('a prefix of 12+ characters of one CID returns exactly the CIDs with that prefix', async () => {
        for (const target of [all[3]!, all[15]!]) {
          for (const length of [12, 20, target.length]) {
            const prefix = target.slice(0, length)
            const listed = (await collect(store.blocks.cids({ prefix }))).map(str)
            expect(listed).toContain(target)
            expect([...listed].sort()).toEqual(expected(prefix))
          }
        }
      })

      it("'bafk' returns every raw block and no dag-cbor node; 'bafy' the reverse", async () => {
        const rawCids = raws.map((b) => str(b.cid)).sort()
        const nodeCids = nodes.map((b) => str(b.cid)).sort()
        expect([...(await collect(store.blocks.cids({ prefix: 'bafk' }))).map(str)].sort()).toEqual(rawCids)
        expect([...(await collect(store.blocks.cids({ prefix: 'bafy' }))).map(str)].sort()).toEqual(nodeCids)
      })

      it('a prefix that matches nothing returns nothing, also when it sorts after every CID', async () => {
        const target = all[0]!
        const last = target[12] === 'a' ? 'b' : 'a'
        const near = target.slice(0, 12) + last // shares 12 characters with a real CID
        expect((await collect(store.blocks.cids({ prefix: near }))).map(str)).toEqual(expected(near))
        expect(await collect(store.blocks.cids({ prefix: 'bz' }))).toEqual([])
        expect(await collect(store.blocks.cids({ prefix: 'bafkreizzzzzzzzzzz' }))).toEqual(expected('bafkreizzzzzzzzzzz'))
      })
    })

    describe('persistence', () => {
      it.skipIf(!supports.persistent)('blocks survive close and reopen', async () => {
        const blocks = [raw(70), node(71), raw(72, MAX_BLOCK_SIZE), rawBlock(new Uint8Array(0))]
        await store.blocks.putMany(blocks.slice(0, 2))
        await store.blocks.put(blocks[2]!)
        await store.blocks.put(blocks[3]!)
        store = await fixture.reopen!()
        const got = await store.blocks.getMany(blocks.map((b) => b.cid))
        expect(got.map(fingerprint)).toEqual(blocks.map((b) => fingerprint(b.bytes)))
        expect([...(await collect(store.blocks.cids())).map(str)].sort()).toEqual(blocks.map((b) => str(b.cid)).sort())
        expect(await store.blocks.has(raw(73).cid)).toBe(false)
      })
    })
  })
}
