import { CID, cidToString } from '../codec/cid.js'
import { encodeRecord, type EncodedRecord } from '../codec/block.js'
import { InvalidInputError, NotFoundError, PathConflictError, PedigreeError } from '../errors.js'
import type { Person } from '../model/commit.js'
import { fromDagJson, parseRecordJson, type RecordValue } from '../model/record.js'
import { checkRefName } from '../refs/ref-name.js'
import { commit } from './commit.js'
import {
  CHUNK_CHARS,
  CHUNK_LINES,
  LINE_BAD,
  LINE_RECORD,
  LINE_REFERENCE,
  compileTemplate,
  encodeAndPlace,
  hasReferences,
  lineEncoder,
  readChunk,
  type EncodedChunk,
  type LineChunk,
  type ReadLine,
} from './ingest-line.js'
import { InputDigest, findIngestChain, ingestMark, type IngestLink } from './ingest-resume.js'
import type { JobWorker } from '../util/job-worker.js'
import type { Repository } from './repository.js'
import { resolveEntry } from './resolve.js'

export interface IngestOptions {
  /** The ref each batch is committed to. */
  ref: string
  author: Person
  /**
   * Where each record goes in the tree: `{field}` or `{a.b}` take the record's fields,
   * `{_cid}` its CID, `{_line}` its line number. Default `records/{_cid}.json`.
   */
  pathTemplate?: string
  /**
   * Records per commit (default 1000). A crash loses at most the open batch, and running the
   * same ingest again (same input, same path template, same ref) resumes it: the lines that
   * an earlier run committed are skipped, checked by the digest each commit records in
   * `meta.ingest` (see ingest-resume.ts), and the rest are committed.
   */
  batch?: number
  /** Record bad lines through `onReject` and go on, instead of stopping. */
  skipBad?: boolean
  onReject?: (reject: IngestReject) => void
  /** Accept links to CIDs that are not in the store. */
  allowDangling?: boolean
  /** Commit message prefix (default `ingest`). */
  message?: string
  meta?: Record<string, unknown>
  onProgress?: (p: { lines: number; records: number; commits: number }) => void
  /** Parse, encode and hash lines on a worker thread when the input is long enough to pay (default true). */
  encodeOnWorker?: boolean
}

export interface IngestReject {
  line: number
  error: string
  text?: string
}

export interface IngestResult {
  lines: number
  /** Records in the batches committed by this run. */
  records: number
  rejected: number
  commits: { cid: CID; records: number; firstLine: number; lastLine: number }[]
  /**
   * Lines nothing was committed for: `ingested`, lines an earlier run of this input committed
   * (one entry per commit of that run, its lines and records), and `unchanged`, batches whose
   * records the ref held at their paths already.
   */
  skipped: { records: number; firstLine: number; lastLine: number; reason: 'ingested' | 'unchanged' }[]
}

/** A record read and encoded, waiting for its batch's commit; `text`, its line, kept for the rejects file (with skipBad). */
type Pending = { path: string; block: EncodedRecord; line: number; text: string | undefined }

/** Chunks of lines read ahead of the one ingest is taking: the encoding worker's queue, and what bounds ingest's memory. */
const CHUNKS_AHEAD = 3

/**
 * Commit a stream of records in batches, one commit per batch: JSON Lines text (one
 * record per string) or record objects. Links are DAG-JSON `{"/": "<cid>"}`; a reference
 * `{"@": "<rev>:<path>"}` is resolved to the CID at that path (that exact version) when
 * the line is read, including paths written earlier in the same batch. A bad line stops
 * the ingest before anything of its batch is committed (earlier batches stay committed),
 * unless `skipBad`. Records that link to CIDs not in the store are bad lines unless
 * `allowDangling`. Cycles cannot be written: a record can only link to CIDs that exist
 * before it, and a CID names its content.
 *
 * Lines are parsed, encoded and hashed on a worker thread when the input is long enough for
 * that to pay (see ingest-line.ts); what is committed is the same either way.
 *
 * @example
 * const lines = readline.createInterface({ input: fs.createReadStream('tasks.jsonl') })
 * await ingest(repo, lines, { ref: 'main', author: { name: 'flowcept' }, pathTemplate: 'tasks/{workflow_id}/{task_id}.json' })
 */
