import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Repository } from '../../src/repo/repository.js'
import type { CommitEdit, CommitResult } from '../../src/repo/commit.js'
import type { Blockstore } from '../../src/store/blockstore.js'
import type { CID } from '../../src/codec/cid.js'
import { NotFoundError } from '../../src/errors.js'

/** One open repository for a test, with a scratch directory beside it. */
export interface RepoFixture {
  repo: Repository
  /** A fresh temporary directory (holds the `.pedigree` store for level). */
  dir: string
  /** The `.pedigree` folder, for level. */
  root?: string
  cleanup(): Promise<void>
}

export const AUTHOR = { name: 'ana', email: 'ana@example.org' }
/** A fixed time, so that commits are the same on every run. */
export const T0 = Date.UTC(2024, 0, 2, 3, 4, 5)

/** A LevelDB store in a fresh temp dir, as a user would create one. */
export async function levelRepo(): Promise<RepoFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'pedigree-'))
  const root = join(dir, '.pedigree')
  let closed = false
  const fx: RepoFixture = {
    repo: await Repository.init(root),
    dir,
    root,
    async cleanup() {
      // The fixture's repository now: a test may have closed and reopened it (fsck's corrupter).
      if (!closed) await fx.repo.close().catch(() => {})
      closed = true
      await rm(dir, { recursive: true, force: true })
    },
  }
  return fx
}

export async function memoryRepo(): Promise<RepoFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'pedigree-'))
  const repo = Repository.memory()
  return {
    repo,
    dir,
    async cleanup() {
      await repo.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export const BACKENDS = [
  { name: 'level', open: levelRepo },
  { name: 'memory', open: memoryRepo },
] as const

/** Every item of an async iterable, in order. */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

/** Commit `edits` to `ref` at T0 + n seconds. */
export function commitAt(repo: Repository, ref: string, n: number, edits: CommitEdit[], message = `commit ${n}`): Promise<CommitResult> {
  return repo.commit({ ref, author: AUTHOR, time: T0 + n * 1000, message, edits })
}

export const record = (path: string, value: Record<string, unknown>): CommitEdit => ({ type: 'record', path, value })
export const text = (path: string, s: string): CommitEdit => ({ type: 'bytes', path, bytes: new TextEncoder().encode(s) })

/** Bytes of a ReadableStream-like async iterable, joined. */
export async function bytesOf(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const p of it) parts.push(p)
  return Buffer.concat(parts)
}

/** Wrap a blockstore to count reads (`get`, `getMany`, `tryGet`). */
export function countingBlocks(inner: Blockstore): Blockstore & { reads: number } {
  const wrapper = {
    reads: 0,
    supports: inner.supports,
    get: (cid: CID) => {
      wrapper.reads++
      return inner.get(cid)
    },
    tryGet: (cid: CID) => {
      wrapper.reads++
      return inner.tryGet(cid)
    },
    getMany: (cids: readonly CID[]) => {
      wrapper.reads += cids.length
      return inner.getMany(cids)
    },
    has: (cid: CID) => inner.has(cid),
    hasMany: (cids: readonly CID[]) => inner.hasMany(cids),
    put: inner.put.bind(inner),
    putMany: inner.putMany.bind(inner),
    cids: inner.cids.bind(inner),
  }
  return wrapper
}

/** Wrap a blockstore so that the given blocks are absent, as if deleted from disk. */
export function withoutBlocks(inner: Blockstore, gone: CID[]): Blockstore {
  const isGone = (cid: CID): boolean => gone.some((g) => g.equals(cid))
  return {
    supports: inner.supports,
    async get(cid) {
      if (isGone(cid)) throw new NotFoundError('block', cid.toString())
      return inner.get(cid)
    },
    async tryGet(cid) {
      return isGone(cid) ? undefined : inner.tryGet(cid)
    },
    async getMany(cids) {
      const got = await inner.getMany(cids)
      return got.map((b, i) => (isGone(cids[i]!) ? undefined : b))
    },
    async has(cid) {
      return !isGone(cid) && (await inner.has(cid))
    },
    async hasMany(cids) {
      const got = await inner.hasMany(cids)
      return got.map((b, i) => b && !isGone(cids[i]!))
    },
    put: inner.put.bind(inner),
    putMany: inner.putMany.bind(inner),
    async *cids(options) {
      for await (const c of inner.cids(options)) if (!isGone(c)) yield c
    },
  }
}
