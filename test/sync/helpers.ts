import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Block } from '../../src/codec/block.js'
import type { CID } from '../../src/codec/cid.js'
import { Repository } from '../../src/repo/repository.js'
import type { PutBlocksResult, RemoteRef, RemoteRefResult, RemoteRefUpdate, Transport } from '../../src/sync/transport.js'

export const WHO = { name: 'ana', email: 'ana@example.org' }

/** A scratch folder and LevelDB stores made in it, all removed by `cleanup`. */
export class Stores {
  private constructor(readonly dir: string) {}
  private readonly open: Repository[] = []

  static async make(): Promise<Stores> {
    return new Stores(await mkdtemp(join(tmpdir(), 'pedigree-sync-')))
  }

  /** The `.pedigree` folder of store `name`. */
  root(name: string): string {
    return join(this.dir, name, '.pedigree')
  }

  /** Create store `name` and keep it open. */
  async init(name: string): Promise<Repository> {
    const repo = await Repository.init(this.root(name))
    this.open.push(repo)
    return repo
  }

  /** Create store `name` and close it again (a remote that push, fetch and clone open themselves). */
  async initClosed(name: string): Promise<string> {
    const repo = await Repository.init(this.root(name))
    await repo.close()
    return this.root(name)
  }

  /** Open store `name`, run `fn`, close it. */
  async with<T>(name: string, fn: (repo: Repository) => Promise<T>): Promise<T> {
    const repo = await Repository.open(this.root(name))
    try {
      return await fn(repo)
    } finally {
      await repo.close()
    }
  }

  async cleanup(): Promise<void> {
    for (const r of this.open) await r.close().catch(() => {})
    await rm(this.dir, { recursive: true, force: true })
  }
}

/** Every ref of a store, as name → CID text. */
export async function refsOf(repo: Repository): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for await (const { name, cid } of repo.refs.list()) out[name] = cid.toString()
  return out
}

/**
 * A transport that passes everything to `inner`, with hooks to misbehave: tests build the
 * failure they need (a corrupt block, a missing one, a cut connection, a racing writer).
 */
export class HookedTransport implements Transport {
  constructor(
    readonly inner: Transport,
    readonly hooks: {
      afterListRefs?: () => Promise<void>
      /** Replace or drop (undefined) a block served by getBlocks or walkCommits. */
      serve?: (block: Block) => Block | undefined
      /** Pass this many blocks of putBlocks, then fail as a cut connection would. */
      cutAfter?: number
      beforeCompareAndSwap?: (update: RemoteRefUpdate) => Promise<void>
    } = {},
  ) {}
  get url(): string {
    return this.inner.url
  }
  async listRefs(): Promise<RemoteRef[]> {
    const refs = await this.inner.listRefs()
    await this.hooks.afterListRefs?.()
    return refs
  }
  hasMany(cids: readonly CID[]): Promise<boolean[]> {
    return this.inner.hasMany(cids)
  }
  async *getBlocks(cids: readonly CID[]): AsyncIterable<Block> {
    for await (const b of this.inner.getBlocks(cids)) {
      const out = this.hooks.serve ? this.hooks.serve(b) : b
      if (out) yield out
    }
  }
  async *walkCommits(heads: readonly CID[], options: { have?: readonly CID[]; limit: number }): AsyncIterable<Block> {
    for await (const b of this.inner.walkCommits(heads, options)) {
      const out = this.hooks.serve ? this.hooks.serve(b) : b
      if (out) yield out
    }
  }
  putBlocks(blocks: AsyncIterable<Block>): Promise<PutBlocksResult> {
    const cut = this.hooks.cutAfter
    if (cut === undefined) return this.inner.putBlocks(blocks)
    return this.inner.putBlocks(
      (async function* () {
        let n = 0
        for await (const b of blocks) {
          if (n++ >= cut) throw new Error('connection reset')
          yield b
        }
      })(),
    )
  }
  async compareAndSwapRef(update: RemoteRefUpdate): Promise<RemoteRefResult> {
    await this.hooks.beforeCompareAndSwap?.(update)
    return this.inner.compareAndSwapRef(update)
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

/** Resolves once `n` callers have arrived (to line two pushers up at their compare-and-swap). */
export function barrier(n: number): () => Promise<void> {
  let arrived = 0
  let release!: () => void
  const all = new Promise<void>((r) => (release = r))
  return () => {
    if (++arrived >= n) release()
    return all
  }
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
