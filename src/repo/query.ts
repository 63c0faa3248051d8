import type { Aggregator } from 'mingo'
import { compare, resolve } from 'mingo/util'
import { CID, DAG_CBOR, cidFromBytes, cidToString } from '../codec/cid.js'
import { decodeBlockUnchecked, verifyBlock } from '../codec/block.js'
import { decodeDagCborFields } from '../codec/dag-cbor-decode.js'
import { InvalidInputError, NotFoundError } from '../errors.js'
import { toDagJson } from '../model/record.js'
import { ProllyTree, type LeafView } from '../model/tree.js'
import type { Repository } from './repository.js'
import { INVALIDATIONS_REF } from './invalidations-ref.js'
import type { Taint } from './lineage-graph.js'
import { quickFilter, type QuickFilter } from './query-filter.js'
import { resolveCommit } from './resolve.js'

/** A record as a query sees and returns it: links as CID strings, plus `_path` and `_cid`. */
export type QueryRow = Record<string, unknown>

/** A sort specification: field (dotted path) → 1 (ascending) or -1 (descending), in priority order. */
export type SortSpec = Record<string, 1 | -1>

export interface QueryOptions {
  /** Only records whose path starts with this (a plain string prefix, as in `ls`). */
  prefix?: string
  /**
   * A MongoDB query document, e.g. `{"metrics.loss": {"$lt": 0.2}, "campaign_id": {"$in": ["c1"]}}`.
   * Links compare as CID strings; a DAG-JSON link `{"/": "bafy…"}` in the filter is read as its string.
   */
  filter?: Record<string, unknown>
  /** Fields to return (dotted paths; `_path` is always kept), or a MongoDB projection document. */
  project?: readonly string[] | Record<string, unknown>
  /** `'-loss,name'` (a leading `-` sorts descending) or `{ loss: -1, name: 1 }`. */
  sort?: string | SortSpec
  /** At most this many rows (after sorting, or after the pipeline). */
  limit?: number
  /**
   * A MongoDB aggregation pipeline run over the filtered records; `sort`, `limit` and `project`
   * then apply to its output.
   */
  aggregate?: readonly Record<string, unknown>[]
  /**
   * Mark rows that are tainted (invalidated, or derived from something invalidated) with a
   * `_tainted: {root, reason, invalidation, causes, roots}` field (a Taint: the primary cause,
   * then every cause), which filters and pipelines can use too (e.g. `{"_tainted": {"$exists": false}}`,
   * `{"_tainted.roots": "<cid>"}`). Default true; costs one ref read when nothing was ever invalidated.
   */
  taint?: boolean
}

// Scripts ($where, $function, $accumulator) stay off: query documents are data, and will
// arrive over HTTP once `pedigree serve` exists.
const MINGO = { scriptEnabled: false } as const

type Mingo = typeof import('mingo')
let fullMingo: Promise<Mingo> | undefined
/** mingo with every operator (sort, projection, pipelines, expressions): ~100 ms to load. */
const loadMingo = (): Promise<Mingo> => (fullMingo ??= import('mingo').then(commonJs))

/**
 * The exports of a CommonJS package loaded with `import()`: Node gives them as named exports
 * and as `default`, the bundled CLI (scripts/bundle-cli.mjs) as `default` only.
 */
const commonJs = <T>(mod: T): T => (mod as { default?: T }).default ?? mod

/** Operators that need mingo's expression operators (or scripts) to evaluate. */
const NEEDS_EXPRESSIONS = /"\$(expr|where|function|jsonSchema)"/

/**
 * A compiled filter. A plain filter document (field conditions, $and/$or/$nor, $in, $regex,
 * $elemMatch, …) needs only mingo's query operators, which load in a tenth of the time of the
 * whole library: a short `pedigree query` spends most of its time starting up.
 */
