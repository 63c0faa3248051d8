import { describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import { CID, cidToString } from '../../src/codec/cid.js'
import { fromDagJson, parseRecordJson } from '../../src/model/record.js'

const LINK = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

/** What the record's bytes are: the CID of its dag-cbor encoding. */
const cidOf = (value: unknown): string => cidToString(encodeNode(value as never).cid)

describe('parseRecordJson', () => {
  it('gives the same record (same CID) whether or not the text can hold DAG-JSON forms', () => {
    const plain = '{"run":7,"path":"a/b/c","loss":0.25,"tags":["x","y/z"],"nested":{"deep":[1,2,{"k":null}]}}'
    expect(cidOf(parseRecordJson(plain))).toBe(cidOf(fromDagJson(JSON.parse(plain))))
    expect(parseRecordJson(plain)).toEqual(JSON.parse(plain))
  })

  it('reads links and bytes however the key "/" is written', () => {
    for (const key of ['/', '\\/', '\\u002f', '\\u002F']) {
      const value = parseRecordJson(`{"model":{"${key}":"${LINK}"},"blob":{"${key}":{"bytes":"AQID"}}}`)
      expect(CID.asCID(value.model)?.toString()).toBe(LINK)
      expect(value.blob).toEqual(new Uint8Array([1, 2, 3]))
    }
  })

  it('refuses numbers JSON.parse reads as infinite, naming where they are', () => {
    expect(() => parseRecordJson('{"metrics":{"loss":1e999}}', 'run.json')).toThrow(/run\.json: metrics\.loss is not a finite number/)
    expect(() => parseRecordJson('{"xs":[1,-1e400]}', 'run.json')).toThrow(/xs\.1 is not a finite number/)
  })

  it('keeps a key named __proto__ as a key', () => {
    const text = '{"__proto__":{"a":1},"b":2}'
    const fast = parseRecordJson(text)
    const slow = parseRecordJson(`{"__proto__":{"a":1},"b":2,"l":{"/":"${LINK}"}}`)
    expect(Object.keys(fast)).toEqual(['__proto__', 'b'])
    expect(Object.keys(slow)).toEqual(['__proto__', 'b', 'l'])
    expect(Object.getPrototypeOf(slow)).toBe(Object.prototype)
  })
})
