import { ConflictError, InvalidInputError, PedigreeError } from '../../errors.js'
import type { ConfigCells, RefCells, RefLogRecord } from '../ref-cells.js'
import type { S3Bucket } from './bucket.js'
import { pool } from './pool.js'

/*
 * A cell (a ref, a config key) is a log of numbered entry objects:
 *   <root><encoded name>/<seq, 12 digits>     JSON, never changed once written
 * The current value is the last entry's. An update reads the last entry (number n), checks it,
 * and creates entry n+1 with `If-None-Match: *`: of two writers racing for n+1 exactly one
 * creates it, the other gets 412 and reads again. So the log is the compare-and-swap and,
 * for refs, the reflog. Names are encoded byte by byte (UTF-8; anything but A-Z a-z 0-9 _ -
 * becomes %XX), so that a name never contains `/` and a prefix of a name encodes to a prefix
 * of its encoding.
 */

const SEQ_DIGITS = 12
/** Entries one update may try to create before it gives up (each loss means another writer won). */
const MAX_ATTEMPTS = 100
const SEQ = /^\d{12}$/
/** The hint object of a log: the number of a recent entry. */
const TAIL = 'tail'
const HINT_EVERY = 256
const seqText = (seq: number): string => String(seq).padStart(SEQ_DIGITS, '0')
const encoder = new TextEncoder()

