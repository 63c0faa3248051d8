/**
 * pedigree as a library: the same operations as the CLI, typed. It never prints and
 * never exits; progress arrives through `onProgress` callbacks.
 *
 * @example
 * import { Repository } from 'pedigree'
 * const repo = await Repository.open('.pedigree')
 * const r = await repo.commit({ ref: 'main', author: { name: 'flow-42' }, message: 'task 7',
 *   edits: [{ type: 'record', path: 'tasks/7.json', value: { status: 'done', loss: 0.12 } }] })
 * console.log(r.cid.toString())
 * await repo.close()
 */
export { Repository, STORE_DIRNAME, type OpenOptions, type InitOptions } from './repo/repository.js'
export type { CommitEdit, CommitOptions, CommitResult, CommitProgress } from './repo/commit.js'
export type { LogEntry, LogOptions } from './repo/log.js'
export type { ShowResult, ShowOptions } from './repo/show.js'
export type { LsEntry, LsOptions } from './repo/ls.js'
export type { DiffItem, DiffOptions, FieldChange } from './repo/diff.js'
export type { CheckoutOptions, CheckoutResult } from './repo/checkout.js'
export type { FsckResult, FsckProblem } from './repo/fsck.js'
export type { TagOptions, TagResult } from './repo/tag.js'
export type { SetRefOptions } from './repo/set-ref.js'
export { parseRevision, type ResolvedCommit, type ResolvedEntry, type ParsedRevision, type AncestryStep } from './repo/resolve.js'
export type { ReflogEntry } from './refs/refs.js'
export type { IngestOptions, IngestResult, IngestReject } from './repo/ingest.js'
export type { LineageOptions } from './repo/lineage.js'
export type { LineageGraph, LineageNode, LineageEdge, Taint, TaintCause } from './repo/lineage-graph.js'
export type { InvalidateOptions, InvalidateResult } from './repo/invalidate.js'
export type { TaintedEntry, TaintedOptions } from './repo/tainted.js'
export type { ExportProvOptions } from './repo/export-prov.js'
export { provDocument, type ProvJson } from './repo/prov.js'
export { lineageText, lineageDot, lineageMermaid } from './repo/graph-format.js'
export type { QueryOptions, QueryRow, SortSpec } from './repo/query.js'
export type { DuOptions, DuResult, DuRef, DuStore } from './repo/du.js'
// Sync sits above the repo layer: its verbs are functions taking a Repository.
export { push, type PushOptions, type PushResult } from './sync/push.js'
export { fetch as fetchRemote, type FetchOptions, type FetchResult } from './sync/fetch.js'
export { pull, type PullOptions, type PullResult } from './sync/pull.js'
export { clone, type CloneOptions, type CloneResult } from './sync/clone.js'
export { addRemote, listRemotes, getRemote, showRemote, removeRemote } from './sync/remote.js'
export { createBundle, verifyBundle, importBundle } from './sync/bundle.js'
export { openTransport } from './sync/open-transport.js'
export { PathTransport } from './sync/path-transport.js'
export { IncompleteDagError } from './sync/errors.js'
export type { Transport, RemoteRef } from './sync/transport.js'
export { checkRefName, checkRefNameFormat, isValidRefName } from './refs/ref-name.js'
export type { Commit, Tag, Person } from './model/commit.js'
export type { TreeEntry, TreeChange, EntryKind } from './model/tree.js'
export { parseRecordJson, formatRecordJson, toDagJson, fromDagJson, type RecordValue } from './model/record.js'
export { readFile, writeFile } from './model/file.js'
export { CID, parseCid, cidToString } from './codec/cid.js'
export type { Blockstore } from './store/blockstore.js'
export type { Store } from './store/store.js'
export { openLevelStore } from './store/level.js'
export { openMemoryStore } from './store/memory.js'
// A process holding the store for others (`pedigree daemon`, `pedigree serve`): Repository.open finds it on its own.
export { openDaemonStore, readDaemonFile, daemonSocketPath, type DaemonInfo } from './store/daemon.js'
export * from './errors.js'
