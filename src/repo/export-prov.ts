import { CID, DAG_CBOR, RAW, cidToString, parseCid } from '../codec/cid.js'
import { linksOf } from '../codec/block.js'
import { InvalidInputError, NotFoundError } from '../errors.js'
import { formatPerson, isCommitShape, type Person } from '../model/commit.js'
import { isFileNode } from '../model/file.js'
import type { TreeEntry } from '../model/tree.js'
import { CONVENTIONAL_FIELDS } from './lineage-graph.js'
import { log } from './log.js'
import { provDocument, type ProvAgentInput, type ProvEdgeInput, type ProvInvalidationInput, type ProvJson, type ProvNodeInput, type ProvRevisionInput } from './prov.js'
import type { Repository } from './repository.js'
import { resolveCommit } from './resolve.js'

/** The ref whose tree holds invalidation records (`invalidated/<cid>.json`). */
const INVALIDATIONS_REF = 'invalidations'
const INVALIDATED_PREFIX = 'invalidated/'

export interface ExportProvOptions {
  /** Only these entries, or entries under these folders (default: the whole tree). */
  paths?: string[]
  /**
   * Most commits of history walked for revisions and attribution (default 10 000).
   * Versions introduced before the bound are neither linked as revisions nor attributed.
   */
  maxCommits?: number
}

/**
 * The W3C PROV-JSON document of a revision: every record and file of its tree (or under
 * `paths`) with the relations its links name (see prov.ts for the mapping), the nodes those
 * links point to outside the selection (one hop, classed by their content), and:
 *
 * - **attribution**: each entry is credited to the author of the commit that introduced that
 *   version at that path (the oldest commit, within `maxCommits`, whose diff with its first
 *   parent set the path to that CID): wasAttributedTo for an entity, wasAssociatedWith with
 *   `prov:role` "committer" for an activity record;
 * - **revisions**: wasDerivedFrom with `prov:type` prov:Revision from each version of a
 *   selected path to the one it replaced, found by diffing each commit of the revision's
 *   history with its first parent (a stream, bounded by `maxCommits`);
 * - **invalidations**: wasInvalidatedBy for each node of the document named by a record
 *   in the `invalidations` ref (none when that ref does not exist); the invalidation
 *   record is the activity, associated with whoever it says did it.
 *
 * @example
 * const doc = await exportProv(repo, 'main', { paths: ['model/'] })
 * await writeFile('model.prov.json', JSON.stringify(doc, null, 2))
 */
export async function exportProv(repo: Repository, rev: string, { paths = [], maxCommits = 10_000 }: ExportProvOptions = {}): Promise<ProvJson> {
  if (!Number.isSafeInteger(maxCommits) || maxCommits < 0) throw new InvalidInputError(`maxCommits must be a non-negative integer, got ${maxCommits}`)
  const head = await resolveCommit(repo, rev)
  const selection = paths.map((p) => p.replace(/\/+$/, '')).filter((p, i, all) => p !== '' && all.indexOf(p) === i)
  const under = (path: string, p: string): boolean => p === '' || path === p || path.startsWith(`${p}/`)

  const nodes = new Map<string, ProvNodeInput>()
  const edges: ProvEdgeInput[] = []
  /** path → CID string of the selected entries. */
  const current = new Map<string, string>()
  for (const prefix of selection.length ? selection : ['']) {
    let found = false
    for await (const [path, entry] of repo.trees.entries(head.commit.tree, { prefix })) {
      if (!under(path, prefix)) continue
      found = true
      if (current.has(path)) continue
      const cid = cidToString(entry.cid)
      current.set(path, cid)
      const known = nodes.get(cid)
      if (known) {
        known.paths!.push(path)
        continue
      }
      nodes.set(cid, await entryNode(repo, entry, path, edges))
    }
    if (!found && prefix !== '') throw new NotFoundError('path', prefix, `nothing at or under it in ${rev} (${cidToString(head.cid)})`, { rev, path: prefix })
  }

  // One hop out: what the selected records link to, classed by its content.
  for (const e of edges) if (!nodes.has(e.to)) nodes.set(e.to, await outsideNode(repo, parseCid(e.to)))

  const { revisions, introduced } = await walkHistory(repo, head.cid, current, maxCommits)
  for (const r of revisions) {
    for (const cid of [r.cid, r.previous]) if (!nodes.has(cid)) nodes.set(cid, await versionNode(repo, cid, r.path!))
  }

  const agents = new Map<string, ProvAgentInput>()
  for (const [key, by] of introduced) {
    const cid = key.slice(key.indexOf('\n') + 1)
    if (!nodes.has(cid)) continue
    const id = formatPerson(by.author)
    let agent = agents.get(id)
    if (!agent) agents.set(id, (agent = { name: by.author.name, ...(by.author.email ? { email: by.author.email } : {}), responsibleFor: [] }))
    agent.responsibleFor!.push({ cid, role: 'committer', commit: by.commit, time: by.time })
  }

  const invalidations = await readInvalidations(repo, new Set(nodes.keys()))
  return provDocument({ nodes: [...nodes.values()], edges, agents: [...agents.values()], revisions, invalidations })
}

