import { describe, expect, it } from 'vitest'
import { rawBlock } from '../../src/codec/block.js'
import { applyDelta, encodeDelta, parseDelta } from '../../src/codec/delta.js'
import { fingerprint, seededBytes, thrownBy } from '../store/fixture.js'

const KiB = 1024
const base = seededBytes(1, 256 * KiB)
const baseCid = rawBlock(base).cid

/** The delta's round trip: it names the base, and applying it gives the target exactly. */
function roundTrip(target: Uint8Array, limit = target.length): Uint8Array {
  const stored = encodeDelta(baseCid, base, target, limit)
  expect(stored).toBeDefined()
  const { base: named, ops } = parseDelta(stored!)
  expect(named.equals(baseCid)).toBe(true)
  expect(fingerprint(applyDelta(base, ops, target.length))).toBe(fingerprint(target))
  return stored!
}

function withRegion(bytes: Uint8Array, at: number, length: number, seed: number): Uint8Array {
  const out = bytes.slice()
  out.set(seededBytes(seed, length), at)
  return out
}

describe('delta encoding of a block against a similar one', () => {
  it('a block equal to its base costs a few bytes', () => {
    expect(roundTrip(base).length).toBeLessThan(60)
  })

  it('a region rewritten in place costs about the region', () => {
    for (const [at, length] of [
      [0, 20 * KiB],
      [100 * KiB, 100 * KiB],
      [base.length - 7, 7],
      [12345, 1],
    ] as const) {
      const stored = roundTrip(withRegion(base, at, length, at + 7))
      expect(stored.length).toBeGreaterThanOrEqual(length)
      expect(stored.length).toBeLessThan(length + 200)
    }
  })

  it('finds the base bytes when they moved: insertion, deletion, and a chunk cut at another offset', () => {
    const inserted = new Uint8Array(base.length + 10)
    inserted.set(base.subarray(0, 5000))
    inserted.set(seededBytes(2, 10), 5000)
    inserted.set(base.subarray(5000), 5010)
    expect(roundTrip(inserted).length).toBeLessThan(100)
    const deleted = new Uint8Array(base.length - 3000)
    deleted.set(base.subarray(0, 70_000))
    deleted.set(base.subarray(73_000), 70_000)
    expect(roundTrip(deleted).length).toBeLessThan(100)
    // A later chunk boundary: the target is a window of the base plus new bytes after it.
    const shifted = new Uint8Array(200 * KiB)
    shifted.set(base.subarray(33_333, 33_333 + 150 * KiB))
    shifted.set(seededBytes(3, 50 * KiB), 150 * KiB)
    expect(roundTrip(shifted).length).toBeLessThan(50 * KiB + 100)
  })

  it('targets shorter than the match window and empty ones are inserted whole', () => {
    for (const n of [0, 1, 31, 32, 33]) roundTrip(base.subarray(1000, 1000 + n), n + 60)
  })

  it('gives up (undefined) when the delta would pass the limit, and never returns more than it', () => {
    const unrelated = seededBytes(4, 256 * KiB)
    expect(encodeDelta(baseCid, base, unrelated, 128 * KiB)).toBeUndefined()
    const half = withRegion(base, 0, 130 * KiB, 5)
    expect(encodeDelta(baseCid, base, half, 128 * KiB)).toBeUndefined()
    const stored = encodeDelta(baseCid, base, half, 140 * KiB)
    expect(stored!.length).toBeLessThanOrEqual(140 * KiB)
  })

  it('an empty base gives a delta that inserts everything', () => {
    const empty = new Uint8Array(0)
    const target = seededBytes(6, 1000)
    const stored = encodeDelta(rawBlock(empty).cid, empty, target, 2000)!
    expect(fingerprint(applyDelta(empty, parseDelta(stored).ops, 1000))).toBe(fingerprint(target))
  })

  it('malformed deltas are refused with what is wrong, never a wrong-sized block', () => {
    const stored = roundTrip(withRegion(base, 1000, 2000, 7))
    const { ops } = parseDelta(stored)
    expect(thrownBy(() => applyDelta(base, ops, base.length + 1)).message).toMatch(/gives 262144 bytes, the block has 262145/)
    expect(thrownBy(() => applyDelta(base, ops, base.length - 1)).message).toMatch(/writes past the block's/)
    expect(thrownBy(() => applyDelta(base.subarray(0, 1000), ops, base.length)).message).toMatch(/copies \[\d+, \d+\) from a base of 1000 bytes/)
    expect(thrownBy(() => applyDelta(base, ops.subarray(0, ops.length - 1), base.length)).message).toMatch(/./)
    expect(thrownBy(() => applyDelta(base, Uint8Array.of(200, 1, 9), 100)).message).toMatch(/inserts 100 bytes, 1 remain/)
    expect(thrownBy(() => parseDelta(Uint8Array.of(40, 1, 2))).message).toMatch(/base CID of 40 bytes in 3/)
  })
})
