import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { InvalidInputError } from '../errors.js'
import { describeJsonError } from '../model/record.js'
import type { Taint } from '../repo/lineage-graph.js'
import type { QueryOptions, QueryRow } from '../repo/query.js'
import { taintText } from '../repo/taint-text.js'

const FORMATS = ['table', 'json', 'jsonl', 'csv'] as const
type Format = (typeof FORMATS)[number]

/** Rows looked at to choose the columns of a table or a CSV file when --project does not name them. */
const SAMPLE_ROWS = { table: 100, csv: 1000 } as const
/** A table cell longer than this is cut (with …): tables are for reading; csv and json keep everything. */
const MAX_CELL = 64

export default class QueryCommand extends BaseCommand<typeof QueryCommand> {
  static override summary = "Find, sort, project and aggregate the records of a revision's tree."
  static override description = [
    'Query documents are MongoDB-style (evaluated by mingo). Dotted paths reach into nested fields.',
    'Each record is seen with its links as CID strings, plus _path (its tree path) and _cid.',
    'Files are skipped. Rows come in path order unless --sort is given.',
    '--aggregate runs a pipeline over the filtered records; --sort, --limit and --project then apply to its output.',
    'Table and csv columns are the --project fields, or those found in the first rows.',
    'Rows that are tainted (invalidated, or derived from something invalidated) carry _tainted',
    '(root cause and reason, and every cause in causes and roots); filters can use it,',
    'e.g. {"_tainted": {"$exists": false}} or {"_tainted.roots": "<CID of an invalidated node>"}.',
  ].join('\n')
  static override examples = [
    `<%= config.bin %> query main --filter '{"metrics.loss": {"$lt": 0.2}}'`,
    `<%= config.bin %> query main --prefix tasks/ --filter '{"campaign_id": {"$in": ["c1", "c2"]}}' --project campaign_id,metrics.loss --sort -metrics.loss --limit 10`,
    `<%= config.bin %> query tags/v1 --filter '{"used": "bafyrei…"}' --format jsonl`,
    `<%= config.bin %> query main --aggregate '[{"$group": {"_id": "$campaign_id", "loss": {"$avg": "$metrics.loss"}}}]' --sort _id`,
  ]
  static override args = { rev: Args.string({ description: 'revision', default: 'main' }) }
  static override flags = {
    prefix: Flags.string({ description: 'only records whose path starts with this' }),
    filter: Flags.string({ char: 'f', description: 'MongoDB-style query document (JSON)' }),
    project: Flags.string({ char: 'p', description: 'fields to show, comma-separated (dotted paths), or a JSON projection document' }),
    sort: Flags.string({ char: 's', description: 'sort fields, comma-separated; a leading - sorts descending (e.g. -metrics.loss,_path)' }),
    limit: Flags.integer({ char: 'n', description: 'at most this many rows', min: 0 }),
    aggregate: Flags.string({ description: 'MongoDB-style aggregation pipeline (JSON array) over the filtered records' }),
    format: Flags.option({ options: FORMATS, default: 'table' as Format, description: 'output format (--json is --format json)' })(),
  }

  async run(): Promise<void> {
    const { flags } = this
    const options: QueryOptions = { prefix: flags.prefix, sort: flags.sort, limit: flags.limit }
    if (flags.filter !== undefined) options.filter = jsonFlag('filter', flags.filter, 'object') as Record<string, unknown>
    if (flags.aggregate !== undefined) options.aggregate = jsonFlag('aggregate', flags.aggregate, 'array') as Record<string, unknown>[]
    let fields: string[] | undefined
    if (flags.project !== undefined) {
      if (flags.project.trim().startsWith('{')) options.project = jsonFlag('project', flags.project, 'object') as Record<string, unknown>
      else options.project = fields = flags.project.split(',').map((f) => f.trim())
    }
    const repo = await this.repo()
    const format: Format = this.jsonEnabled() ? 'json' : flags.format
    const seen = { rows: 0, tainted: 0 }
    const rows = countTainted(repo.query(this.args.rev, options), seen, format === 'table' || format === 'csv')
    const out = new Output()
    try {
      await write(format, rows, out, fields, options)
    } finally {
      out.flush()
    }
    if (seen.tainted > 0 && !this.jsonEnabled()) {
      process.stderr.write(`warning: ${seen.tainted} of ${seen.rows} rows are tainted (invalidated, or derived from something invalidated); see their _tainted field or \`pedigree tainted\`\n`)
    }
  }
}

/** Count rows and tainted rows; for table and csv, the taint mark becomes one readable cell. */
async function* countTainted(rows: AsyncIterable<QueryRow>, seen: { rows: number; tainted: number }, flatten: boolean): AsyncGenerator<QueryRow> {
  for await (const row of rows) {
    seen.rows++
    const taint = row._tainted as Taint | undefined
    if (taint) {
      seen.tainted++
      // (`_cid` may have been projected away: then every cause reads as a root cause.)
      if (flatten && Array.isArray(taint.causes)) row._tainted = taintText(typeof row._cid === 'string' ? row._cid : undefined, taint)
    }
    yield row
  }
}

async function write(format: Format, rows: AsyncIterable<QueryRow>, out: Output, fields: string[] | undefined, options: QueryOptions): Promise<void> {
  switch (format) {
    case 'json':
      await writeJson(rows, out)
      break
    case 'jsonl':
      for await (const row of rows) out.write(JSON.stringify(row) + '\n')
      break
    case 'csv':
      await writeCsv(rows, out, fields && ['_path', ...fields])
      break
    case 'table':
      await writeTable(rows, out, fields ? ['_path', ...fields] : undefined, options.aggregate !== undefined || !Array.isArray(options.project ?? []))
      break
  }
}

