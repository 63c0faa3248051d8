import { CID, cidToString, looksLikeCidPrefix, parseCid } from '../codec/cid.js'
import { AmbiguousRevisionError, InvalidInputError, NotFoundError } from '../errors.js'
import { checkCommit, isCommitShape, isTagShape, type Commit, type Tag } from '../model/commit.js'
import type { TreeEntry } from '../model/tree.js'
import { TAG_PREFIX, isValidRefName } from '../refs/ref-name.js'
import type { Repository } from './repository.js'

/** Shortest CID prefix accepted as a revision (DESIGN.md). */
export const MIN_PREFIX = 12

export interface ResolvedCommit {
  cid: CID
  commit: Commit
}

export interface ResolvedEntry extends ResolvedCommit {
  path: string
  entry: TreeEntry
}

/**
 * Resolve a revision to a commit: a ref name (`main`, `tags/v1`, or `v1` for a tag),
 * a CID or a unique CID prefix of at least 12 characters, followed by any of `@{N}`
 * (N-th previous value in the reflog), `~N` (N-th first-parent ancestor), `^N` (N-th parent).
 * Annotated tags are peeled to their commit.
 */
export async function resolveCommit(repo: Repository, rev: string): Promise<ResolvedCommit> {
  if (rev.includes(':')) throw new InvalidInputError(`'${rev}' names a path; a commit is needed here`, { rev })
  const m = /^(.*?)((?:[~^]\d*)*)$/.exec(rev)!
  let base = m[1]!
  const suffix = m[2]!
  let cid: CID
  const reflogMatch = /^(.*)@\{(\d+)\}$/.exec(base)
  if (reflogMatch) {
    const name = reflogMatch[1] || 'main'
    const n = Number(reflogMatch[2])
    const log = await repo.refs.reflog(await refNameFor(repo, name))
    const line = log[n]
    if (!line) throw new NotFoundError('revision', rev, `the reflog of '${name}' has ${log.length} entries`)
    if (!line.new) throw new NotFoundError('revision', rev, `the ref was deleted at that point`)
    cid = line.new
    base = name
  } else {
    cid = await resolveBase(repo, base, rev)
  }
  let commit = await peel(repo, cid, rev)
  cid = commit.cid
  for (const step of suffix.match(/[~^]\d*/g) ?? []) {
    const op = step[0]
    const n = step.length > 1 ? Number(step.slice(1)) : 1
    if (op === '~') {
      for (let i = 0; i < n; i++) {
        const parent = commit.commit.parents[0]
        if (!parent) throw new NotFoundError('revision', rev, `${cidToString(commit.cid)} has no parent`)
        commit = { cid: parent, commit: await repo.readCommit(parent) }
      }
    } else if (n > 0) {
      const parent = commit.commit.parents[n - 1]
      if (!parent) throw new NotFoundError('revision', rev, `${cidToString(commit.cid)} has ${commit.commit.parents.length} parent(s)`)
      commit = { cid: parent, commit: await repo.readCommit(parent) }
    }
  }
  return commit
}

/** Resolve `<rev>:<path>` to the entry at that path in that commit's tree. */
export async function resolveEntry(repo: Repository, spec: string): Promise<ResolvedEntry> {
  const colon = spec.indexOf(':')
  if (colon < 0) throw new InvalidInputError(`'${spec}' does not name a path: use <rev>:<path>`, { rev: spec })
  const rev = spec.slice(0, colon) || 'main'
  const path = spec.slice(colon + 1)
  const at = await resolveCommit(repo, rev)
  const entry = await repo.trees.get(at.commit.tree, path)
  if (!entry) throw new NotFoundError('path', path, `not in ${rev} (${cidToString(at.cid)})`, { rev, path })
  return { ...at, path, entry }
}

/** A ref name as the user may abbreviate it: `v1` for `tags/v1` when no ref `v1` exists. */
export async function refNameFor(repo: Repository, name: string): Promise<string> {
  return (await lookUpRef(repo, name)).name
}

/** The ref a name means (see {@link refNameFor}) and its value, reading each ref once. */
async function lookUpRef(repo: Repository, name: string): Promise<{ name: string; value?: CID }> {
  if (!isValidRefName(name)) return { name }
  const value = await repo.refs.get(name)
  if (value) return { name, value }
  if (!name.startsWith(TAG_PREFIX) && isValidRefName(TAG_PREFIX + name)) {
    const tag = await repo.refs.get(TAG_PREFIX + name)
    if (tag) return { name: TAG_PREFIX + name, value: tag }
  }
  return { name }
}

async function resolveBase(repo: Repository, base: string, rev: string): Promise<CID> {
  if (base === '') throw new InvalidInputError(`empty revision '${rev}'`, { rev })
  const { value } = await lookUpRef(repo, base)
  if (value) return value
  if (looksLikeCidPrefix(base)) {
    if (base.length >= 59) {
      const cid = parseCid(base)
      if (!(await repo.blocks.has(cid))) throw new NotFoundError('revision', rev, 'no block with that CID in this store')
      return cid
    }
    if (base.length >= MIN_PREFIX) return resolvePrefix(repo, base, rev)
  }
  throw new NotFoundError('revision', rev, 'not a ref, nor a CID or CID prefix (12+ characters) in this store')
}

/** Resolve a unique CID prefix among the store's blocks. */
export async function resolvePrefix(repo: Repository, prefix: string, rev = prefix): Promise<CID> {
  const found: CID[] = []
  for await (const cid of repo.blocks.cids({ prefix })) {
    found.push(cid)
    if (found.length > 10) break
  }
  if (found.length === 0) throw new NotFoundError('revision', rev, 'no CID in this store starts with it')
  if (found.length > 1) throw new AmbiguousRevisionError(prefix, found.map(cidToString))
  return found[0]!
}

/** Follow annotated tags to the commit they name (`rev` names it in errors). */
export async function peel(repo: Repository, cid: CID, rev: string): Promise<ResolvedCommit> {
  for (let hops = 0; hops < 16; hops++) {
    const node = await repo.readNode(cid)
    if (isCommitShape(node)) return { cid, commit: checkCommit(cid, node) }
    if (isTagShape(node)) {
      cid = (node as Tag).target
      continue
    }
    throw new InvalidInputError(`'${rev}' resolves to ${cidToString(cid)}, which is not a commit`, { rev, cid: cidToString(cid) })
  }
  throw new InvalidInputError(`'${rev}': tag chain too long`, { rev })
}

export { CID }
