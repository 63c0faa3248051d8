import * as dagCbor from '@ipld/dag-cbor'
import { describe, expect, it } from 'vitest'
import { CID, DAG_CBOR, RAW, cidFor } from '../../src/codec/cid.js'
import { decodeDagCbor, decodeDagCborFields } from '../../src/codec/dag-cbor-decode.js'
import { prng } from '../helpers/random.js'

/** A text form that keeps what equality would gloss over: key order, types, -0, CIDs, bytes. */
function show(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'number') return Object.is(value, -0) ? 'n:-0' : `n:${value}`
  if (typeof value === 'bigint') return `big:${value}`
  if (typeof value === 'string') return `s:${JSON.stringify(value)}`
  if (typeof value === 'boolean') return `b:${value}`
  const cid = CID.asCID(value)
  if (cid) return `cid:${cid.toString()}`
  if (value instanceof Uint8Array) return `bytes:${Buffer.from(value).toString('hex')}:${value.constructor.name}`
  if (Array.isArray(value)) return `[${value.map(show).join(',')}]`
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) === Object.prototype ? '' : 'proto!'
    return `${proto}{${Object.keys(value)
      .map((k) => `${JSON.stringify(k)}:${show((value as Record<string, unknown>)[k])}`)
      .join(',')}}`
  }
  return `?${String(value)}`
}

/** What @ipld/dag-cbor gives (a value or an error), and what the fast decoder gives. */
function outcome(decode: () => unknown): string {
  try {
    return `ok ${show(decode())}`
  } catch {
    return 'error'
  }
}

const expectSameAsLibrary = (bytes: Uint8Array): void => {
  expect(outcome(() => decodeDagCbor(bytes))).toBe(outcome(() => dagCbor.decode(bytes)))
}

const INTS = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]
const STRINGS = ['', 'a', 'task_id', 'x'.repeat(31), 'y'.repeat(32), 'héllo', '日本語', '\ufeffbom', 'emoji 🎉', 'a\u0000b']

function randomValue(rand: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
  switch (Math.floor(rand() * (depth > 3 ? 7 : 9))) {
    case 0:
      return pick(INTS) * (rand() < 0.5 ? -1 : 1)
    case 1:
      return rand() < 0.5 ? rand() * 1e6 - 5e5 : pick([0.5, -0, 1e300, -1e-300, 0.1])
    case 2:
      return pick(STRINGS) + (rand() < 0.3 ? String(Math.floor(rand() * 1000)) : '')
    case 3:
      return pick([true, false, null])
    case 4:
      return new Uint8Array(Math.floor(rand() * 40)).map(() => Math.floor(rand() * 256))
    case 5:
      return cidFor(rand() < 0.5 ? DAG_CBOR : RAW, new Uint8Array([Math.floor(rand() * 256)]))
    case 6:
      return Math.floor(rand() * 1e9)
    case 7: {
      const n = Math.floor(rand() * 6)
      return Array.from({ length: n }, () => randomValue(rand, depth + 1))
    }
    default: {
      const out: Record<string, unknown> = {}
      const n = Math.floor(rand() * 8)
      for (let i = 0; i < n; i++) out[pick(STRINGS) + (rand() < 0.5 ? String(i) : '')] = randomValue(rand, depth + 1)
      return out
    }
  }
}