export async function ingest(repo: Repository, source: AsyncIterable<string | RecordValue>, options: IngestOptions): Promise<IngestResult> {
  const { ref, author, pathTemplate = 'records/{_cid}.json', batch: batchSize = 1000, skipBad = false, onReject, allowDangling = false, meta, onProgress } = options
  checkRefName(ref)
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new InvalidInputError(`batch size must be a positive integer, got ${batchSize}`)
  const template = compileTemplate(pathTemplate)
  const result: IngestResult = { lines: 0, records: 0, rejected: 0, commits: [], skipped: [] }
  let pending: Pending[] = []
  let inBatch = new Map<string, CID>()
  const resolved = new Map<string, CID>()

  // Resuming (ingest-resume.ts): the digest of the input so far, the earlier run's commits
  // still to check (found once line 1 is read), the lines read since the last one that
  // matched (committed only if a later one does not), and where this run's next commit begins.
  let input = new InputDigest(pathTemplate)
  let atChecked = input.snapshot(pathTemplate)
  let chain: IngestLink[] | undefined
  let held: Line[] = []
  let head = ''
  let covered: { line: number; digest: string; cid?: CID } = { line: 0, digest: input.through(0) }

  const fail = (line: number, e: unknown, text?: string): void => {
    const message = e instanceof Error ? e.message : String(e)
    if (!skipBad) {
      const first = pending[0]?.line ?? line
      // Keep the cause's code (a missing reference is ERR_NOT_FOUND), adding where it happened.
      throw new PedigreeError(
        e instanceof PedigreeError ? e.code : 'ERR_INVALID_INPUT',
        `${message.includes(`line ${line}, column `) ? '' : `line ${line}: `}${message}; nothing of the open batch (lines ${first}–${line}) was committed` +
          (result.commits.length ? `, ${result.records} records in ${result.commits.length} earlier batch(es) were` : ''),
        { line, committedRecords: result.records, commits: result.commits.map((c) => cidToString(c.cid)) },
        { cause: e },
      )
    }
    result.rejected++
    onReject?.({ line, error: message, ...(text !== undefined ? { text } : {}) })
  }

  /** Commit the open batch, which covers the lines read through `through`. */
  const flush = async (through: number): Promise<void> => {
    if (pending.length === 0) return
    if (!allowDangling) await dropDangling()
    if (pending.length === 0) return
    for (;;) {
      const first = pending[0]!.line
      const last = pending[pending.length - 1]!.line
      const mark = ingestMark(head, [covered.line + 1, through], covered.digest, input.through(through), pending.length, covered.cid)
      try {
        const r = await commit(repo, {
          ref,
          author,
          message: `${options.message ?? 'ingest'}: ${pending.length} records (lines ${first}–${last})`,
          meta: { ...meta, ingest: mark },
          allowDangling: true,
          // Each record was encoded to name its path: commit stores that block as it is.
          edits: pending.map((p) => ({ type: 'record' as const, path: p.path, block: p.block })),
        })
        result.records += pending.length
        result.commits.push({ cid: r.cid, records: pending.length, firstLine: first, lastLine: last })
        covered = { line: through, digest: mark.through, cid: r.cid }
      } catch (e) {
        if (e instanceof PathConflictError) {
          // A record whose path is a folder of the tree, or under a record's path: the later
          // of the records named is the bad line (with skipBad, the batch is committed without it).
          const at = pending.findLastIndex((p) => p.path === e.under || p.path === e.entry)
          if (at >= 0) {
            const [bad] = pending.splice(at, 1)
            fail(bad!.line, e, bad!.text)
            if (pending.length === 0) break
            continue
          }
        }
        // The ref holds every record of this batch at its path already. Its lines are covered
        // by this run's next commit, which records them as read.
        if (!(e instanceof PedigreeError && e.code === 'ERR_NOTHING_TO_COMMIT')) throw e
        result.skipped.push({ records: pending.length, firstLine: first, lastLine: last, reason: 'unchanged' })
      }
      break
    }
    pending = []
    inBatch = new Map()
    resolved.clear()
    onProgress?.({ lines: result.lines, records: result.records, commits: result.commits.length })
  }

  /** Links must point at blocks in the store or at records of this batch. */
  const dropDangling = async (): Promise<void> => {
    if (!pending.some((p) => p.block.links.length > 0)) return
    const wanted = new Map<string, CID>()
    const batchCids = new Set(pending.map((p) => cidToString(p.block.cid)))
    for (const p of pending) {
      for (const [, c] of p.block.links) {
        const k = cidToString(c)
        if (!batchCids.has(k)) wanted.set(k, c)
      }
    }
    if (wanted.size === 0) return
    const cids = [...wanted.values()]
    const present = await repo.blocks.hasMany(cids)
    const missing = new Set(cids.filter((_, i) => !present[i]).map(cidToString))
    if (missing.size === 0) return
    const keep: Pending[] = []
    for (const p of pending) {
      const bad = p.block.links.find(([, c]) => missing.has(cidToString(c)))
      if (!bad) keep.push(p)
      else fail(p.line, new NotFoundError('linked CID', cidToString(bad[1]), `at ${bad[0]}; use --allow-dangling to accept it`), p.text)
    }
    pending = keep
  }

  /** A line with references, or a record object, read on this thread: references read the store, in order. */
  const readHere = async (item: string | RecordValue, line: number): Promise<Pending | undefined> => {
    try {
      const parsed = typeof item === 'string' ? parseRecordJson(item, 'the input', { firstLine: line }) : (fromDagJson(item) as RecordValue)
      const value = hasReferences(parsed) ? ((await resolveReferences(repo, parsed, ref, inBatch, resolved)) as RecordValue) : parsed
      return { ...encodeAndPlace(value, template, line), line, text: skipBad && typeof item === 'string' ? item : undefined }
    } catch (e) {
      if (!(e instanceof PedigreeError)) throw e
      fail(line, e, typeof item === 'string' ? item : undefined)
      return undefined
    }
  }

  /** Add a record to the open batch, committing the batch before it and after it as needed. */
  const take = async (record: Pending): Promise<void> => {
    // A path seen again (a task's status, updated) ends the batch: each version is a commit.
    if (inBatch.has(record.path)) await flush(record.line - 1)
    add(record)
    if (pending.length >= batchSize) await flush(record.line)
  }
  const add = (record: Pending): void => {
    pending.push(record)
    inBatch.set(record.path, record.block.cid)
    if (record.line % 1000 === 0) onProgress?.({ lines: result.lines, records: result.records + pending.length, commits: result.commits.length })
  }

  /** Ingest a line read (its digest added already): a promise only when it has to wait. */
  const handle = (item: Line): Promise<void> | undefined => {
    const { line, read } = item
    if (read === undefined) return readHere(item.item, line).then((record) => (record ? take(record) : undefined))
    if (read.kind === LINE_RECORD) {
      // take(), without an await per line when no batch ends here.
      const record = { path: read.path, block: read.block, line, text: skipBad ? item.item : undefined }
      if (inBatch.has(record.path) || pending.length + 1 >= batchSize) return take(record)
      add(record)
    } else if (read.kind === LINE_BAD) fail(line, read.error, item.item)
    else if (read.kind === LINE_REFERENCE) return readHere(item.item, line).then((record) => (record ? take(record) : undefined))
    return undefined
  }

  /** The earlier run's lines, while they match, are held and then skipped; the first that differs sends them to {@link handle}. */
  const next = (item: Line): Promise<void> | undefined => {
    input.add(item.digestText)
    if (chain === undefined) return startResume(item)
    if (chain.length === 0) return handle(item)
    held.push(item)
    const mark = chain[0]!
    if (item.line < mark.lines[1]) return undefined
    const digest = input.through(item.line)
    if (digest !== mark.through) return giveUpResume()
    // Committed by the earlier run: skipped.
    result.skipped.push({ records: mark.records, firstLine: mark.lines[0], lastLine: mark.lines[1], reason: 'ingested' })
    covered = { line: item.line, digest, cid: mark.cid }
    atChecked = input.snapshot(pathTemplate)
    held = []
    chain.shift()
    return undefined
  }
  /** Line 1: look for an earlier run of this input. */
  const startResume = async (item: Line): Promise<void> => {
    head = input.through(1)
    chain = await findIngestChain(repo, ref, head)
    input = atChecked.snapshot(pathTemplate)
    await next(item)
  }
  /** The input differs from the earlier run's (or ends before it did): the held lines are ingested after all. */
  const giveUpResume = async (): Promise<void> => {
    chain = []
    input = atChecked.snapshot(pathTemplate)
    const lines = held
    held = []
    for (const h of lines) await next(h)
  }

  const encoder = lineEncoder(pathTemplate, { onWorker: options.encodeOnWorker ?? true })
  try {
    for await (const group of inChunks(source, encoder)) {
      if (!Array.isArray(group)) {
        result.lines = group.line
        await next({ line: group.line, item: group.item, digestText: objectDigestText(group.item) })
        continue
      }
      const [chunk, lines] = group
      for (const read of readChunk(chunk)) {
        const line = (result.lines = read.line)
        const text = lines[line - chunk.firstLine]!
        const waiting = next({ line, item: text, read, digestText: text })
        if (waiting) await waiting
      }
    }
    if (held.length > 0) await giveUpResume()
    await flush(result.lines)
  } finally {
    await encoder.close()
  }
  return result
}

