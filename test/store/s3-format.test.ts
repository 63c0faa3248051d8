import { CarReader } from '@ipld/car/reader'
import { describe, expect, it } from 'vitest'
import { encodeNode, rawBlock } from '../../src/codec/block.js'
import { cidToString } from '../../src/codec/cid.js'
import { CorruptBlockError } from '../../src/errors.js'
import { decodeName, encodeName } from '../../src/store/s3/cells.js'
import { blockOfSection, decodeMergedIndex, decodePackIndex, encodeMergedIndex, encodePack, encodePackIndex, mergedIndexName, packId, packTime, parseMergedIndexName, timeDigits } from '../../src/store/s3/pack-format.js'
import { isS3Url, parseS3Url } from '../../src/store/s3/url.js'
import { fingerprint, seededBytes, thrownBy } from './fixture.js'

// The S3 layout's formats, without a server: these run wherever the S3 tests are skipped.

describe('S3 packs: a merged index of many packs', () => {
  const packA = 'a'.repeat(64)
  const packB = 'b'.repeat(64)
  const v1 = cidToString(encodeNode({ i: 1 }).cid)
  const raw = cidToString(rawBlock(seededBytes(3, 100)).cid)
  const v0 = 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'
  const sections = [
    { key: v1, pack: packA, offset: 59, length: 120 },
    { key: raw, pack: packB, offset: 2 ** 40 + 7, length: 4_000_000 },
    { key: v0, pack: packA, offset: 179, length: 50 },
  ]

  it('round-trips packs and sections, offsets past 4 GiB included, and names itself by the packs it covers and since when it is complete', () => {
    const bytes = encodeMergedIndex([packA, packB], sections)
    expect(decodeMergedIndex('packs/x.midx', bytes)).toEqual({ packs: [packA, packB], sections })
    const name = mergedIndexName(2, 1_764_979_200_123, 'c'.repeat(64))
    expect(name).toBe(`m/9999999997-1764979200123-${'c'.repeat(64)}.midx`)
    expect(parseMergedIndexName(name)).toEqual({ count: 2, completeBefore: 1_764_979_200_123 })
    // The one covering more packs comes first in a listing.
    expect(mergedIndexName(3, 0, 'd'.repeat(64)) < name).toBe(true)
    // The name stores written before 2026-12 gave them: read, without a time.
    expect(parseMergedIndexName(`0000000002-${'c'.repeat(64)}.midx`)).toEqual({ count: 2 })
    for (const other of [`${packA}.idx`, `2-${'c'.repeat(64)}.midx`, `0000000002-${'C'.repeat(64)}.midx`, `m/9999999997-${'c'.repeat(64)}.midx`, 'pedigree.json']) {
      expect(parseMergedIndexName(other), other).toBeUndefined()
    }
  })

  it('pack ids sort by when the pack was begun; hash-only ids of older stores have no time', () => {
    const early = packId(1_764_979_200_000, 'f'.repeat(64))
    const late = packId(1_764_979_200_001, '0'.repeat(64))
    expect(early).toBe(`t/1764979200000-${'f'.repeat(64)}`)
    expect(early < late).toBe(true)
    expect(packTime(late)).toBe(1_764_979_200_001)
    expect(packTime(packA)).toBeUndefined()
    // A listing that starts after a time's digits skips every pack begun before it.
    expect(`t/${timeDigits(1_764_979_200_001)}` < late && early < `t/${timeDigits(1_764_979_200_001)}`).toBe(true)
  })

  it('refuses to write a section in a pack it does not list, or a key that is not a CID', () => {
    expect(() => encodeMergedIndex([packA], sections)).toThrow(/does not list/)
    expect(() => encodeMergedIndex([packA, packB], [{ ...sections[0]!, key: 'runs/1.json' }])).toThrow(/not a CID/)
  })

  it('a malformed merged index is ERR_CORRUPT naming the object and what is wrong', () => {
    const good = encodeMergedIndex([packA, packB], sections)
    const cases: Array<[Uint8Array, RegExp]> = [
      [new TextEncoder().encode('PDGPIDX1\0\0\0\0\0\0\0\0'), /not a pedigree merged pack index/],
      [good.subarray(0, good.length - 3), /truncated after 2 of 3 sections/],
      [Uint8Array.from([...good, 0]), /1 bytes after the last section/],
    ]
    // Magic, pack count, two packs (length and 64 characters each), section count.
    const firstSection = 8 + 4 + 2 * 65 + 4
    // The second section's pack number, set past the pack list.
    const badPack = Uint8Array.from(good)
    new DataView(badPack.buffer).setUint32(firstSection + 1 + v1.length + 16 + 1 + raw.length, 5)
    cases.push([badPack, /section 1 names pack 5 of 2/])
    // A key that is not a CID's text.
    const badKey = Uint8Array.from(good)
    badKey[firstSection + 1] = 'x'.charCodeAt(0)
    cases.push([badKey, /section 0 holds no CID/])
    for (const [bytes, why] of cases) {
      const e = thrownBy(() => decodeMergedIndex('packs/m.midx', bytes)) as { code?: string; message: string }
      expect(e.code, String(why)).toBe('ERR_CORRUPT')
      expect(e.message, String(why)).toMatch(why)
      expect(e.message).toContain('packs/m.midx')
    }
  })
})