describe('decodeDagCbor', () => {
  it('gives what @ipld/dag-cbor gives for random IPLD values (key order, types and all)', () => {
    const rand = prng(7)
    for (let i = 0; i < 3000; i++) {
      const bytes = dagCbor.encode(randomValue(rand, 0))
      expect(show(decodeDagCbor(bytes))).toBe(show(dagCbor.decode(bytes)))
    }
  })

  it('accepts Buffers and views at an offset, and gives byte strings of their own', () => {
    const value = { b: new Uint8Array([1, 2, 3]), l: cidFor(RAW, new Uint8Array([9])) }
    const enc = dagCbor.encode(value)
    const framed = Buffer.concat([Buffer.from([0xff, 0xff]), enc, Buffer.from([0xff])]).subarray(2, 2 + enc.length)
    const got = decodeDagCbor<{ b: Uint8Array; l: CID }>(framed)
    expect(show(got)).toBe(show(value))
    expect(got.b.constructor).toBe(Uint8Array)
    framed.fill(0)
    expect(show(got)).toBe(show(value))
  })

  it('leaves everything unusual to @ipld/dag-cbor: same value or same failure', () => {
    const cases: number[][] = [
      [0x18, 0x17], // 23 in two bytes: not the shortest form
      [0x19, 0x00, 0xff],
      [0x1a, 0x00, 0x00, 0xff, 0xff],
      [0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
      [0x1b, 0x00, 0x20, 0, 0, 0, 0, 0, 0], // 2^53: a BigInt there
      [0x3b, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
      [0x9f, 0x01, 0xff], // indefinite array
      [0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02], // repeated key
      [0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02], // keys out of order, no repeat
      [0xa1, 0x01, 0x02], // integer key
      [0xa1, 0x69, ...Buffer.from('__proto__'), 0xa0],
      [0xf7], // undefined: null
      [0xf9, 0x3c, 0x00], // float16
      [0xfa, 0x3f, 0x80, 0x00, 0x00], // float32
      [0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], // NaN
      [0xfb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0], // Infinity
      [0xc1, 0x01], // tag 1
      [0xd8, 0x2a, 0x42, 0x01, 0x02], // tag 42 without the 0x00 prefix
      [0xd8, 0x2a, 0x43, 0x00, 0x01, 0x02], // tag 42 with bytes that are no CID
      [0xd8, 0x2a, 0x01], // tag 42 on a non-bytes item
      [0x01, 0x02], // trailing bytes
      [0x82, 0x01], // truncated
      [0x62, 0xc3, 0x28], // invalid UTF-8
      [0xe0], // simple value
      [0xff], // break
      [],
    ]
    for (const c of cases) expectSameAsLibrary(new Uint8Array(c))
  })
})

describe('decodeDagCborFields', () => {
  it('gives exactly the named fields of the whole decoded map, or undefined', () => {
    const rand = prng(11)
    let partial = 0
    for (let i = 0; i < 3000; i++) {
      // Mostly maps (what records are), some other values.
      const value = rand() < 0.8 ? Object.fromEntries(Array.from({ length: 1 + Math.floor(rand() * 6) }, (_, j) => [`f${j}`, randomValue(rand, 2)])) : randomValue(rand, 3)
      const bytes = dagCbor.encode(value)
      const whole = dagCbor.decode(bytes)
      const names = whole !== null && typeof whole === 'object' && !Array.isArray(whole) ? Object.keys(whole) : ['a']
      const fields = new Set(names.filter(() => rand() < 0.4))
      const got = decodeDagCborFields(bytes, fields)
      if (got === undefined) continue
      partial++
      const expected: Record<string, unknown> = {}
      for (const k of Object.keys(whole as object)) if (fields.has(k)) expected[k] = (whole as Record<string, unknown>)[k]
      expect(show(got)).toBe(show(expected))
    }
    expect(partial).toBeGreaterThan(1500)
  })

  it('gives up (undefined) on what it cannot be sure of, and on bad bytes in a skipped field', () => {
    const fields = new Set(['a'])
    const map = (...parts: number[][]): Uint8Array => new Uint8Array([0xa0 + parts.length / 2, ...parts.flat()])
    const a = [0x61, 0x61]
    expect(decodeDagCborFields(map(a, [0x01], [0x61, 0x62], [0x02]), fields)).toEqual({ a: 1 })
    expect(decodeDagCborFields(map([0x61, 0x62], [0x02], a, [0x01]), fields)).toBeUndefined() // out of order
    expect(decodeDagCborFields(map(a, [0x01], [0x61, 0x62], [0x18, 0x01]), fields)).toBeUndefined() // non-minimal int
    expect(decodeDagCborFields(map(a, [0x01], [0x61, 0x62], [0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]), fields)).toBeUndefined() // NaN
    expect(decodeDagCborFields(map(a, [0x01], [0x61, 0x62], [0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02]), fields)).toBeUndefined() // repeat inside
    expect(decodeDagCborFields(map(a, [0x01], [0x61, 0x62], [0xd8, 0x2a, 0x43, 0x00, 0x01, 0x02]), fields)).toBeUndefined() // bad link
    expect(decodeDagCborFields(new Uint8Array([0x82, 0x01, 0x02]), fields)).toBeUndefined() // not a map
    expect(decodeDagCborFields(new Uint8Array([...map(a, [0x01]), 0x00]), fields)).toBeUndefined() // trailing bytes
  })
})
