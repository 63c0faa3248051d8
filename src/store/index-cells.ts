import type { AbstractSublevel } from 'abstract-level'
import type { Level } from 'level'
import type { IndexCells, IndexReader } from './ref-cells.js'

/** Entries an index reader asks LevelDB for at first, and at most, per read. */
const FIRST_READ = 16
const MAX_READ = 1024

/** Index entries in a sorted Map (memory backend). */
export class MemoryIndexCells implements IndexCells {
  private readonly values = new Map<string, string>()
  async get(key: string): Promise<string | undefined> {
    return this.values.get(key)
  }
  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    return keys.map((k) => this.values.get(k))
  }
  async putMany(entries: readonly [string, string][]): Promise<void> {
    for (const [k, v] of entries) this.values.set(k, v)
  }
  async *entries(prefix: string, { limit = Infinity }: { limit?: number } = {}): AsyncIterable<[string, string]> {
    let n = 0
    for (const k of [...this.values.keys()].filter((k) => k.startsWith(prefix)).sort()) {
      if (n++ >= limit) return
      yield [k, this.values.get(k)!]
    }
  }
  async clear(prefix: string): Promise<void> {
    for (const k of [...this.values.keys()]) if (k.startsWith(prefix)) this.values.delete(k)
  }
}

type IndexSublevel = AbstractSublevel<Level<string, unknown>, string | Uint8Array, string, string>

/** Index entries in a LevelDB sublevel. */
export class LevelIndexCells implements IndexCells {
  constructor(private readonly db: IndexSublevel) {}
  async get(key: string): Promise<string | undefined> {
    return (await this.db.get(key)) ?? undefined
  }
  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    if (keys.length === 0) return []
    return ((await this.db.getMany(keys as string[])) as (string | undefined)[]).map((v) => v ?? undefined)
  }
  async putMany(entries: readonly [string, string][]): Promise<void> {
    if (entries.length === 0) return
    await this.db.batch(entries.map(([key, value]) => ({ type: 'put' as const, key, value })))
  }
  async *entries(prefix: string, { limit }: { limit?: number } = {}): AsyncIterable<[string, string]> {
    // Keys are ASCII (CIDs, paths are checked by the caller's format), so every key with the
    // prefix sorts below prefix + U+00FF. The upper bound matters: without it LevelDB reads
    // ahead a whole batch of keys past the prefix on the first step.
    for await (const [k, v] of this.db.iterator({ gte: prefix, lt: `${prefix}\u00ff`, ...(limit !== undefined ? { limit } : {}) })) {
      if (!(k as string).startsWith(prefix)) return
      yield [k as string, v as string]
    }
  }
  async entriesMany(prefixes: readonly string[], { limit }: { limit: number }): Promise<[string, string][][]> {
    const out: [string, string][][] = prefixes.map(() => [])
    if (prefixes.length === 0) return out
    const order = prefixes.map((p, i) => [p, i] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    const reader = this.readerBetween(order[0]![0], `${order[order.length - 1]![0]}\u00ff`)
    try {
      for (const [prefix, i] of order) out[i] = await reader.entries(prefix, { limit })
    } finally {
      await reader.close()
    }
    return out
  }
  reader(span: string): IndexReader {
    return this.readerBetween(span, `${span}\u00ff`)
  }
  /**
   * One iterator over [gte, lt), sought to each prefix asked: creating a LevelDB iterator and
   * its first read cost several times what a seek and a read on an open one cost.
   */
  private readerBetween(gte: string, lt: string): IndexReader {
    const it = this.db.iterator({ gte, lt })
    return {
      async entries(prefix, { limit = Infinity } = {}) {
        const out: [string, string][] = []
        it.seek(prefix)
        // Small first reads: most lookups find a few entries, and a read goes on past them.
        for (let step = FIRST_READ; out.length < limit; step = Math.min(step * 4, MAX_READ)) {
          const got = await it.nextv(Math.min(step, limit - out.length))
          if (got.length === 0) return out
          for (const [k, v] of got) {
            if (!(k as string).startsWith(prefix)) return out
            out.push([k as string, v as string])
          }
        }
        return out
      },
      close: () => it.close(),
    }
  }
  async clear(prefix: string): Promise<void> {
    let batch: string[] = []
    for await (const k of this.db.keys({ gte: prefix })) {
      if (!(k as string).startsWith(prefix)) break
      batch.push(k as string)
      if (batch.length >= 10_000) {
        await this.db.batch(batch.map((key) => ({ type: 'del' as const, key })))
        batch = []
      }
    }
    if (batch.length) await this.db.batch(batch.map((key) => ({ type: 'del' as const, key })))
  }
}
