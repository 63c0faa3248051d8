import { describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import { CID, cidToString } from '../../src/codec/cid.js'
import { MAX_RECORD_DEPTH, fromDagJson, parseRecordJson } from '../../src/model/record.js'

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

  it('names null and arrays for what they are when a record must be an object', () => {
    expect(() => parseRecordJson('null', 'in.json')).toThrow('in.json: a record must be a JSON object, got null')
    expect(() => parseRecordJson('[1]', 'in.json')).toThrow('in.json: a record must be a JSON object, got an array')
    expect(() => parseRecordJson('7', 'in.json')).toThrow('in.json: a record must be a JSON object, got number')
  })

  it('refuses integers JSON.parse would round, naming line and column and suggesting a string', () => {
    expect(() => parseRecordJson('{"id":"a","big":9007199254740993}', 'the input', { firstLine: 7 })).toThrow(
      'the input: line 7, column 17: the integer 9007199254740993 is beyond ±(2^53−1) and would not be stored exactly; write it as a string ("9007199254740993")',
    )
    expect(() => parseRecordJson('{\n  "a": 1,\n  "n": [1, -18446744073709551616]\n}', 'big.json')).toThrow(/^big\.json: line 3, column 12: the integer -18446744073709551616 /)
    expect(() => parseRecordJson('{"n":9007199254740992}')).toThrow(/9007199254740992/)
    expect(() => parseRecordJson('{"n":-9007199254740992}')).toThrow(/-9007199254740992/)
  })

  it('keeps safe integers, floats, exponents, and long digit runs inside strings (escapes included)', () => {
    const text = String.raw`{"max":9007199254740991,"min":-9007199254740991,"f":12345678901234567.5,"e":12345678901234567e2,"s":"18446744073709551616","q":"a\"18446744073709551616\\","k\"99999999999999999":0.12345678901234567890}`
    const value = parseRecordJson(text)
    expect(value).toEqual(JSON.parse(text))
    expect(value.max).toBe(Number.MAX_SAFE_INTEGER)
  })

  it(`refuses nesting deeper than ${MAX_RECORD_DEPTH}, however deep, without overflowing the stack`, () => {
    const nested = (arrays: number, extra = ''): string => `{"deep":${'['.repeat(arrays)}${']'.repeat(arrays)},"id":"d"${extra}}`
    // The record is level 1: MAX_RECORD_DEPTH − 1 arrays inside it is the limit.
    expect(() => parseRecordJson(nested(MAX_RECORD_DEPTH - 1))).not.toThrow()
    for (const n of [MAX_RECORD_DEPTH, 2500, 100_000]) {
      expect(() => parseRecordJson(nested(n), 'the input')).toThrow(`the input: objects and arrays nested more than ${MAX_RECORD_DEPTH} deep (under "deep"); a record may nest at most ${MAX_RECORD_DEPTH} levels`)
      // Also where the text holds DAG-JSON links, which take another path.
      expect(() => parseRecordJson(nested(n, `,"l":{"/":"${LINK}"}`))).toThrow(/nested more than 512 deep/)
    }
    // Records given as values (ingest's library callers) are held to the same limit.
    let deep: unknown = []
    for (let i = 0; i < 10_000; i++) deep = [deep]
    expect(() => fromDagJson({ deep })).toThrow(/nested more than 512 deep \(under "deep"\)/)
  })
})

