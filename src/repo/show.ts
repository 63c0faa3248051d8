import type { CID } from '../codec/cid.js'
import type { Commit } from '../model/commit.js'
import { readFile } from '../model/file.js'
import type { TreeChange } from '../model/tree.js'
import type { RecordValue } from '../model/record.js'
import type { Repository } from './repository.js'
import { resolveBlock, resolveEntry, shadowedTag } from './resolve.js'
import { readShownBlock, type ShownTag } from './show-block.js'
import type { Taint } from './lineage-graph.js'
import { TaintChecker } from './taint.js'

export interface ShowOptions {
  /** Most changed paths to list for a commit (the counts are always complete). */
  limit?: number
}

export type ShowResult =
  | {
      type: 'commit'
      cid: CID
      commit: Commit
      /** Changes against the first parent (or the empty tree), up to `limit`. */
      changes: TreeChange[]
      counts: { added: number; modified: number; removed: number }
      truncated: boolean
      /** The annotated tag the revision named (`tags/v1`, or the tag's CID), shown before its commit. */
      tag?: ShownTag
      /** A tag the revision's name also has (`tags/v1` for `v1`): the ref was taken, as in git. */
      shadowedTag?: string
    }
  | {
      type: 'record'
      cid: CID
      /** Where it was found: absent when the revision was its CID. */
      path?: string
      commit?: CID
      size: number
      value: RecordValue
      tainted?: Taint
    }
  | {
      type: 'file'
      cid: CID
      /** Where it was found: absent when the revision was its CID. */
      path?: string
      commit?: CID
      size: number
      tainted?: Taint
      /** The bytes, streamed and verified chunk by chunk. */
      content: () => AsyncIterable<Uint8Array>
    }

/**
 * A commit with the paths it changed (after the annotated tag, if the revision named one),
 * or the record or file at `<rev>:<path>`, or the record or file a CID names.
 *
 * @example
 * const r = await show(repo, 'main~1:config/train.json')
 * if (r.type === 'record') console.log(r.value.lr)
 */
export async function show(repo: Repository, rev: string, { limit = 1000 }: ShowOptions = {}): Promise<ShowResult> {
  if (rev.includes(':')) {
    const at = await resolveEntry(repo, rev)
    // Invalidated, or derived from something invalidated?
    const taint = await (await TaintChecker.open(repo)).taintOf(at.entry.cid)
    const tainted = taint ? { tainted: taint } : {}
    if (at.entry.kind === 'record') {
      const value = await repo.readNode<RecordValue>(at.entry.cid)
      return { type: 'record', cid: at.entry.cid, path: at.path, commit: at.cid, size: at.entry.size, value, ...tainted }
    }
    return {
      ...tainted,
      type: 'file',
      cid: at.entry.cid,
      path: at.path,
      commit: at.cid,
      size: at.entry.size,
      content: () => readFile(repo.blocks, at.entry.cid),
    }
  }
  const block = await readShownBlock(repo, await resolveBlock(repo, rev), rev)
  if (block.type !== 'commit') {
    const taint = await (await TaintChecker.open(repo)).taintOf(block.cid)
    return taint ? { ...block, tainted: taint } : block
  }
  const { cid, commit, tag } = block
  const shadowed = await shadowedTag(repo, rev)
  const parentTree = commit.parents[0] ? (await repo.readCommit(commit.parents[0])).tree : await repo.trees.empty()
  const changes: TreeChange[] = []
  const counts = { added: 0, modified: 0, removed: 0 }
  for await (const change of repo.trees.diff(parentTree, commit.tree)) {
    counts[change.type]++
    if (changes.length < limit) changes.push(change)
  }
  const total = counts.added + counts.modified + counts.removed
  return {
    type: 'commit',
    cid,
    commit,
    changes,
    counts,
    truncated: total > changes.length,
    ...(tag ? { tag } : {}),
    ...(shadowed ? { shadowedTag: shadowed } : {}),
  }
}