async function mingoQuery(doc: Record<string, unknown>): Promise<{ test(row: unknown): boolean }> {
  if (NEEDS_EXPRESSIONS.test(JSON.stringify(doc))) {
    const { Query } = await loadMingo()
    return mingo('filter', () => new Query(doc, MINGO))
  }
  const [{ Query }, { Context }, ...modules] = await Promise.all([import('mingo/query'), import('mingo/core'), ...queryOperatorModules(doc)].map((p) => p.then(commonJs)) as [
    Promise<typeof import('mingo/query')>,
    Promise<typeof import('mingo/core')>,
    ...Promise<typeof import('mingo/operators/query')>[],
  ])
  const context = Context.init({ query: Object.assign({}, ...modules) as typeof import('mingo/operators/query') })
  return mingo('filter', () => new Query(doc, { ...MINGO, context }))
}

/**
 * The modules of mingo's query operators that `doc` uses: a filter of comparisons loads one
 * (~4 ms) rather than all six (~25 ms). An operator not listed (or a `$` key that is no
 * operator) loads them all, so that mingo itself judges it.
 */
function queryOperatorModules(doc: unknown): Promise<unknown>[] {
  // Comparison always: a plain value is an implicit $eq.
  const used = new Set<QueryOperatorFamily>(['comparison'])
  let unlisted = false
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(visit)
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k.startsWith('$')) {
          const family = FAMILY_OF.get(k)
          if (family) used.add(family)
          else unlisted = true
        }
        visit(x)
      }
    }
  }
  visit(doc)
  if (unlisted) return [import('mingo/operators/query')]
  return [...used].map((family) => QUERY_OPERATOR_FAMILIES[family].load())
}

/** mingo 7's query operators, by the module of mingo/operators/query that defines them. */
const QUERY_OPERATOR_FAMILIES = {
  comparison: { load: () => import('mingo/operators/query/comparison'), operators: ['$eq', '$gt', '$gte', '$in', '$lt', '$lte', '$ne', '$nin'] },
  logical: { load: () => import('mingo/operators/query/logical'), operators: ['$and', '$nor', '$not', '$or'] },
  element: { load: () => import('mingo/operators/query/element'), operators: ['$exists', '$type'] },
  // $options goes with $regex.
  evaluation: { load: () => import('mingo/operators/query/evaluation'), operators: ['$mod', '$regex', '$options'] },
  array: { load: () => import('mingo/operators/query/array'), operators: ['$all', '$elemMatch', '$size'] },
  bitwise: { load: () => import('mingo/operators/query/bitwise'), operators: ['$bitsAllClear', '$bitsAllSet', '$bitsAnyClear', '$bitsAnySet'] },
}
type QueryOperatorFamily = keyof typeof QUERY_OPERATOR_FAMILIES
const FAMILY_OF = new Map(Object.entries(QUERY_OPERATOR_FAMILIES).flatMap(([family, { operators }]) => operators.map((op) => [op, family as QueryOperatorFamily])))

/** Blocks per `getMany`: small at first so that a `limit` stops early, then large for throughput. */
const FIRST_BATCH = 16
const MAX_BATCH = 512
/**
 * Records read as one window with a filter: in CID order, the matching rows put back in path
 * order (see Window.cidOrder). At most 65536 (the order packs a position into 16 bits).
 */
const MAX_WINDOW = 16384
/** `getMany` calls in flight while the previous batches are decoded and matched. */
const READ_AHEAD = 2
/** Rows gathered before the top-N is re-sorted (at least `limit`, so that the work stays O(n log N)). */
const TOP_N_CHUNK = 2048

/**
 * Find, sort, project and aggregate the records of a revision's tree, with MongoDB query
 * documents evaluated by mingo. Records are read in batches with several reads in flight,
 * decoded and verified, and turned into rows: CID links become their base32 string, bytes
 * their DAG-JSON form, and each row starts with `_path` and `_cid`. Files are skipped.
 *
 * Memory: without `sort` or `aggregate`, rows stream and a `limit` stops reading early
 * (only the batches in flight are read beyond it). With `sort` and `limit` N, only the best N
 * rows so far are kept (mingo re-sorts them together with each chunk of new matches), so memory
 * is O(N) whatever the size of the tree. With `sort` and no limit, or with `aggregate`, every
 * matching row is held (mingo's pipeline is synchronous and needs its whole input); a filter
 * and a projection keep that smaller.
 *
 * Rows come in path order unless sorted; ties in a sort keep path order.
 *
 * @example
 * for await (const row of query(repo, 'main', { prefix: 'tasks/', filter: { 'metrics.loss': { $lt: 0.2 } },
 *   sort: '-metrics.loss', limit: 10, project: ['campaign_id', 'metrics.loss'] })) console.log(row)
 */
