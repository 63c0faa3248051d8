import { randomBytes } from 'node:crypto'
import { gunzipSync, gzipSync } from 'node:zlib'
import { PedigreeError } from '../../errors.js'
import type { IndexCells } from '../ref-cells.js'
import type { S3Bucket } from './bucket.js'
import { pool } from './pool.js'

/*
 * The derived indexes (reverse links, paths, which commits are indexed) as segment objects:
 *   index/<ms since epoch, 13 digits>-<random>.json.gz   gzip of {"ops": [["p", key, value] | ["c", prefix], …]}
 * Writes never read: a process buffers its puts and clears and writes them as one segment when
 * it closes (or every SEGMENT_OPS). A reader lists the segments, reads them all, and applies
 * them in name order. When it finds more than COMPACT_AT, it writes one segment holding the
 * whole state (a clear of everything, then every entry) and deletes the ones it merged:
 * derived data, rebuildable from blocks and refs, is the one thing a store may delete.
 * Puts are facts that stay true, so segments from many writers merge in any order; an entry
 * lost to a race with a rebuild or a compaction loses its commit's `c/` marker with it, and
 * `ensureIndexed` indexes that commit again.
 */

const ROOT = 'index/'
const SEGMENT = /^index\/\d{13}-[0-9a-f]{8}\.json\.gz$/
const SEGMENT_OPS = 50_000
const COMPACT_AT = 32

type Op = ['p', string, string] | ['c', string]

export class S3IndexCells implements IndexCells {
  private readonly values = new Map<string, string>()
  private sorted?: string[]
  private buffer: Op[] = []
  private loaded?: Promise<void>
  private readonly applied = new Set<string>()

  constructor(private readonly bucket: S3Bucket) {}

  async get(key: string): Promise<string | undefined> {
    await this.load()
    return this.values.get(key)
  }

  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    await this.load()
    return keys.map((k) => this.values.get(k))
  }

  async putMany(entries: readonly [string, string][]): Promise<void> {
    if (entries.length === 0) return
    for (const [k, v] of entries) this.buffer.push(['p', k, v])
    if (this.loaded) this.apply(entries.map(([k, v]) => ['p', k, v]))
    if (this.buffer.length >= SEGMENT_OPS) await this.flush()
  }

  async *entries(prefix: string, { limit = Infinity }: { limit?: number } = {}): AsyncIterable<[string, string]> {
    await this.load()
    this.sorted ??= [...this.values.keys()].sort()
    const keys = this.sorted
    let lo = 0
    let hi = keys.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (keys[mid]! < prefix) lo = mid + 1
      else hi = mid
    }
    let n = 0
    for (let i = lo; i < keys.length && n < limit; i++, n++) {
      const k = keys[i]!
      if (!k.startsWith(prefix)) return
      const v = this.values.get(k)
      if (v !== undefined) yield [k, v]
    }
  }

  async clear(prefix: string): Promise<void> {
    this.buffer.push(['c', prefix])
    if (this.loaded) this.apply([['c', prefix]])
  }

  /** Write what this process added as one segment (called on close). */
  async flush(): Promise<void> {
    if (this.buffer.length === 0) return
    const ops = this.buffer
    this.buffer = []
    const name = segmentName()
    try {
      await this.bucket.put(name, encodeSegment(ops), { contentType: 'application/gzip' })
    } catch (e) {
      this.buffer = [...ops, ...this.buffer]
      throw e
    }
    this.applied.add(name)
  }

  private load(): Promise<void> {
    this.loaded ??= this.read().catch((e) => {
      this.loaded = undefined
      throw e
    })
    return this.loaded
  }

  private async read(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const names: string[] = []
      for await (const page of this.bucket.list(ROOT)) names.push(...page.keys.filter((k) => SEGMENT.test(k)))
      names.sort()
      const segments = new Array<Op[] | undefined>(names.length)
      await pool([...names.keys()], 8, async (i) => {
        const bytes = await this.bucket.get(names[i]!)
        if (bytes) segments[i] = parseSegment(this.bucket.fullKey(names[i]!), bytes)
      })
      // A segment listed but gone was merged into a newer one by a compaction: list again.
      if (segments.some((s) => s === undefined) && attempt < 3) continue
      this.values.clear()
      for (const [i, ops] of segments.entries()) {
        if (ops) this.apply(ops)
        this.applied.add(names[i]!)
      }
      // What this process wrote and has not flushed yet comes after every segment.
      this.apply(this.buffer)
      if (names.length > COMPACT_AT) await this.compact(names).catch(() => {})
      return
    }
  }

  /** Replace `merged` (all loaded) with one segment holding the whole state. */
  private async compact(merged: string[]): Promise<void> {
    const ops: Op[] = [['c', '']]
    for (const [k, v] of this.values) ops.push(['p', k, v])
    await this.bucket.put(segmentName(), encodeSegment(ops), { contentType: 'application/gzip' })
    await pool(merged, 8, (name) => this.bucket.delete(name))
  }

  private apply(ops: readonly Op[]): void {
    for (const op of ops) {
      if (op[0] === 'p') {
        if (!this.values.has(op[1])) this.sorted = undefined
        this.values.set(op[1], op[2])
      } else {
        for (const k of [...this.values.keys()]) if (k.startsWith(op[1])) this.values.delete(k)
        this.sorted = undefined
      }
    }
  }
}

function segmentName(): string {
  return `${ROOT}${String(Date.now()).padStart(13, '0')}-${randomBytes(4).toString('hex')}.json.gz`
}

/** Index text compresses ~10x (keys repeat CID prefixes and paths); level 1 costs little. */
function encodeSegment(ops: readonly Op[]): Uint8Array {
  return gzipSync(JSON.stringify({ ops }), { level: 1 })
}

function parseSegment(key: string, bytes: Uint8Array): Op[] {
  let ops: unknown
  try {
    ops = (JSON.parse(gunzipSync(bytes).toString('utf8')) as { ops?: unknown }).ops
  } catch (e) {
    throw new PedigreeError('ERR_CORRUPT', `index segment ${key} is not gzipped JSON: ${(e as Error).message}; delete it and run \`pedigree index rebuild\``, { key }, { cause: e })
  }
  if (!Array.isArray(ops)) throw new PedigreeError('ERR_CORRUPT', `index segment ${key} holds no list of operations`, { key })
  return ops as Op[]
}
