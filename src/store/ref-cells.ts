/** One append-only log line of a ref, as the store keeps it. */
export interface RefLogRecord {
  /** Previous value (CID text), or null when the ref was created. */
  old: string | null
  /** New value (CID text), or null when the ref was deleted. */
  new: string | null
  who: { name: string; email?: string }
  /** Milliseconds since the epoch. */
  time: number
  message: string
}

/**
 * The one mutable thing a backend keeps: named cells holding a CID text, each update a
 * compare-and-swap written atomically with its log line. The refs layer gives them
 * meaning (name rules, tags, remotes); this layer only guarantees atomicity.
 */
export interface RefCells {
  get(name: string): Promise<string | undefined>
  /** All cells whose name starts with `prefix`, sorted by name. */
  list(prefix?: string): AsyncIterable<[name: string, value: string]>
  /**
   * Set `name` to `record.new` if it currently holds `record.old` (null: absent).
   * Returns false, changing nothing, if the current value differs.
   */
  compareAndSwap(name: string, record: RefLogRecord): Promise<boolean>
  /** The log of `name`, oldest first. */
  log(name: string): AsyncIterable<RefLogRecord>
  /** Names that have a log (including deleted refs). */
  logged(): AsyncIterable<string>
}

/** Small JSON settings kept in the store (remotes, tokens, format version). */
export interface ConfigCells {
  get<T = unknown>(key: string): Promise<T | undefined>
  set(key: string, value: unknown): Promise<void>
  delete(key: string): Promise<void>
  entries(prefix?: string): AsyncIterable<[string, unknown]>
}

/**
 * Derived indexes (reverse links, where a CID was committed): string keys and values,
 * sorted, written in batches. Everything here can be rebuilt from blocks and refs, so a
 * backend may keep it locally even when blocks live elsewhere.
 */
export interface IndexCells {
  get(key: string): Promise<string | undefined>
  /** The values of `keys` (undefined where absent), in order: one lookup for many keys. */
  getMany(keys: readonly string[]): Promise<(string | undefined)[]>
  putMany(entries: readonly [key: string, value: string][]): Promise<void>
  /** Entries whose key starts with `prefix`, in key order, at most `limit`. */
  entries(prefix: string, options?: { limit?: number }): AsyncIterable<[string, string]>
  /**
   * For each prefix, its first `limit` entries, as `entries` gives them: one answer for many
   * lookups (LevelDB serves them from one iterator instead of one iterator each). Optional:
   * callers fall back to `entries` per prefix (see {@link entriesForPrefixes}).
   */
  entriesMany?(prefixes: readonly string[], options: { limit: number }): Promise<[string, string][][]>
  /**
   * A reader for prefix lookups in turn, all under `span`, each answered as `entries` would:
   * LevelDB keeps one iterator open and seeks it (a fresh iterator per lookup costs a few times
   * more). Optional: see {@link openIndexReader}. Close it when done.
   */
  reader?(span: string): IndexReader
  /** Remove every entry under `prefix` (index rebuild). */
  clear(prefix: string): Promise<void>
}

/** Prefix lookups in turn (see {@link IndexCells.reader}). */
export interface IndexReader {
  entries(prefix: string, options?: { limit?: number }): Promise<[string, string][]>
  close(): Promise<void>
}

/** An index reader over `span`: the backend's own where it has one, else `entries` per lookup. */
export function openIndexReader(index: IndexCells, span: string): IndexReader {
  if (index.reader) return index.reader(span)
  return { entries: (prefix, options) => collectEntries(index, prefix, options), async close() {} }
}

/** `index.entries(prefix)`, gathered. */
async function collectEntries(index: IndexCells, prefix: string, options?: { limit?: number }): Promise<[string, string][]> {
  const out: [string, string][] = []
  for await (const e of index.entries(prefix, options)) out.push(e)
  return out
}

/** For each prefix, its first `limit` index entries: in one call where the backend can, else one lookup each. */
export async function entriesForPrefixes(index: IndexCells, prefixes: readonly string[], limit: number): Promise<[string, string][][]> {
  if (index.entriesMany) return index.entriesMany(prefixes, { limit })
  return Promise.all(prefixes.map((prefix) => collectEntries(index, prefix, { limit })))
}