/** Parse a flag's JSON text; errors name the flag and the position. */
function jsonFlag(flag: string, text: string, shape: 'object' | 'array'): unknown {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new InvalidInputError(`--${flag} is not valid JSON: ${describeJsonError(text)}`, { flag }, { cause: e })
  }
  const isArray = Array.isArray(value)
  const ok = shape === 'array' ? isArray : value !== null && typeof value === 'object' && !isArray
  if (!ok) {
    const got = isArray ? 'an array' : value === null ? 'null' : typeof value
    throw new InvalidInputError(`--${flag} must be a JSON ${shape}, got ${got}`, { flag })
  }
  return value
}

/** stdout, written in large pieces (one write per row costs more than the query on big results). */
class Output {
  private parts: string[] = []
  private size = 0
  write(s: string): void {
    this.parts.push(s)
    this.size += s.length
    if (this.size >= 1 << 16) this.flush()
  }
  flush(): void {
    if (this.parts.length === 0) return
    process.stdout.write(this.parts.join(''))
    this.parts = []
    this.size = 0
  }
}

/** A JSON array, row by row. Nothing is written before the first row, so an early error leaves stdout clean. */
async function writeJson(rows: AsyncIterable<QueryRow>, out: Output): Promise<void> {
  let first = true
  for await (const row of rows) {
    out.write((first ? '[\n  ' : ',\n  ') + JSON.stringify(row))
    first = false
  }
  out.write(first ? '[]\n' : '\n]\n')
}

/** The first `n` rows (to choose columns), then a way to go on with the rest. */
async function sample(rows: AsyncIterable<QueryRow>, n: number): Promise<{ head: QueryRow[]; rest: AsyncIterator<QueryRow> }> {
  const rest = rows[Symbol.asyncIterator]()
  const head: QueryRow[] = []
  while (head.length < n) {
    const next = await rest.next()
    if (next.done) break
    head.push(next.value)
  }
  return { head, rest }
}

async function* remaining(it: AsyncIterator<QueryRow>): AsyncGenerator<QueryRow> {
  for (let next = await it.next(); !next.done; next = await it.next()) yield next.value
}

const isScalar = (v: unknown): boolean => v === null || (typeof v !== 'object' && v !== undefined)

/** Top-level keys of the sampled rows, in the order first seen (only scalar ones unless `all`). */
function columnsOf(rows: QueryRow[], all: boolean, skip: string[] = []): string[] {
  const seen = new Set<string>()
  for (const row of rows) for (const [k, v] of Object.entries(row)) if (!skip.includes(k) && (all || isScalar(v))) seen.add(k)
  return [...seen]
}

/** The value at a dotted path of a row (as a projection returns it: arrays of objects are mapped). */
function at(row: unknown, path: string): unknown {
  let value: unknown = row
  for (const part of path.split('.')) {
    if (Array.isArray(value) && !/^\d+$/.test(part)) value = value.map((v) => at(v, part))
    else if (value !== null && typeof value === 'object') value = (value as Record<string, unknown>)[part]
    else return undefined
  }
  return value
}

const cellText = (v: unknown): string => (v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v))

function csvField(v: unknown): string {
  const s = v === null ? '' : cellText(v)
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

/** RFC 4180: a header line, CRLF line ends, fields quoted when they hold a comma, quote or line break. */
async function writeCsv(rows: AsyncIterable<QueryRow>, out: Output, fields: string[] | undefined): Promise<void> {
  const { head, rest } = await sample(rows, SAMPLE_ROWS.csv)
  const columns = fields ?? columnsOf(head, true)
  if (columns.length === 0) return
  const line = (row: QueryRow): string => columns.map((c) => csvField(at(row, c))).join(',') + '\r\n'
  out.write(columns.map(csvField).join(',') + '\r\n')
  for (const row of head) out.write(line(row))
  for await (const row of remaining(rest)) out.write(line(row))
}

/** Aligned columns; widths come from the first rows, later wider cells push their line out. */
async function writeTable(rows: AsyncIterable<QueryRow>, out: Output, fields: string[] | undefined, allColumns: boolean): Promise<void> {
  const { head, rest } = await sample(rows, SAMPLE_ROWS.table)
  if (head.length === 0) return
  const columns = fields ?? columnsOf(head, allColumns, allColumns ? [] : ['_cid'])
  const cell = (v: unknown): string => {
    const s = cellText(v).replace(/[\r\n\t]/g, ' ')
    return s.length > MAX_CELL ? s.slice(0, MAX_CELL - 1) + '…' : s
  }
  const numeric = columns.map((c) => head.every((r) => typeof at(r, c) === 'number' || at(r, c) === undefined))
  const widths = columns.map((c) => Math.max(c.length, ...head.map((r) => cell(at(r, c)).length)))
  const line = (cells: string[]): string =>
    cells
      .map((s, i) => (numeric[i] ? s.padStart(widths[i]!) : i === cells.length - 1 ? s : s.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd() + '\n'
  out.write(line(columns))
  for (const row of head) out.write(line(columns.map((c) => cell(at(row, c)))))
  for await (const row of remaining(rest)) out.write(line(columns.map((c) => cell(at(row, c)))))
}
