import * as dagCbor from '@ipld/dag-cbor'
import { describe, expect, it } from 'vitest'
import { DAG_CBOR, RAW, cidFor } from '../../src/codec/cid.js'
import { encodeDagCbor } from '../../src/codec/dag-cbor-encode.js'
import { prng } from '../helpers/random.js'

/** What @ipld/dag-cbor gives for a value (its bytes in hex, or that it throws), and what the fast encoder gives. */
function outcome(encode: () => Uint8Array): string {
  try {
    return Buffer.from(encode()).toString('hex')
  } catch {
    return 'error'
  }
}
const expectSameAsLibrary = (value: unknown): void => {
  expect(outcome(() => encodeDagCbor(value).bytes)).toBe(outcome(() => dagCbor.encode(value)))
}

const NUMBERS = [0, -0, 1, -1, 23, 24, -24, -25, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 1.5, -0.1, 1e300, 5e-324]
const STRINGS = ['', 'a', 'task_id', 'x'.repeat(23), 'y'.repeat(24), 'héllo', '日本語', 'emoji 🎉', '\ufeff', 'a\u0000b', 'z'.repeat(300)]
const KEYS = ['', 'a', 'b', 'aa', 'ab', 'B', 'status', 'metrics', 'task_id', 'k10', 'k9', '_path', 'x'.repeat(30)]

function randomValue(rand: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!
  switch (Math.floor(rand() * (depth > 3 ? 6 : 8))) {
    case 0:
      return pick(NUMBERS)
    case 1:
      return rand() * 2e6 - 1e6
    case 2:
      return pick(STRINGS)
    case 3:
      return pick([true, false, null])
    case 4:
      return rand() < 0.5 ? new Uint8Array(Math.floor(rand() * 30)).map(() => Math.floor(rand() * 256)) : Buffer.from([1, 2, 3])
    case 5:
      return cidFor(rand() < 0.5 ? DAG_CBOR : RAW, new Uint8Array([Math.floor(rand() * 256)]))
    case 6:
      return Array.from({ length: Math.floor(rand() * 5) }, () => randomValue(rand, depth + 1))
    default: {
      const out: Record<string, unknown> = {}
      const n = Math.floor(rand() * 7)
      for (let i = 0; i < n; i++) out[pick(KEYS)] = randomValue(rand, depth + 1)
      return out
    }
  }
}

describe('encodeDagCbor', () => {
  it('gives the bytes @ipld/dag-cbor gives for random IPLD values', () => {
    const rand = prng(5)
    for (let i = 0; i < 5000; i++) {
      const value = randomValue(rand, 0)
      expect(Buffer.from(encodeDagCbor(value).bytes).toString('hex')).toBe(Buffer.from(dagCbor.encode(value)).toString('hex'))
    }
  })

  it('encodes maps of many shapes, keys in any order, as the library does, also when a shape comes back', () => {
    // More shapes than the encoder remembers, each seen several times, interleaved: key lists that
    // share a slot, the same keys in another order, one key more or less.
    const rand = prng(11)
    const names = ['id', 'status', 'a', 'b', 'zz', 'task_id', 'workflow_id', 'metrics', 'x1', 'x10', 'x2', 'host', 'AA', 'aa', '_', 'q'.repeat(40)]
    const shapes: string[][] = []
    for (let i = 0; i < 1500; i++) {
      const keys = names.filter(() => rand() < 0.4)
      for (let j = keys.length - 1; j > 0; j--) {
        const k = Math.floor(rand() * (j + 1))
        ;[keys[j], keys[k]] = [keys[k]!, keys[j]!]
      }
      shapes.push(keys)
    }
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < shapes.length; i += 1 + round) {
        const value = Object.fromEntries(shapes[i]!.map((k, j) => [k, j % 2 ? { [k]: j, n: null } : `${k}${j}`]))
        expectSameAsLibrary(value)
      }
    }
  })

  it('encodes maps too large to cache their shape as the library does', () => {
    const rand = prng(12)
    for (const size of [64, 65, 200, 3000]) {
      const keys = Array.from({ length: size }, (_, i) => `k${Math.floor(rand() * 1e6)}_${i}`)
      expectSameAsLibrary(Object.fromEntries(keys.map((k, i) => [k, i % 3 ? i : { inner: k }])))
      expectSameAsLibrary(Object.fromEntries([...keys].sort().map((k) => [k, null])))
    }
  })

  it('says whether the value holds a link', () => {
    const link = cidFor(RAW, new Uint8Array([1]))
    expect(encodeDagCbor({ a: 1, b: [{ c: 'x' }] }).linked).toBe(false)
    expect(encodeDagCbor({ a: 1, b: [{ c: link }] }).linked).toBe(true)
  })

  it('leaves everything unusual to @ipld/dag-cbor: same bytes or same failure', () => {
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    class Point {
      x = 1
    }
    const cases: unknown[] = [
      undefined,
      { a: undefined },
      [1, undefined],
      // eslint-disable-next-line no-sparse-arrays
      [1, , 3],
      NaN,
      Infinity,
      { x: -Infinity },
      2 ** 64,
      -(2 ** 60),
      10n,
      new Map([['a', 1]]),
      new Date(0),
      new Point(),
      Object.assign(Object.create(null), { a: 1 }),
      { constructor: 'x', b: 2 },
      { 'é': 1, e: 2 },
      { 日本: 1, ab: 2, b: 3 },
      { '/': 'bafy' },
      { '/': new Uint8Array([1]), bytes: new Uint8Array([1]) },
      'lone \ud800 high',
      'lone \udc00 low',
      'pair \ud83c\udf89 ok',
      new Float32Array([1, 2]),
      new ArrayBuffer(3),
      () => 1,
      Symbol('s'),
      cyclic,
      { a: new Uint8Array(100_000) },
      'x'.repeat(70_000),
    ]
    for (const c of cases) expectSameAsLibrary(c)
  })
})
