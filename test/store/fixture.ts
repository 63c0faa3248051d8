import { createHash } from 'node:crypto'
import type { CID } from '../../src/codec/cid.js'
import type { Store } from '../../src/store/store.js'

/**
 * One freshly opened backend, as a conformance suite sees it. A new backend (S3, …) plugs
 * into the suites by writing a factory that returns this.
 */
export interface BackendFixture {
  /** An empty store, open. */
  store: Store
  /** Close whatever store is open now (the first one, or the last `reopen`) and remove its data. */
  cleanup: () => Promise<void>
  /**
   * Replace the bytes stored under `cid` without changing the CID, as disk corruption
   * would. Backends without such a hook get mismatching bytes through `put`, which does
   * not re-hash.
   */
  corrupt?: (cid: CID, bytes: Uint8Array) => Promise<void>
  /** Close the open store and open the same location again (required when `persistent`). */
  reopen?: () => Promise<Store>
}

/** What a backend promises beyond the common interface; the suites skip what it does not. */
export interface SuiteSupports {
  /** Contents survive close and reopen. */
  persistent: boolean
}

export interface SuiteOptions {
  /** Shown in the describe blocks: `memory`, `level`, `s3`. */
  name: string
  /** Opens an empty store; called once per test. */
  open: () => Promise<BackendFixture>
  supports: SuiteSupports
  /** Per-test timeout in ms, for backends across a network (default: vitest's). */
  timeoutMs?: number
}

/** Every item of an async iterable, in order. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of items) out.push(item)
  return out
}

/** The rejection of a promise (fails the test if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<Error & { code?: string; data?: Record<string, unknown> }> {
  try {
    await promise
  } catch (e) {
    return e as Error & { code?: string; data?: Record<string, unknown> }
  }
  throw new Error('expected the promise to reject, but it resolved')
}

/** What a synchronous call throws (fails the test if it returns). */
export function thrownBy(fn: () => unknown): Error & { code?: string; data?: Record<string, unknown> } {
  try {
    fn()
  } catch (e) {
    return e as Error & { code?: string; data?: Record<string, unknown> }
  }
  throw new Error('expected the call to throw, but it returned')
}

/** Seeded bytes (xorshift32): the same seed always gives the same bytes, hence the same CIDs. */
export function seededBytes(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = (seed * 2654435761 + 1) >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

/** A short fingerprint of bytes: length and sha256, so a failing 1 MiB comparison prints one line. */
export function fingerprint(bytes: Uint8Array | undefined): string {
  if (bytes === undefined) return 'undefined'
  return `${bytes.length}:${createHash('sha256').update(bytes).digest('hex')}`
}