export function encodeName(name: string): string {
  let out = ''
  for (const byte of encoder.encode(name)) {
    const c = String.fromCharCode(byte)
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

export function decodeName(text: string): string {
  return decodeURIComponent(text)
}

/** Sort as LevelDB and S3 listings do: by the UTF-8 bytes of the name. */
const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/** Numbered-entry logs under one root (`refs/`, `config/`); see above. */
class EntryLogs<T> {
  /** The last entry seen of each cell: entries never change, so it only ever moves forward. */
  private readonly tails = new Map<string, { seq: number; value: T }>()

  constructor(
    private readonly bucket: S3Bucket,
    private readonly root: string,
    private readonly what: string,
  ) {}

  private dir(name: string): string {
    return `${this.root}${encodeName(name)}/`
  }

  /**
   * The last entry of `name`'s log: one LIST after the last entry seen (or from the start of the
   * log), and a GET if it moved. A log longer than one page of HINT_EVERY keys is not listed
   * to its end: the reader jumps to the `tail` hint (see {@link append}) and lists on from there.
   */
  async head(name: string): Promise<{ seq: number; value: T } | undefined> {
    const dir = this.dir(name)
    const cached = this.tails.get(name)
    let last: number | undefined
    let from = cached?.seq
    for (let jumped = false; ; ) {
      let more = false
      // A first page no longer than the hints' spacing: a log longer than that has a hint.
      const page0 = jumped ? {} : { maxKeys: HINT_EVERY }
      for await (const page of this.bucket.list(dir, from !== undefined ? { ...page0, startAfter: dir + seqText(from) } : page0)) {
        for (const k of page.keys) {
          const tail = k.slice(dir.length)
          if (SEQ.test(tail)) last = Number(tail)
        }
        more = page.truncated
        if (more && !jumped) break
      }
      if (!more || jumped) break
      jumped = true
      // The hint names an entry that exists: it is the last one unless the listing finds more.
      const hint = await this.hint(dir)
      if (hint !== undefined && hint > (last ?? -1)) last = hint
      from = last
    }
    if (last === undefined) return cached
    const value = await this.entry(name, last)
    return this.remember(name, last, value)
  }

  /** The last entry of `name`'s log this process has seen (read or written), without a request. */
  seen(name: string): { seq: number; value: T } | undefined {
    return this.tails.get(name)
  }

  /**
   * Create entry `seq` of `name`'s log; false if it exists already (another writer won). Every
   * HINT_EVERY entries the writer also records the number in `<dir>/tail` (a plain PUT: only a
   * hint, never ahead of an entry that exists), so that readers of a long log skip its start.
   */
  async append(name: string, seq: number, value: T): Promise<boolean> {
    const dir = this.dir(name)
    const created = await this.bucket.put(dir + seqText(seq), encoder.encode(JSON.stringify(value)), { createOnly: true, contentType: 'application/json' })
    if (created) {
      this.remember(name, seq, structuredClone(value))
      if (seq > 0 && seq % HINT_EVERY === 0) await this.bucket.put(dir + TAIL, encoder.encode(String(seq))).catch(() => {})
    }
    return created
  }

  private async hint(dir: string): Promise<number | undefined> {
    const bytes = await this.bucket.get(dir + TAIL)
    const text = bytes ? new TextDecoder().decode(bytes).trim() : ''
    return /^\d{1,12}$/.test(text) ? Number(text) : undefined
  }

  /** Every entry of `name`'s log, oldest first (fetched several at a time). */
  async *entries(name: string): AsyncIterable<T> {
    const dir = this.dir(name)
    for await (const page of this.bucket.list(dir)) {
      const seqs = page.keys.map((k) => k.slice(dir.length)).filter((t) => SEQ.test(t)).map(Number)
      const values = new Array<T>(seqs.length)
      await pool([...seqs.keys()], 16, async (i) => {
        values[i] = await this.entry(name, seqs[i]!)
      })
      yield* values
    }
  }

  /** Names of the cells whose name starts with `prefix` (every cell that has a log), sorted. */
  async names(prefix = ''): Promise<string[]> {
    const names: string[] = []
    for await (const page of this.bucket.list(this.root + encodeName(prefix), { delimiter: '/' })) {
      for (const p of page.prefixes) names.push(decodeName(p.slice(this.root.length, -1)))
    }
    return names.filter((n) => n.startsWith(prefix)).sort(byUtf8)
  }

  private async entry(name: string, seq: number): Promise<T> {
    const key = this.dir(name) + seqText(seq)
    const bytes = await this.bucket.get(key)
    if (!bytes) {
      throw new PedigreeError('ERR_CORRUPT', `${this.what} log entry ${this.bucket.fullKey(key)} was listed but cannot be read`, { key: this.bucket.fullKey(key), name })
    }
    try {
      return JSON.parse(new TextDecoder().decode(bytes)) as T
    } catch (e) {
      throw new PedigreeError('ERR_CORRUPT', `${this.what} log entry ${this.bucket.fullKey(key)} is not JSON: ${(e as Error).message}`, { key: this.bucket.fullKey(key), name }, { cause: e })
    }
  }

  private remember(name: string, seq: number, value: T): { seq: number; value: T } {
    const known = this.tails.get(name)
    if (known && known.seq >= seq) return known
    const tail = { seq, value }
    this.tails.set(name, tail)
    return tail
  }
}

/** Refs in S3: one log of entries per ref, its last entry's `new` the ref's value. */
export class S3RefCells implements RefCells {
  private readonly logs: EntryLogs<RefLogRecord>

  constructor(
    bucket: S3Bucket,
    /** Makes every block written so far part of the store: a ref must never reach blocks that are not. */
    private readonly beforeUpdate: () => Promise<void>,
  ) {
    this.logs = new EntryLogs(bucket, 'refs/', 'ref')
  }

  async get(name: string): Promise<string | undefined> {
    return (await this.logs.head(name))?.value.new ?? undefined
  }

  async *list(prefix = ''): AsyncIterable<[string, string]> {
    const names = await this.logs.names(prefix)
    const values = new Array<string | null>(names.length)
    await pool([...names.keys()], 8, async (i) => {
      values[i] = (await this.logs.head(names[i]!))?.value.new ?? null
    })
    for (const [i, name] of names.entries()) if (values[i]) yield [name, values[i]!]
  }

  async compareAndSwap(name: string, record: RefLogRecord): Promise<boolean> {
    await this.beforeUpdate()
    const line: RefLogRecord = { old: record.old, new: record.new, who: record.who, time: record.time, message: record.message }
    // The last entry this process saw (a commit has just read the ref) is tried first, without
    // listing the log again: entries are numbered without gaps (each is created only by a writer
    // that saw the one before it), so creating entry n+1 proves entry n was still the last, and
    // its value `old`. If n+1 exists, the log is listed as usual.
    let head = this.logs.seen(name)
    if (head === undefined || (head.value.new ?? null) !== record.old) head = await this.logs.head(name)
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if ((head?.value.new ?? null) !== record.old) return false
      if (await this.logs.append(name, head ? head.seq + 1 : 0, line)) return true
      // Another writer created that entry first: read it, and go on only if the value is still `old`.
      head = await this.logs.head(name)
    }
    // The log kept moving under us (or a listing kept lagging): report it as the conflict it is.
    return false
  }

  log(name: string): AsyncIterable<RefLogRecord> {
    return this.logs.entries(name)
  }

  async *logged(): AsyncIterable<string> {
    yield* await this.logs.names()
  }
}

type ConfigEntry = { value: unknown } | { deleted: true }

/** Config in S3: one log per key (so its history is kept too), the last entry its value. */
export class S3ConfigCells implements ConfigCells {
  private readonly logs: EntryLogs<ConfigEntry>

  constructor(bucket: S3Bucket) {
    this.logs = new EntryLogs(bucket, 'config/', 'config')
  }

  async get<T>(key: string): Promise<T | undefined> {
    const head = await this.logs.head(key)
    if (!head || 'deleted' in head.value) return undefined
    return structuredClone(head.value.value) as T
  }

  async set(key: string, value: unknown): Promise<void> {
    const text = JSON.stringify(value) as string | undefined
    if (text === undefined) throw new InvalidInputError(`config value for '${key}' is not JSON (got ${typeof value})`, { key })
    await this.write(key, { value: JSON.parse(text) })
  }

  async delete(key: string): Promise<void> {
    const head = await this.logs.head(key)
    if (!head || 'deleted' in head.value) return
    await this.write(key, { deleted: true })
  }

  async *entries(prefix = ''): AsyncIterable<[string, unknown]> {
    const names = await this.logs.names(prefix)
    const heads = new Array<ConfigEntry | undefined>(names.length)
    await pool([...names.keys()], 8, async (i) => {
      heads[i] = (await this.logs.head(names[i]!))?.value
    })
    for (const [i, name] of names.entries()) {
      const h = heads[i]
      if (h && !('deleted' in h)) yield [name, structuredClone(h.value)]
    }
  }

  /** Append the next entry; a writer that loses the race for a number takes the next one. */
  private async write(key: string, entry: ConfigEntry): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const head = await this.logs.head(key)
      if (await this.logs.append(key, head ? head.seq + 1 : 0, entry)) return
    }
    throw new ConflictError(`config key '${key}' is being changed by other writers; ${MAX_ATTEMPTS} attempts to write it failed`, { key })
  }
}
