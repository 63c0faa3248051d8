import { CID, cidFromBytes, cidToString } from '../codec/cid.js'
import { EncodedRecord, encodeRecord } from '../codec/block.js'
import { InvalidInputError, PedigreeError } from '../errors.js'
import { mayHoldKey, parseRecordJson, type RecordValue } from '../model/record.js'
import { validateTreePath } from '../model/tree-path.js'
import { JobWorker, type JobOutput } from '../util/job-worker.js'

/**
 * Ingest's work on one line of JSON Lines that needs nothing from the store: parse it, encode
 * it as dag-cbor, hash it, and fill in its path. Done in chunks of lines on a worker thread
 * (ingest-worker.ts, see {@link lineEncoder}) or on the main thread, with the results packed
 * into a few arrays (an {@link EncodedChunk}): a chunk crosses to the main thread as four
 * buffers moved, not copied, and a few strings, where an object per record would be copied
 * field by field. Parsing, encoding and hashing are about a third of what ingest does on its
 * main thread when done there (bench/perf/NOTES.md, session 6).
 */

/** Lines per chunk: enough that posting a chunk (~0.1 ms) is small beside encoding it (~15 ms). */
export const CHUNK_LINES = 512
/** Characters at which a chunk of long lines is full before {@link CHUNK_LINES}: what it holds stays a few MiB. */
export const CHUNK_CHARS = 4 * 1024 * 1024

/** A chunk of lines to encode; line numbers from `firstLine`. */
export interface LineChunk {
  lines: string[]
  firstLine: number
}

/**
 * Ingest's line encoder: chunks of lines encoded on a worker thread once a chunk is full
 * (`startWorker`), on this thread before that and wherever the worker cannot run.
 */
export function lineEncoder(pathTemplate: string, { onWorker = true }: { onWorker?: boolean } = {}): JobWorker<LineChunk, EncodedChunk> {
  const template = compileTemplate(pathTemplate)
  return new JobWorker(new URL('./ingest-worker.js', import.meta.url), pathTemplate, ({ lines, firstLine }) => encodeLines(lines, firstLine, template), {
    enabled: onWorker,
  })
}

/** The worker's side of {@link lineEncoder}: encode each chunk, and move its buffers back. */
export function encodeChunkJob(pathTemplate: string): (chunk: LineChunk) => JobOutput<EncodedChunk> {
  const template = compileTemplate(pathTemplate)
  return ({ lines, firstLine }) => {
    const result = encodeLines(lines, firstLine, template)
    return { result, transfer: [result.bytes, result.ends, result.cids, result.kinds].map((a) => a.buffer as ArrayBuffer) }
  }
}

/** What became of a line of an {@link EncodedChunk}. */
export const LINE_RECORD = 0
/** An empty or all-space line: skipped. */
export const LINE_BLANK = 1
/** A bad line (its error in `errors`). */
export const LINE_BAD = 2
/** A line holding a `{"@": …}` reference: resolved on the main thread, in order, as it reads the store. */
export const LINE_REFERENCE = 3

/** The CIDs ingest makes (CIDv1, dag-cbor, sha2-256) are 36 bytes. */
const CID_BYTES = 36

/** A chunk of lines, encoded. Arrays indexed by line (0 is the chunk's `firstLine`). */
export interface EncodedChunk {
  firstLine: number
  kinds: Uint8Array
  /** The blocks of the records, end to end: line i's block ends at `ends[i]`, where line i-1's ended. */
  bytes: Uint8Array
  ends: Uint32Array
  /** Line i's CID is at `cids[36 i …]` (zeros for other lines). */
  cids: Uint8Array
  /** Line i's tree path ('' for other lines). */
  paths: string[]
  /** The bad lines' errors. */
  errors: { index: number; code: string; message: string }[]
  /** The links of records that have some, as field paths and CID bytes. */
  links: { index: number; links: [string, Uint8Array][] }[]
}

/** One line of a chunk, as ingest takes it on the main thread. */
export type ReadLine =
  | { kind: typeof LINE_RECORD; line: number; path: string; block: EncodedRecord }
  | { kind: typeof LINE_BLANK; line: number }
  | { kind: typeof LINE_BAD; line: number; error: PedigreeError }
  | { kind: typeof LINE_REFERENCE; line: number }

/** Where each record goes in the tree: see {@link compileTemplate}. */
export type PathTemplate = (value: RecordValue, cid: CID, line: number) => string

/** Parse, encode and name each line of `lines` (line numbers from `firstLine`). */
export function encodeLines(lines: readonly string[], firstLine: number, template: PathTemplate): EncodedChunk {
  const n = lines.length
  const kinds = new Uint8Array(n)
  const ends = new Uint32Array(n)
  const cids = new Uint8Array(n * CID_BYTES)
  const paths = new Array<string>(n).fill('')
  const errors: EncodedChunk['errors'] = []
  const links: EncodedChunk['links'] = []
  const blocks: Uint8Array[] = []
  let size = 0
  for (let i = 0; i < n; i++) {
    const text = lines[i]!
    const line = firstLine + i
    ends[i] = size
    if (text.trim() === '') {
      kinds[i] = LINE_BLANK
      continue
    }
    try {
      const value = parseRecordJson(text, 'the input', { firstLine: line })
      if (mayHoldKey(text, '@') && hasReferences(value)) {
        kinds[i] = LINE_REFERENCE
        continue
      }
      const { block, path } = encodeAndPlace(value, template, line)
      paths[i] = path
      if (block.cid.bytes.length !== CID_BYTES) throw new Error(`ingest: a record's CID is ${block.cid.bytes.length} bytes, not ${CID_BYTES}`)
      cids.set(block.cid.bytes, i * CID_BYTES)
      blocks.push(block.bytes)
      size += block.bytes.length
      ends[i] = size
      if (block.links.length > 0) links.push({ index: i, links: block.links.map(([field, cid]) => [field, cid.bytes]) })
    } catch (e) {
      if (!(e instanceof PedigreeError)) throw e
      kinds[i] = LINE_BAD
      errors.push({ index: i, code: e.code, message: e.message })
    }
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const b of blocks) {
    bytes.set(b, at)
    at += b.length
  }
  return { firstLine, kinds, bytes, ends, cids, paths, errors, links }
}

