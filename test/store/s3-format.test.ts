import { CarReader } from '@ipld/car/reader'
import { describe, expect, it } from 'vitest'
import { encodeNode, rawBlock } from '../../src/codec/block.js'
import { cidToString } from '../../src/codec/cid.js'
import { CorruptBlockError } from '../../src/errors.js'
import { decodeName, encodeName } from '../../src/store/s3/cells.js'
import { blockOfSection, decodePackIndex, encodePack, encodePackIndex } from '../../src/store/s3/pack-format.js'
import { isS3Url, parseS3Url } from '../../src/store/s3/url.js'
import { fingerprint, seededBytes, thrownBy } from './fixture.js'

// The S3 layout's formats, without a server: these run wherever the S3 tests are skipped.

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
