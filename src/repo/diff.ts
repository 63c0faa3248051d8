import { createTwoFilesPatch } from 'diff'
import { CID } from '../codec/cid.js'
import { readFile } from '../model/file.js'
import { formatRecordJson } from '../model/record.js'
import type { EntryKind, TreeEntry } from '../model/tree.js'
import type { Repository } from './repository.js'
import { resolveCommit } from './resolve.js'
import { chunkDelta, tensorDiff, type ChunkDelta, type TensorChange } from './model-diff.js'

export interface DiffOptions {
  /** Only paths equal to this or under it. */
  path?: string
  /** Counts and sizes only: no field-level or text diffs. */
  stat?: boolean
  /** Largest file (bytes) for which a text diff is computed. */
  maxTextBytes?: number
}

/** One changed field of a record, by dotted path (`metrics.loss`). */
export interface FieldChange {
  field: string
  before?: unknown
  after?: unknown
}

export interface DiffItem {
  type: 'added' | 'removed' | 'modified'
  path: string
  kind: EntryKind
  before?: TreeEntry
  after?: TreeEntry
  /** Records: the fields that differ. */
  fields?: FieldChange[]
  /** Text files: a unified diff. */
  patch?: string
  /** Files that are binary or too large for a text diff. */
  binary?: boolean
  /** Set with `binary` when the file was not read for a text diff because it is larger than `maxTextBytes` (it may be text). */
  tooLargeForText?: boolean
  /** Files: how many chunks and bytes of the new version are not in the old one. */
  storage?: ChunkDelta
  /** `.safetensors` files: tensors added, removed, reshaped or changed. */
  tensors?: TensorChange[]
  /** Why a file that looked like a model could not be compared as one. */
  note?: string
}

/**
 * What changed from revision `a` to revision `b`, path by path in order: records get a
 * field-level diff, text files a unified diff, other files a size and CID change.
 * Unchanged subtrees are skipped by CID, so cost follows the size of the difference.
 *
 * @example
 * for await (const d of diff(repo, 'v3', 'v7')) console.log(d.type, d.path)
 */
export async function* diff(repo: Repository, a: string, b: string, options: DiffOptions = {}): AsyncGenerator<DiffItem> {
  const { path, stat = false, maxTextBytes = 1 << 20 } = options
  const [left, right] = await Promise.all([resolveCommit(repo, a), resolveCommit(repo, b)])
  const under = path === undefined ? undefined : path.replace(/\/+$/, '')
  for await (const change of repo.trees.diff(left.commit.tree, right.commit.tree, { prefix: under ?? '' })) {
    if (under !== undefined && change.path !== under && !change.path.startsWith(`${under}/`)) continue
    const before = change.type === 'added' ? undefined : change.before
    const after = change.type === 'removed' ? undefined : change.after
    const item: DiffItem = { type: change.type, path: change.path, kind: (after ?? before)!.kind, before, after }
    if (!stat) await describe(repo, item, maxTextBytes)
    yield item
  }
}

async function describe(repo: Repository, item: DiffItem, maxTextBytes: number): Promise<void> {
  const { before, after } = item
  if (item.kind === 'record' && (!before || before.kind === 'record') && (!after || after.kind === 'record')) {
    const oldValue = before ? await repo.readNode(before.cid) : {}
    const newValue = after ? await repo.readNode(after.cid) : {}
    item.fields = fieldChanges(oldValue, newValue)
    return
  }
  const small = (before?.size ?? 0) <= maxTextBytes && (after?.size ?? 0) <= maxTextBytes
  if (!small) item.tooLargeForText = true
  if (small) {
    const oldText = before ? asText(await readAll(repo, before)) : ''
    const newText = after ? asText(await readAll(repo, after)) : ''
    if (oldText !== undefined && newText !== undefined) {
      item.patch = createTwoFilesPatch(before ? `a/${item.path}` : '/dev/null', after ? `b/${item.path}` : '/dev/null', oldText, newText, '', '', {
        context: 3,
      })
      return
    }
  }
  item.binary = true
  if (after) item.storage = await chunkDelta(repo, before?.kind === 'file' ? before : undefined, after)
  if (before && after && item.path.endsWith('.safetensors')) {
    const t = await tensorDiff(repo, before, after)
    if ('note' in t) item.note = t.note
    else item.tensors = t.tensors
  }
}

/** Flatten two values to dotted paths and list the differences, in path order. */
export function fieldChanges(before: unknown, after: unknown): FieldChange[] {
  const a = flatten(before)
  const b = flatten(after)
  const fields = [...new Set([...a.keys(), ...b.keys()])].sort()
  const out: FieldChange[] = []
  for (const field of fields) {
    const x = a.get(field)
    const y = b.get(field)
    if (a.has(field) && b.has(field) && sameScalar(x, y)) continue
    const change: FieldChange = { field }
    if (a.has(field)) change.before = x
    if (b.has(field)) change.after = y
    out.push(change)
  }
  return out
}

function flatten(value: unknown, prefix = '', out = new Map<string, unknown>()): Map<string, unknown> {
  const cid = CID.asCID(value)
  const isContainer = value !== null && typeof value === 'object' && !cid && !(value instanceof Uint8Array)
  if (!isContainer) {
    out.set(prefix || '.', cid ? { '/': cid.toString() } : value)
    return out
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value as object)
  if (entries.length === 0 && prefix) out.set(prefix, Array.isArray(value) ? [] : {})
  for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out)
  return out
}

function sameScalar(x: unknown, y: unknown): boolean {
  if (x instanceof Uint8Array && y instanceof Uint8Array) return Buffer.from(x).equals(Buffer.from(y))
  return JSON.stringify(x) === JSON.stringify(y)
}

async function readAll(repo: Repository, entry: TreeEntry): Promise<Uint8Array> {
  // A path that changed kind (record ↔ file) compares the record as the JSON a checkout writes.
  if (entry.kind === 'record') return Buffer.from(formatRecordJson(await repo.readNode(entry.cid)))
  const parts: Uint8Array[] = []
  for await (const p of readFile(repo.blocks, entry.cid)) parts.push(p)
  return Buffer.concat(parts)
}

/** The bytes as text, or undefined if they look binary (NUL bytes or invalid UTF-8). */
function asText(bytes: Uint8Array): string | undefined {
  if (bytes.includes(0)) return undefined
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
}