/** A selected entry as a node; a record's links are appended to `edges`. */
async function entryNode(repo: Repository, entry: TreeEntry, path: string, edges: ProvEdgeInput[]): Promise<ProvNodeInput> {
  const cid = cidToString(entry.cid)
  if (entry.kind === 'file') return { cid, kind: 'file', paths: [path], size: entry.size }
  const value = await repo.readNode<Record<string, unknown>>(entry.cid)
  for (const [field, to] of linksOf(value)) edges.push({ from: cid, to: cidToString(to), relation: field.split('.')[0]!, field })
  return { cid, kind: 'record', paths: [path], size: entry.size, fields: value }
}

/** A node outside the selection: its kind and conventional fields, or `missing`. */
async function outsideNode(repo: Repository, cid: CID): Promise<ProvNodeInput> {
  const key = cidToString(cid)
  const bytes = await repo.blocks.tryGet(cid)
  if (!bytes) return { cid: key, kind: 'missing' }
  if (cid.code === RAW) return { cid: key, kind: 'file', size: bytes.length }
  if (cid.code !== DAG_CBOR) return { cid: key, kind: 'missing' }
  const value = await repo.readNode<Record<string, unknown>>(cid)
  if (isFileNode(value)) return { cid: key, kind: 'file', size: value.size }
  const fields: Record<string, unknown> = {}
  if (isCommitShape(value)) fields.type = 'commit'
  else for (const f of CONVENTIONAL_FIELDS) if (value[f] !== undefined) fields[f] = value[f]
  return { cid: key, kind: 'record', size: bytes.length, fields }
}

/** An earlier version of a selected path: classed by its conventional fields, which label it. */
async function versionNode(repo: Repository, cid: string, path: string): Promise<ProvNodeInput> {
  return { ...(await outsideNode(repo, parseCid(cid))), paths: [path] }
}

interface Introduction {
  commit: string
  author: Person
  time: number
}

/**
 * Walk the history from `head` (newest first, at most `maxCommits` commits), diffing each
 * commit with its first parent: every change to a selected path that replaced one version
 * by another is a revision, and the oldest commit that set a path to a CID introduced it.
 * Memory holds the versions of selected paths, not the history.
 */
async function walkHistory(
  repo: Repository,
  head: CID,
  current: Map<string, string>,
  maxCommits: number,
): Promise<{ revisions: ProvRevisionInput[]; introduced: Map<string, Introduction> }> {
  const revisions: ProvRevisionInput[] = []
  const seenRevision = new Set<string>()
  /** `path\ncid` → the oldest commit seen so far that set the path to that CID. */
  const introduced = new Map<string, Introduction>()
  if (maxCommits === 0 || current.size === 0) return { revisions, introduced }
  const prefix = commonPrefix([...current.keys()])
  const empty = await repo.trees.empty()
  for await (const { cid, commit } of log(repo, { from: cidToString(head), limit: maxCommits })) {
    const parent = commit.parents[0]
    const before = parent ? (await repo.readCommit(parent)).tree : empty
    for await (const change of repo.trees.diff(before, commit.tree, { prefix })) {
      if (change.type === 'removed' || !current.has(change.path)) continue
      const after = cidToString(change.after.cid)
      introduced.set(`${change.path}\n${after}`, { commit: cidToString(cid), author: commit.author, time: commit.time })
      if (change.type !== 'modified') continue
      const previous = cidToString(change.before.cid)
      const key = `${after} ${previous}`
      if (seenRevision.has(key)) continue
      seenRevision.add(key)
      revisions.push({ cid: after, previous, path: change.path, commit: cidToString(cid) })
    }
  }
  // A path's versions are recorded newest first; PROV readers expect nothing of the order, people oldest first.
  revisions.reverse()
  return { revisions, introduced }
}

/** Invalidations in the `invalidations` ref whose target is one of `cids`; none without the ref. */
async function readInvalidations(repo: Repository, cids: Set<string>): Promise<ProvInvalidationInput[]> {
  const head = await repo.refs.get(INVALIDATIONS_REF)
  if (!head) return []
  const { tree } = await repo.readCommit(head)
  const out: ProvInvalidationInput[] = []
  for await (const [path, entry] of repo.trees.entries(tree, { prefix: INVALIDATED_PREFIX })) {
    if (entry.kind !== 'record') continue
    // The path names the target: read only the records that matter here.
    const named = /^invalidated\/([a-z2-7]+)\.json$/.exec(path)?.[1]
    if (named && !cids.has(named)) continue
    const value = await repo.readNode<Record<string, unknown>>(entry.cid)
    const target = CID.asCID(value.target)
    if (!target || !cids.has(cidToString(target))) continue
    const time = value.invalidated_at
    out.push({
      target: cidToString(target),
      record: cidToString(entry.cid),
      ...(typeof value.reason === 'string' ? { reason: value.reason } : {}),
      ...(typeof time === 'string' || typeof time === 'number' ? { time } : {}),
      ...(typeof value.by === 'string' ? { by: value.by } : {}),
    })
  }
  return out
}

/** The longest common prefix of the paths, cut back to a folder boundary. */
function commonPrefix(paths: string[]): string {
  if (paths.length === 0) return ''
  let prefix = paths[0]!
  for (const p of paths) {
    let i = 0
    while (i < prefix.length && i < p.length && prefix[i] === p[i]) i++
    prefix = prefix.slice(0, i)
    if (!prefix) return ''
  }
  const slash = prefix.lastIndexOf('/')
  return paths.length === 1 ? prefix : prefix.slice(0, slash + 1)
}