export async function* query(repo: Repository, rev: string, options: QueryOptions = {}): AsyncGenerator<QueryRow> {
  const { prefix = '', limit } = options
  // Check every option before reading anything, so that bad input fails fast and alike.
  const match = await compileFilter(options.filter)
  const sort = options.sort === undefined ? undefined : parseSort(options.sort)
  const projection = options.project === undefined ? undefined : projectionOf(options.project)
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new InvalidInputError(`limit must be a whole number of 0 or more, got ${limit}`, { option: 'limit', limit })
  }
  const { Aggregator } = sort || projection || options.aggregate !== undefined ? await loadMingo() : ({} as Partial<Mingo>)
  const pipeline = options.aggregate === undefined ? undefined : checkPipeline(Aggregator!, options.aggregate)
  const sortStage = sort ? new Aggregator!([{ $sort: sort }], MINGO) : undefined
  const projectStage = projection ? compileProjection(Aggregator!, projection) : undefined
  const project = (rows: QueryRow[]): QueryRow[] => (projectStage ? mingo('project', () => projectStage.run<QueryRow>(rows)) : rows)

  const { commit } = await resolveCommit(repo, rev)
  if (limit === 0) return
  const taints = options.taint === false ? undefined : await taintsOf(repo)
  const matching = matchingRows(repo, commit.tree, prefix, match, taints)

  if (pipeline) {
    const input: QueryRow[] = []
    for await (const rows of matching) for (const row of rows) input.push(row)
    let out = mingo('aggregate', () => new Aggregator!(pipeline, MINGO).run<QueryRow>(input))
    if (sortStage) out = mingo('sort', () => sortStage.run<QueryRow>(out))
    if (limit !== undefined) out = out.slice(0, limit)
    yield* project(out)
    return
  }

  if (sort && sortStage) {
    let kept: QueryRow[] = []
    let recent: QueryRow[] = []
    const chunk = Math.max(TOP_N_CHUNK, limit ?? 0)
    // Once `limit` rows are kept, a row whose first sort key is strictly worse than the last kept
    // row's cannot enter the top N: skip it with mingo's own comparison ($sort orders by it too),
    // so that most rows of a large scan cost one comparison instead of a place in the next sort.
    const [first, direction] = Object.entries(sort)[0]!
    let bound: { value: unknown } | undefined
    // Stable: mingo's $sort keeps the input order of ties, and `kept` always precedes `recent`.
    const settle = (): void => {
      const sorted = mingo('sort', () => sortStage.run<QueryRow>(kept.concat(recent)))
      kept = limit === undefined ? sorted : sorted.slice(0, limit)
      recent = []
      if (limit !== undefined && kept.length === limit) bound = { value: resolve(kept[limit - 1]!, first) }
    }
    for await (const rows of matching) {
      for (const row of rows) {
        if (bound && compare(resolve(row, first), bound.value) * direction > 0) continue
        recent.push(row)
      }
      if (limit !== undefined && recent.length >= chunk) settle()
    }
    settle()
    yield* project(kept)
    return
  }

  let left = limit ?? Infinity
  for await (const rows of matching) {
    const some = rows.length > left ? rows.slice(0, left) : rows
    left -= some.length
    yield* project(some)
    if (left === 0) return
  }
}