/** A line of the input: its text (or a record object), what the encoder made of it, and what names it in the input's digest. */
type Line = { line: number; item: string; read: ReadLine; digestText: string } | { line: number; item: RecordValue; read?: undefined; digestText: string }

/** What stands for a record object in the input's digest: the CID of its encoding (as given, references unresolved). */
function objectDigestText(item: RecordValue): string {
  try {
    return `\0${cidToString(encodeRecord(fromDagJson(item) as RecordValue).cid)}`
  } catch {
    return '\0bad'
  }
}

/**
 * The source's strings in encoded chunks of {@link CHUNK_LINES} lines or {@link CHUNK_CHARS}
 * characters, whichever comes first (with their text), and
 * its record objects one by one, in order. Up to {@link CHUNKS_AHEAD} chunks are read ahead
 * of the one taken, so that the encoding worker has lines to encode while ingest commits.
 */
async function* inChunks(
  source: AsyncIterable<string | RecordValue>,
  encoder: JobWorker<LineChunk, EncodedChunk>,
): AsyncGenerator<[EncodedChunk, string[]] | { item: RecordValue; line: number }> {
  const ahead: Array<Promise<[EncodedChunk, string[]]> | { item: RecordValue; line: number }> = []
  let lines: string[] = []
  let chars = 0
  let firstLine = 1
  let line = 0
  const post = (): void => {
    if (lines.length === 0) return
    const text = lines
    // The first full chunk starts the worker; a short input (its one chunk not full) is encoded here.
    const full = lines.length >= CHUNK_LINES || chars >= CHUNK_CHARS
    const encoded = encoder.run({ lines: text, firstLine }, { startWorker: full }).then((chunk): [EncodedChunk, string[]] => [chunk, text])
    // Seen when its turn comes; until then, a failure must not count as unhandled.
    encoded.catch(() => {})
    ahead.push(encoded)
    lines = []
    chars = 0
  }
  for await (const item of source) {
    line++
    if (typeof item === 'string') {
      if (lines.length === 0) firstLine = line
      lines.push(item)
      chars += item.length
      if (lines.length >= CHUNK_LINES || chars >= CHUNK_CHARS) post()
    } else {
      post()
      ahead.push({ item, line })
    }
    while (ahead.length > CHUNKS_AHEAD) yield await ahead.shift()!
  }
  post()
  while (ahead.length > 0) yield await ahead.shift()!
}