describe('S3 packs: a CAR plus an index', () => {
  const blocks = [rawBlock(seededBytes(1, 1000)), encodeNode({ type: 'task', i: 1 }), rawBlock(new Uint8Array(0)), rawBlock(seededBytes(2, 300_000))]

  it('a pack is a CAR v1 that an IPFS CAR reader reads back block for block', async () => {
    const { car } = encodePack(blocks)
    const reader = await CarReader.fromBytes(car)
    expect(reader.version).toBe(1)
    expect(await reader.getRoots()).toEqual([])
    const got = []
    for await (const b of reader.blocks()) got.push([cidToString(b.cid as never), fingerprint(b.bytes)])
    expect(got).toEqual(blocks.map((b) => [cidToString(b.cid), fingerprint(b.bytes)]))
  })

  it('the index round-trips and points at each block\'s section', () => {
    const { car, sections } = encodePack(blocks)
    const decoded = decodePackIndex('packs/x.idx', encodePackIndex(sections))
    expect(decoded.map((s) => [cidToString(s.cid), s.offset, s.length])).toEqual(sections.map((s) => [cidToString(s.cid), s.offset, s.length]))
    for (const [i, s] of decoded.entries()) {
      const bytes = blockOfSection(s.cid, 'packs/x.car', car.subarray(s.offset, s.offset + s.length), s.length)
      expect(fingerprint(bytes)).toBe(fingerprint(blocks[i]!.bytes))
    }
  })

  it('a section that holds another CID, or is cut short, is ERR_CORRUPT naming the CID asked for', () => {
    const { car, sections } = encodePack(blocks)
    const [a, b] = sections
    const wrong = thrownBy(() => blockOfSection(a!.cid, 'packs/x.car', car.subarray(b!.offset, b!.offset + b!.length), b!.length))
    expect(wrong).toBeInstanceOf(CorruptBlockError)
    expect(wrong.data).toMatchObject({ cid: cidToString(a!.cid) })
    expect(wrong.message).toContain('packs/x.car')
    const short = thrownBy(() => blockOfSection(a!.cid, 'packs/x.car', car.subarray(a!.offset, a!.offset + a!.length - 1), a!.length))
    expect(short.code).toBe('ERR_CORRUPT')
  })

  it('a malformed index object is ERR_CORRUPT naming it', () => {
    const good = encodePackIndex(encodePack(blocks).sections)
    for (const bad of [new Uint8Array(0), new TextEncoder().encode('not an index'), good.subarray(0, good.length - 3), new Uint8Array([...good, 0])]) {
      const err = thrownBy(() => decodePackIndex('lab/packs/y.idx', bad))
      expect(err.code).toBe('ERR_CORRUPT')
      expect(err.message).toContain('lab/packs/y.idx')
    }
  })
})

describe('S3 names and URLs', () => {
  it('ref names encode without "/" and decode back; a prefix encodes to a prefix', () => {
    const names = ['main', 'models/braggnn', 'tags/v1.0', 'models/é', 'models/中', 'a b', '%41', 'x_y-z']
    for (const n of names) {
      const e = encodeName(n)
      expect(e).not.toContain('/')
      expect(e).toMatch(/^[A-Za-z0-9_%-]*$/)
      expect(decodeName(e)).toBe(n)
    }
    expect(encodeName('models/braggnn')).toBe('models%2Fbraggnn')
    for (const [prefix, name] of [['models/', 'models/中'], ['models', 'modelsx'], ['tags/v', 'tags/v1.0']] as const) {
      expect(encodeName(name).startsWith(encodeName(prefix))).toBe(true)
    }
    expect(encodeName('ab').startsWith(encodeName('a/'))).toBe(false)
  })

  it('parses s3://bucket/prefix into one canonical form', () => {
    expect(parseS3Url('s3://lab-provenance/aps')).toEqual({ bucket: 'lab-provenance', prefix: 'aps/', url: 's3://lab-provenance/aps/' })
    expect(parseS3Url('s3://lab-provenance/aps/')).toEqual(parseS3Url('s3://lab-provenance//aps'))
    expect(parseS3Url('s3://lab.provenance')).toEqual({ bucket: 'lab.provenance', prefix: '', url: 's3://lab.provenance/' })
    expect(isS3Url('S3://b/x')).toBe(true)
    expect(isS3Url('/data/s3://x')).toBe(false)
    for (const bad of ['s3://', 's3://ab', 's3://Upper/x', 's3://a..b/x', 's3://bucket/../x', 'http://bucket/x']) {
      expect(thrownBy(() => parseS3Url(bad)).code).toBe('ERR_INVALID_INPUT')
    }
  })
})