/** Parse `-loss,name` into a sort specification (or check one given as an object). */
export function parseSort(spec: string | SortSpec): SortSpec {
  const out: SortSpec = {}
  if (typeof spec === 'string') {
    const keys = spec.split(',').map((k) => k.trim())
    if (keys.length === 0 || keys.some((k) => k === '' || k === '-' || k === '+')) {
      throw new InvalidInputError(`bad sort '${spec}': expected comma-separated fields, each optionally prefixed with - (descending), e.g. -metrics.loss,name`, {
        option: 'sort',
        sort: spec,
      })
    }
    for (const k of keys) {
      const descending = k.startsWith('-')
      out[checkField(descending || k.startsWith('+') ? k.slice(1) : k, spec)] = descending ? -1 : 1
    }
    return out
  }
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec) || Object.keys(spec).length === 0) {
    throw new InvalidInputError('bad sort: expected fields mapped to 1 or -1', { option: 'sort' })
  }
  for (const [k, v] of Object.entries(spec)) {
    if (v !== 1 && v !== -1) throw new InvalidInputError(`bad sort: '${k}' must map to 1 or -1, got ${JSON.stringify(v)}`, { option: 'sort', field: k })
    out[checkField(k, k)] = v
  }
  return out
}

function checkField(field: string, spec: string): string {
  if (field === '' || field.startsWith('$') || field.split('.').some((p) => p === '')) {
    throw new InvalidInputError(`bad sort '${spec}': '${field}' is not a field path`, { option: 'sort', sort: spec })
  }
  return field
}

interface Filter {
  test: (row: QueryRow) => boolean
  /**
   * The top-level fields the filter can look at (besides `_path` and `_cid`), or undefined if
   * that is not known (an operator such as `$expr` may read any field). When known, a record
   * is first decoded with those fields only, and whole only if it matches.
   */
  fields?: ReadonlySet<string>
  /** A verdict from the record's bytes alone, for the simplest filters (see query-filter.ts). */
  quick?: QuickFilter
  usesCid: boolean
}

type Match = Filter | undefined

async function compileFilter(filter: Record<string, unknown> | undefined): Promise<Match> {
  if (filter === undefined) return undefined
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) {
    throw new InvalidInputError(`the query filter must be a JSON object, got ${Array.isArray(filter) ? 'an array' : JSON.stringify(filter)}`, {
      option: 'filter',
    })
  }
  if (Object.keys(filter).length === 0) return undefined
  const doc = linksAsStrings(filter) as Record<string, unknown>
  const q = await mingoQuery(doc)
  const fields = filterFields(doc)
  // Over-approximated (any mention, in a value too): `_cid` text is only ever computed sooner.
  const usesCid = JSON.stringify(doc).includes('_cid')
  if (fields) {
    fields.delete('_path')
    fields.delete('_cid')
    fields.delete('_tainted')
  }
  return { test: (row) => q.test(row), fields, quick: quickFilter(doc), usesCid }
}

/**
 * The top-level fields a query document reads: the first segment of each field path, through
 * `$and`, `$or` and `$nor`. A condition on a path depends on the value at that path only, so
 * a row with just these fields matches exactly when the whole row does. Any other top-level
 * operator (`$expr`, `$jsonSchema`, `$where`, …) may read anything: undefined then.
 */
function filterFields(doc: unknown): Set<string> | undefined {
  const fields = new Set<string>()
  const visit = (q: unknown): boolean => {
    if (q === null || typeof q !== 'object' || Array.isArray(q)) return false
    for (const [k, v] of Object.entries(q)) {
      if (k === '$and' || k === '$or' || k === '$nor') {
        if (!Array.isArray(v) || !v.every(visit)) return false
      } else if (k.startsWith('$')) {
        return false
      } else {
        fields.add(k.split('.')[0]!)
      }
    }
    return true
  }
  return visit(doc) ? fields : undefined
}

