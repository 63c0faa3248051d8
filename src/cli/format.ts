import { cidToString, type CID } from '../codec/cid.js'
import type { Commit } from '../model/commit.js'
import { formatPerson } from '../model/commit.js'
import { toDagJson } from '../model/record.js'
import type { TreeChange, TreeEntry } from '../model/tree.js'
import type { DiffItem } from '../repo/diff.js'

/** JSON form of a commit for --json output (links as DAG-JSON). */
export function commitJson(cid: CID, commit: Commit): Record<string, unknown> {
  return { cid: cidToString(cid), ...(toDagJson(commit) as Record<string, unknown>), date: new Date(commit.time).toISOString() }
}

export function entryJson(path: string, entry: TreeEntry): Record<string, unknown> {
  return { path, kind: entry.kind, size: entry.size, cid: cidToString(entry.cid) }
}

export function changeJson(change: TreeChange): Record<string, unknown> {
  const out: Record<string, unknown> = { type: change.type, path: change.path }
  if (change.type !== 'added') out.before = entryJson(change.path, change.before)
  if (change.type !== 'removed') out.after = entryJson(change.path, change.after)
  return out
}

/** A commit header the way git prints one. */
export function commitText(cid: CID, commit: Commit): string {
  const lines = [`commit ${cidToString(cid)}`]
  if (commit.parents.length > 1) lines.push(`Merge: ${commit.parents.map((p) => cidToString(p).slice(0, 16)).join(' ')}`)
  lines.push(`Author: ${formatPerson(commit.author)}`, `Date:   ${new Date(commit.time).toISOString()}`)
  if (commit.meta && Object.keys(commit.meta).length) {
    lines.push(`Meta:   ${Object.entries(commit.meta).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(toDagJson(v))}`).join(' ')}`)
  }
  lines.push('', ...commit.message.split('\n').map((l) => `    ${l}`))
  return lines.join('\n')
}

export const short = (cid: CID): string => cidToString(cid).slice(0, 16)

export const changeMark = { added: 'A', modified: 'M', removed: 'D' } as const

/** A value as it appears in a field-level diff line. */
export function scalarText(v: unknown): string {
  if (v === undefined) return '∅'
  return JSON.stringify(toDagJson(v))
}

/** Entries as `ls`, `show` and `checkout` print them (cid as a string); field values as DAG-JSON. */
export function diffJson(d: DiffItem): unknown {
  return {
    type: d.type,
    path: d.path,
    kind: d.kind,
    ...(d.before ? { before: entryJson(d.path, d.before) } : {}),
    ...(d.after ? { after: entryJson(d.path, d.after) } : {}),
    ...(d.fields ? { fields: toDagJson(d.fields) } : {}),
    ...(d.patch ? { patch: d.patch } : {}),
    ...(d.binary ? { binary: true } : {}),
    ...(d.tooLargeForText ? { tooLargeForText: true } : {}),
    ...(d.storage ? { storage: d.storage } : {}),
    ...(d.tensors ? { tensors: d.tensors } : {}),
    ...(d.note ? { note: d.note } : {}),
  }
}
