import type { CID } from '../codec/cid.js'
import type { EntryKind } from '../model/tree.js'
import type { Repository } from './repository.js'
import { resolveCommit } from './resolve.js'

export interface LsOptions {
  /** Only paths that start with this prefix. */
  prefix?: string
}

export interface LsEntry {
  path: string
  kind: EntryKind
  size: number
  cid: CID
}

/**
 * The entries of a commit's tree in path order, streamed.
 *
 * @example
 * for await (const e of ls(repo, 'main', { prefix: 'runs/' })) console.log(e.path, e.size)
 */
export async function* ls(repo: Repository, rev: string, { prefix = '' }: LsOptions = {}): AsyncGenerator<LsEntry> {
  const { commit } = await resolveCommit(repo, rev)
  for await (const [path, entry] of repo.trees.entries(commit.tree, { prefix })) {
    yield { path, kind: entry.kind, size: entry.size, cid: entry.cid }
  }
}
