import { Query } from 'mingo'
import { describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import { CID, cidFor, RAW } from '../../src/codec/cid.js'
import { decodeDagCbor } from '../../src/codec/dag-cbor-decode.js'
import { fieldPaths, scanFields } from '../../src/codec/record-fields.js'
import { quickFilter } from '../../src/repo/query-filter.js'

/** A small deterministic generator (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const LINK = cidFor(RAW, new Uint8Array([1, 2, 3]))
const STRINGS = ['a', 'b', 'done', 'failed', '', 'é', '10', 'zz']
const NUMBERS = [0, -0, 1, -1, 0.05, 0.5, 2, 23, 24, 255, 256, 65536, 2 ** 32, -(2 ** 33), 1e-7, 0.049999]

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)]!
}

function scalar(rand: () => number): unknown {
  const r = rand()
  if (r < 0.45) return pick(rand, NUMBERS)
  if (r < 0.75) return pick(rand, STRINGS)
  if (r < 0.85) return rand() < 0.5
  return null
}

/** A value at a field: mostly scalars, sometimes a list, a map, a link or bytes. */
function value(rand: () => number, depth: number): unknown {
  const r = rand()
  if (r < 0.7 || depth > 2) return scalar(rand)
  if (r < 0.8) return [scalar(rand), scalar(rand)]
  if (r < 0.9) return record(rand, depth + 1)
  return r < 0.95 ? LINK : new Uint8Array([9])
}

const KEYS = ['a', 'b', 'loss', 'status', 'metrics', 'x', 'constructor', '0']

function record(rand: () => number, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of KEYS) if (rand() < 0.5) out[k] = k === 'metrics' && depth === 0 && rand() < 0.8 ? record(rand, depth + 1) : value(rand, depth)
  return out
}

const PATHS = ['a', 'b', 'loss', 'status', 'metrics.loss', 'metrics.a', 'metrics.metrics.b', 'x', 'constructor', '0', 'metrics.0']
const OPS = ['$eq', '$ne', '$lt', '$lte', '$gt', '$gte', '$in', '$nin']

function condition(rand: () => number): unknown {
  if (rand() < 0.15) return scalar(rand) ?? 1
  const spec: Record<string, unknown> = {}
  const n = 1 + Math.floor(rand() * 2)
  for (let i = 0; i < n; i++) {
    const op = pick(rand, OPS)
    spec[op] = op === '$in' || op === '$nin' ? [scalar(rand) ?? 'a', scalar(rand) ?? 0] : (scalar(rand) ?? 0)
  }
  return spec
}

function filter(rand: () => number, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const n = 1 + Math.floor(rand() * 2)
  for (let i = 0; i < n; i++) {
    const r = rand()
    if (depth < 2 && r < 0.1) out.$and = [filter(rand, depth + 1), filter(rand, depth + 1)]
    else if (depth < 2 && r < 0.2) out.$or = [filter(rand, depth + 1), filter(rand, depth + 1)]
    else out[pick(rand, PATHS)] = condition(rand)
  }
  return out
}

/** The record as a query row shows it to mingo: links as strings, bytes in DAG-JSON form. */
function row(value: Record<string, unknown>): Record<string, unknown> {
  const plain = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v
    const cid = CID.asCID(v)
    if (cid) return cid.toString()
    if (v instanceof Uint8Array) return { '/': { bytes: 'CQ' } }
    if (Array.isArray(v)) return v.map(plain)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
  }
  return { _path: 'p', _cid: 'c', ...(plain(value) as Record<string, unknown>) }
}