function projectionOf(project: readonly string[] | Record<string, unknown>): Record<string, unknown> {
  if (Array.isArray(project)) {
    const fields = (project as readonly string[]).map((f) => f.trim())
    const bad = fields.find((f) => f === '' || f.startsWith('$') || f.split('.').some((p) => p === ''))
    if (bad !== undefined || fields.length === 0) {
      throw new InvalidInputError(`bad projection: '${bad ?? ''}' is not a field path`, { option: 'project', field: bad })
    }
    // `_path` is always kept, and so is the taint mark where there is one.
    const spec: Record<string, unknown> = { _path: 1, _tainted: 1 }
    for (const f of fields) spec[f] = 1
    return spec
  }
  if (project === null || typeof project !== 'object' || Object.keys(project).length === 0) {
    throw new InvalidInputError('bad projection: expected a list of fields or a projection document', { option: 'project' })
  }
  return project as Record<string, unknown>
}

function compileProjection(Aggregator: Mingo['Aggregator'], spec: Record<string, unknown>): Aggregator {
  const stage = new Aggregator([{ $project: spec }], MINGO)
  // mingo checks a projection when it first applies it: do that now, before any record is read.
  mingo('project', () => stage.run([{ _path: '' }]))
  return stage
}

function checkPipeline(Aggregator: Mingo['Aggregator'], pipeline: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  if (!Array.isArray(pipeline) || pipeline.some((s) => s === null || typeof s !== 'object' || Array.isArray(s))) {
    throw new InvalidInputError('the aggregation pipeline must be a JSON array of stage objects, e.g. [{"$group": {"_id": "$campaign_id"}}]', {
      option: 'aggregate',
    })
  }
  const stages = pipeline.map((s) => linksAsStrings(s) as Record<string, unknown>)
  // Unknown stages and malformed stage documents are found on an empty input; operators inside
  // expressions only when they meet a record.
  mingo('aggregate', () => new Aggregator(stages, MINGO).run([]))
  return stages
}

const WHAT = { filter: 'query filter', project: 'projection', sort: 'sort', aggregate: 'aggregation pipeline' } as const

/** Run a mingo call; anything it throws comes from the user's query, so it becomes InvalidInputError. */
function mingo<T>(option: keyof typeof WHAT, f: () => T): T {
  try {
    return f()
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    const operator = /(\$[A-Za-z][\w]*)/.exec(message)?.[1]
    const hint = /scriptEnabled/.test(message) ? ' (JavaScript operators such as $where and $function are disabled)' : ''
    throw new InvalidInputError(`invalid ${WHAT[option]}: ${message}${hint}`, { option, ...(operator ? { operator } : {}) }, { cause: e })
  }
}

/** DAG-JSON links in a query document (`{"/": "bafy…"}`) become the CID strings rows hold. */
function linksAsStrings(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(linksAsStrings)
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
  if (keys.length === 1 && keys[0] === '/' && typeof obj['/'] === 'string') return obj['/']
  const out: Record<string, unknown> = {}
  for (const k of keys) out[k] = linksAsStrings(obj[k])
  return out
}

/**
 * The matching rows of a tree, in path order, a window of records at a time. Block reads run
 * READ_AHEAD batches ahead of decoding; when the consumer stops, the reads in flight are
 * abandoned. Only bytes wait in flight: a batch is decoded and matched when its turn comes, so
 * records that do not match die young instead of being promoted by the garbage collector.
 *
 * With a filter, a window's records are read in CID order (see Window.cidOrder) and its
 * matching rows put back in path order before they are passed on: a store keyed by CID keeps
 * blocks in about that order, and a record in path order is a random read. Without a filter
 * every record is a row, and a window is one batch (rows held: at most MAX_BATCH).
 */