/** Replace every `{"@": "<rev>:<path>"}` with the CID it names. */
async function resolveReferences(repo: Repository, value: unknown, ref: string, inBatch: Map<string, CID>, cache: Map<string, CID>): Promise<unknown> {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array || CID.asCID(value)) return value
  if (Array.isArray(value)) return Promise.all(value.map((v) => resolveReferences(repo, v, ref, inBatch, cache)))
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
  if (keys.length === 1 && keys[0] === '@') {
    const spec = obj['@']
    if (typeof spec !== 'string' || !spec.includes(':')) throw new InvalidInputError(`bad reference ${JSON.stringify(obj)}: expected {"@": "<rev>:<path>"}`)
    const colon = spec.indexOf(':')
    const rev = spec.slice(0, colon) || ref
    const path = spec.slice(colon + 1)
    if (rev === ref && inBatch.has(path)) return inBatch.get(path)
    const hit = cache.get(spec)
    if (hit) return hit
    let cid: CID
    try {
      cid = (await resolveEntry(repo, `${rev}:${path}`)).entry.cid
    } catch (e) {
      if (e instanceof NotFoundError) throw new NotFoundError('reference', spec, (e as Error).message)
      throw e
    }
    cache.set(spec, cid)
    return cid
  }
  const out: Record<string, unknown> = {}
  for (const k of keys) out[k] = await resolveReferences(repo, obj[k], ref, inBatch, cache)
  return out
}