/** A record encoded, and the tree path the template gives it (checked). */
export function encodeAndPlace(value: RecordValue, template: PathTemplate, line: number): { block: EncodedRecord; path: string } {
  const block = encodeRecord(value)
  return { block, path: validateTreePath(template(value, block.cid, line)) }
}

/** The lines of a chunk, in order, as records, blanks, bad lines and lines with references. */
export function readChunk(chunk: EncodedChunk): ReadLine[] {
  const { firstLine, kinds, bytes, ends, cids, paths } = chunk
  const errors = new Map(chunk.errors.map((e) => [e.index, e]))
  const links = new Map(chunk.links.map((l) => [l.index, l.links]))
  const out = new Array<ReadLine>(kinds.length)
  for (let i = 0; i < kinds.length; i++) {
    const line = firstLine + i
    const kind = kinds[i]!
    if (kind === LINE_RECORD) {
      const cid = cidFromBytes(cids.subarray(i * CID_BYTES, (i + 1) * CID_BYTES))
      const found = links.get(i)
      const block = new EncodedRecord(cid, bytes.subarray(i === 0 ? 0 : ends[i - 1]!, ends[i]!), found ? found.map(([field, c]) => [field, cidFromBytes(c)] as const) : [])
      out[i] = { kind, line, path: paths[i]!, block }
    } else if (kind === LINE_BAD) {
      const e = errors.get(i)!
      out[i] = { kind, line, error: new PedigreeError(e.code, e.message, { line }) }
    } else if (kind === LINE_BLANK || kind === LINE_REFERENCE) out[i] = { kind, line }
    else throw new Error(`ingest: unknown line kind ${kind}`)
  }
  return out
}

/** Whether a value holds a `{"@": …}` reference anywhere (what ingest's resolveReferences replaces). */
export function hasReferences(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array || CID.asCID(value)) return false
  if (Array.isArray(value)) return value.some(hasReferences)
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
  if (keys.length === 1 && keys[0] === '@') return true
  for (const k of keys) if (hasReferences(obj[k])) return true
  return false
}

/**
 * Turn `tasks/{workflow_id}/{task_id}.json` into a function of a record: `{field}` or `{a.b}`
 * take the record's fields, `{_cid}` its CID, `{_line}` its line number. A template that no
 * record could fill (a brace not closed or not opened, an empty field name, no field at all,
 * or text that makes no tree path whatever the fields hold) is refused here, before a line
 * is read, with an error naming the template.
 */
export function compileTemplate(template: string): PathTemplate {
  const parts = checkTemplate(template)
  return (value, cid, line) =>
    parts
      .map((part) => {
        if (typeof part === 'string') return part
        const { field, keys } = part
        if (field === '_cid') return cidToString(cid)
        if (field === '_line') return String(line)
        let v: unknown = value
        for (const key of keys) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined
        if (v === undefined || v === null || typeof v === 'object') throw new InvalidInputError(`the path template needs field '${field}', which this record ${v === undefined || v === null ? 'lacks' : 'has as a non-scalar'}`)
        return String(v)
      })
      .join('')
}

/** A template split into its text and its `{field}`s, or an error saying what is wrong with it. */
function checkTemplate(template: string): Array<string | { field: string; keys: string[] }> {
  const bad = (why: string): never => {
    throw new InvalidInputError(`path template '${template}' ${why}`, { template })
  }
  const parts: Array<string | { field: string; keys: string[] }> = []
  let text = ''
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!
    if (c === '}') bad(`has a '}' at character ${i + 1} with no '{' before it`)
    if (c !== '{') {
      text += c
      continue
    }
    const close = template.indexOf('}', i + 1)
    const reopen = template.indexOf('{', i + 1)
    if (close < 0 || (reopen >= 0 && reopen < close)) bad(`has a '{' at character ${i + 1} that is not closed by '}'`)
    const field = template.slice(i + 1, close)
    if (field === '') bad(`has an empty field name '{}' at character ${i + 1}`)
    const keys = field.split('.')
    if (keys.includes('')) bad(`has a field '{${field}}' with an empty name between its dots`)
    if (text) parts.push(text)
    text = ''
    parts.push({ field, keys })
    i = close
  }
  if (text) parts.push(text)
  if (!parts.some((p) => typeof p !== 'string')) bad('has no {field}: every record would land on one path')
  // With every field filled by a plain name, the text around the fields must make a tree path:
  // a leading '/', a '//' or a '..' segment there is wrong for every record.
  try {
    validateTreePath(parts.map((p) => (typeof p === 'string' ? p : 'x')).join(''))
  } catch (e) {
    bad(`cannot give a valid tree path: ${(e as Error).message}`)
  }
  return parts
}