async function* matchingRows(repo: Repository, root: CID, prefix: string, match: Match, taints?: Map<string, Taint>): AsyncGenerator<QueryRow[]> {
  type Read = { window: Window; at: ArrayLike<number>; cids?: CID[]; blocks?: Promise<(Uint8Array | undefined)[]> }
  const maxWindow = match ? MAX_WINDOW : MAX_BATCH
  const reads: Read[] = []
  let sent = 0
  let size = FIRST_BATCH
  let window = new Window(size)
  // Keep READ_AHEAD + 1 reads in flight, in order.
  const pump = (): void => {
    for (; sent < reads.length && sent <= READ_AHEAD; sent++) {
      const read = reads[sent]!
      // CID objects made only now, so that they die young (see Window).
      read.cids = Array.from(read.at, (i) => read.window.cid(i))
      read.blocks = repo.blocks.getMany(read.cids)
      read.blocks.catch(() => {}) // awaited below in order; this only keeps an abandoned read from being "unhandled"
    }
  }
  const seal = (): void => {
    const w = window
    const n = w.length
    const order = n > MAX_BATCH ? w.cidOrder() : undefined
    for (let i = 0; i < n; i += MAX_BATCH) {
      const end = Math.min(i + MAX_BATCH, n)
      const at = order ? order.subarray(i, end) : range(i, end)
      reads.push({ window: w, at })
    }
    w.seal()
    size = Math.min(size * 2, maxWindow)
    window = new Window(size)
    pump()
  }
  // `_cid` text is made for the rows that match only, unless the filter looks at it.
  const eager = !match || match.usesCid
  const test = (row: QueryRow): boolean => mingo('filter', () => match!.test(row))
  const quick = match?.quick
  /** Decode and match the next read's records; the rows of its window once the window is complete. */
  const next = async (): Promise<QueryRow[] | undefined> => {
    const read = reads.shift()!
    sent--
    const blocks = await read.blocks!
    pump()
    const { window: w, at } = read
    const cids = read.cids!
    // One record at a time, from bytes to kept or dropped row: a record that does not match
    // is garbage before the next is decoded, so a scavenge finds little alive to copy.
    for (let j = 0; j < at.length; j++) {
      const i = at[j]!
      const path = w.path(i)
      const cid = cids[j]!
      const bytes = blocks[j]
      if (bytes === undefined) throw new NotFoundError('block', cidToString(cid), `the record at ${path}`, { path })
      verifyBlock(cid, bytes)
      // Most records of a large query fail a simple filter: those are dropped from their bytes.
      const verdict = quick && cid.code === DAG_CBOR ? quick.verdict(bytes) : undefined
      if (verdict === false) continue
      const taint = taints?.get(cidToString(cid))
      if (verdict === undefined && match?.fields && cid.code === DAG_CBOR) {
        const some = decodeDagCborFields(bytes, match.fields)
        if (some) {
          const partial = toRow(path, eager ? cidToString(cid) : undefined, some)
          if (taint) partial._tainted = taint
          if (!test(partial)) continue
        }
      }
      const row = toRow(path, eager ? cidToString(cid) : undefined, decodeBlockUnchecked(cid, bytes))
      // Marked before the filter, so that a filter can select or exclude tainted rows.
      if (taint) row._tainted = taint
      if (match && !test(row)) continue
      if (!eager) row._cid = cidToString(cid)
      w.rows[i] = row
    }
    return w.done(at.length)
  }
  // A tree reader of our own with a small node cache: a scan reads each leaf once, and keeping
  // them in the repository's cache (4096 nodes) would hold ~100 MB for 100k records.
  const tree = new ProllyTree(repo.blocks, { cacheNodes: 64 })
  for await (const { leaf, from, to } of tree.leaves(root, { prefix })) {
    for (let i = from; i < to; i++) {
      if (leaf.kind(i) !== 'record') continue
      window.add(leaf, i)
      if (window.length < size) continue
      seal()
      // Walk on only once every read of this window is in flight.
      while (reads.length > sent || sent > READ_AHEAD) {
        const rows = await next()
        if (rows && rows.length > 0) yield rows
      }
    }
  }
  if (window.length > 0) seal()
  while (reads.length > 0) {
    const rows = await next()
    if (rows && rows.length > 0) yield rows
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)

/**
 * Records read together, and their matching rows until all are read. A record is its leaf and
 * position there: its path and CID are made from the leaf's bytes only when needed (the CID
 * when it is read, the path when it matches), so that 16k of them held for a window are not
 * objects outliving several scavenges.
 */
class Window {
  rows: (QueryRow | undefined)[] = []
  private readonly leaves: LeafView[] = []
  private readonly index: Int32Array
  private left = 0
  constructor(capacity: number) {
    this.index = new Int32Array(capacity)
  }
  get length(): number {
    return this.leaves.length
  }
  add(leaf: LeafView, i: number): void {
    this.index[this.leaves.length] = i
    this.leaves.push(leaf)
  }
  path(j: number): string {
    return this.leaves[j]!.key(this.index[j]!)
  }
  cid(j: number): CID {
    return cidFromBytes(this.leaves[j]!.cidBytes(this.index[j]!))
  }
  /**
   * Positions sorted by CID digest (first 32 bits). The level store keeps blocks under their
   * CID's base32 text in LevelDB's sorted tables, which this order follows closely (base32
   * ranks its digits after its letters: the orders differ only within runs of neighbouring
   * keys). Read at random (path order), nearly every record costs LevelDB a 4 KiB table block
   * loaded and uncompressed, since its block cache holds a fraction of a large store; a window
   * of many records read in this order loads each such block about once.
   */
  cidOrder(): Uint32Array {
    const n = this.leaves.length
    const keys = new Float64Array(n)
    for (let j = 0; j < n; j++) {
      const b = this.leaves[j]!.cidBytes(this.index[j]!)
      // The digest's first bytes, past version, codec, hash code and digest length.
      const prefix = b.length >= 8 ? ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0 : 0
      keys[j] = prefix * 65536 + j
    }
    keys.sort()
    const order = new Uint32Array(n)
    for (let j = 0; j < n; j++) order[j] = keys[j]! % 65536
    return order
  }
  seal(): void {
    this.rows = new Array<QueryRow | undefined>(this.leaves.length)
    this.left = this.leaves.length
  }
  /** Count `n` more records read; once all are, the matching rows in path order. */
  done(n: number): QueryRow[] | undefined {
    this.left -= n
    if (this.left > 0) return undefined
    const out: QueryRow[] = []
    for (const row of this.rows) if (row !== undefined) out.push(row)
    return out
  }
}

/** The row of a decoded record; `_cid` may be left undefined (in its place, for the field order) until the row matched. */
function toRow(path: string, _cid: string | undefined, value: unknown): QueryRow {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && !CID.asCID(value) && !(value instanceof Uint8Array)) {
    const record = plain(value) as Record<string, unknown>
    // Spread copies the fields in one native step. `_path` and `_cid` are the query's own:
    // a record field of that name must not shadow them, so such a record is copied field by field.
    if (!Object.hasOwn(record, '_path') && !Object.hasOwn(record, '_cid')) return { _path: path, _cid, ...record }
    const row: QueryRow = { _path: path, _cid }
    for (const k of Object.keys(record)) if (k !== '_path' && k !== '_cid') row[k] = record[k]
    return row
  }
  return { _path: path, _cid, value: plain(value) }
}

/**
 * An IPLD value as plain JSON: links as CID strings, bytes in their DAG-JSON form. Maps and
 * lists are changed in place (they were just decoded and belong to this row): copying every
 * record again would double the garbage of a large query.
 */
function plain(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = plain(value[i])
    return value
  }
  const cid = CID.asCID(value)
  if (cid) return cidToString(cid)
  if (value instanceof Uint8Array) return toDagJson(value)
  const obj = value as Record<string, unknown>
  for (const k in obj) {
    const v = obj[k]
    if (v !== null && typeof v === 'object') obj[k] = plain(v)
  }
  return obj
}

/** Tainted CIDs (base32 text) with their taint, or undefined when nothing was ever invalidated. */
async function taintsOf(repo: Repository): Promise<Map<string, Taint> | undefined> {
  if (!(await repo.refs.get(INVALIDATIONS_REF))) return undefined
  const { taintedSet } = await import('./taint.js')
  const set = await taintedSet(repo)
  return set.size > 0 ? set : undefined
}

