import { describe, expect, it } from 'vitest'
import { base32 } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import { base32Multibase, cidFor, cidToString, DAG_CBOR, RAW, sameCid } from '../../src/codec/cid.js'
import { prng } from '../helpers/random.js'

describe('CID text', () => {
  it('base32Multibase gives exactly what multiformats gives, for every length and byte pattern', () => {
    const rand = prng(5)
    for (let length = 0; length <= 300; length++) {
      for (const fill of ['random', 'zeros', 'ones'] as const) {
        const bytes = new Uint8Array(length).map(() => (fill === 'random' ? Math.floor(rand() * 256) : fill === 'zeros' ? 0 : 255))
        expect(base32Multibase(bytes)).toBe(base32.encode(bytes))
      }
    }
  })

  it('cidToString is the CID’s own text, and parses back to the same CID', () => {
    const rand = prng(6)
    for (let i = 0; i < 200; i++) {
      const bytes = new Uint8Array(1 + Math.floor(rand() * 500)).map(() => Math.floor(rand() * 256))
      const cid = cidFor(i % 2 ? DAG_CBOR : RAW, bytes)
      const text = cidToString(cid)
      expect(text).toBe(CID.decode(cid.bytes).toString())
      expect(CID.parse(text).equals(cid)).toBe(true)
    }
    // A fixed one, so that the text form cannot drift.
    expect(cidToString(cidFor(RAW, new TextEncoder().encode('pedigree')))).toMatchInlineSnapshot(`"bafkreiayi4du2hbf5jkwe3vn5vtykoxwv76zul7b4mqbg3dk65qchj5thy"`)
  })

  it('cidToString gives a CIDv0 (a link inside a record) its one text form, base58btc', () => {
    const v0 = CID.parse('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
    expect(cidToString(v0)).toBe('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
    expect(CID.parse(cidToString(v0)).equals(v0)).toBe(true)
  })

  it('sameCid compares bytes, and takes absent CIDs as equal only to each other', () => {
    const a = cidFor(RAW, new Uint8Array([1]))
    const b = cidFor(RAW, new Uint8Array([2]))
    expect(sameCid(a, CID.decode(a.bytes))).toBe(true)
    expect(sameCid(a, b)).toBe(false)
    expect(sameCid(a, cidFor(DAG_CBOR, new Uint8Array([1])))).toBe(false)
    expect(sameCid(null, undefined)).toBe(true)
    expect(sameCid(a, null)).toBe(false)
    expect(sameCid(undefined, b)).toBe(false)
  })
})