describe('quick filter (a verdict from a record’s bytes)', () => {
  it('never contradicts mingo, and decides the plain cases', () => {
    const rand = prng(7)
    let decided = 0
    let checked = 0
    for (let f = 0; f < 400; f++) {
      const doc = filter(rand)
      const quick = quickFilter(doc)
      if (!quick) continue
      const q = new Query(doc)
      for (let r = 0; r < 50; r++) {
        const value = record(rand)
        const verdict = quick.verdict(encodeNode(value).bytes)
        checked++
        if (verdict === undefined) continue
        decided++
        expect({ doc, value, verdict }).toEqual({ doc, value, verdict: q.test(row(value)) })
      }
    }
    expect(checked).toBeGreaterThan(10_000)
    expect(decided / checked).toBeGreaterThan(0.15)
  })

  it('decides a numeric range on a nested field of every task-like record', () => {
    const quick = quickFilter({ 'metrics.loss': { $lt: 0.05 } })!
    expect(quick).toBeDefined()
    for (const loss of [0, 0.01, 0.049999, 0.05, 0.5, 1, 3]) {
      const bytes = encodeNode({ task_id: 't1', status: 'done', metrics: { loss, acc: 0.9 }, hyperparameters: { lr: 1e-3, opt: 'adam' }, tags: ['x'] }).bytes
      expect(quick.verdict(bytes)).toBe(loss < 0.05)
    }
  })

  it('compiles only what it can judge: not $regex, $exists, $expr, $not, embedded documents, null, _path', () => {
    for (const doc of [
      { name: { $regex: '^a' } },
      { name: { $exists: true } },
      { $expr: { $gt: ['$a', '$b'] } },
      { a: { $not: { $lt: 1 } } },
      { metrics: { loss: 1 } },
      { a: null },
      { a: { $in: [null, 1] } },
      { _path: 'x' },
      { 'metrics.loss': { $lt: 1 }, metrics: { $exists: true } },
      { $nor: [{ a: 1 }] },
      {},
    ]) {
      expect(quickFilter(doc as Record<string, unknown>), JSON.stringify(doc)).toBeUndefined()
    }
  })
})

describe('scanFields', () => {
  it('reads the scalars at the paths as the decoder does, undefined where absent', () => {
    const rand = prng(11)
    const paths = ['a', 'metrics.loss', 'metrics.a', 'status', 'zz']
    const compiled = fieldPaths(paths)!
    const out: unknown[] = []
    let read = 0
    for (let i = 0; i < 2000; i++) {
      const bytes = encodeNode(record(rand)).bytes
      if (!scanFields(bytes, compiled, out)) continue
      read++
      const value = decodeDagCbor<Record<string, unknown>>(bytes)
      const at = (p: string): unknown => p.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], value)
      expect(out).toEqual(paths.map(at))
    }
    expect(read).toBeGreaterThan(200)
  })

  it('refuses what the decoder would refuse or build differently: bad bytes, keys out of order, float32, a list on the path', () => {
    const compiled = fieldPaths(['a'])!
    const out: unknown[] = []
    const ok = encodeNode({ a: 1, b: 'x' }).bytes
    expect(scanFields(ok, compiled, out)).toBe(true)
    expect(out).toEqual([1])
    // Truncated, trailing byte, keys out of order (b before a), float32, a non-shortest integer.
    expect(scanFields(ok.subarray(0, ok.length - 1), compiled, out)).toBe(false)
    expect(scanFields(new Uint8Array([...ok, 0]), compiled, out)).toBe(false)
    expect(scanFields(new Uint8Array([0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02]), compiled, out)).toBe(false)
    expect(scanFields(new Uint8Array([0xa1, 0x61, 0x61, 0xfa, 0x3f, 0x80, 0, 0]), compiled, out)).toBe(false)
    expect(scanFields(new Uint8Array([0xa1, 0x61, 0x61, 0x18, 0x01]), compiled, out)).toBe(false)
    expect(scanFields(encodeNode({ a: [1] }).bytes, compiled, out)).toBe(false)
    expect(scanFields(encodeNode({ a: { b: 1 } }).bytes, compiled, out)).toBe(false)
    expect(scanFields(encodeNode([1]).bytes, compiled, out)).toBe(false)
    expect(fieldPaths(['a', 'a.b'])).toBeUndefined()
    expect(fieldPaths(['a..b'])).toBeUndefined()
  })
})
