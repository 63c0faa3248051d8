import { CID, MIN_CID_PREFIX, cidToString, looksLikeCidPrefix, parseCid, readsAsStoreCid } from '../codec/cid.js'
import { AmbiguousRevisionError, InvalidInputError, type InvalidRefNameError, NoCommitsError, NotFoundError } from '../errors.js'
import { checkCommit, isCommitShape, isTagShape, type Commit, type Tag } from '../model/commit.js'
import type { TreeEntry } from '../model/tree.js'
import { TAG_PREFIX, checkRefNameFormat, isValidRefName } from '../refs/ref-name.js'
import type { Repository } from './repository.js'

/** Shortest CID prefix accepted as a revision (DESIGN.md). */
export const MIN_PREFIX = MIN_CID_PREFIX

/** Characters in the base32 text of a store's CIDs (`bafyrei…`, 59). */
const FULL_CID_LENGTH = 59

export interface ResolvedCommit {
  cid: CID
  commit: Commit
}

export interface ResolvedEntry extends ResolvedCommit {
  path: string
  entry: TreeEntry
}

/** One `~N` or `^N` of a revision. */
export interface AncestryStep {
  op: '~' | '^'
  n: number
}

/** A revision taken apart, before anything in the store is read. */
export interface ParsedRevision {
  /** What it starts from: a ref name as written (`v1` may mean `tags/v1`), a CID or an abbreviated CID. */
  base: string
  /** N of `@{N}`: the N-th previous value of the ref `base`, from its reflog. */
  reflog?: number
  /** The `~N` and `^N` that follow, in order. */
  steps: AncestryStep[]
}

/**
 * Take a revision apart: `BASE[@{N}][~N|^N]…`. Throws InvalidInputError saying what is
 * malformed (`main@{x}`, `main~-1`, a base that is neither a ref name nor a CID), so that a
 * typo is not reported as something missing from the store.
 *
 * @example
 * parseRevision('main@{1}~2') // { base: 'main', reflog: 1, steps: [{ op: '~', n: 2 }] }
 */
export function parseRevision(rev: string): ParsedRevision {
  const malformed = (why: string): never => {
    throw new InvalidInputError(`malformed revision '${rev}': ${why}`, { rev })
  }
  if (rev.includes(':')) throw new InvalidInputError(`'${rev}' names a path; a commit is needed here`, { rev })
  const ancestry = rev.search(/[~^]/)
  const head = ancestry < 0 ? rev : rev.slice(0, ancestry)
  const steps: AncestryStep[] = []
  for (const token of ancestry < 0 ? [] : rev.slice(ancestry).match(/[~^][^~^]*/g)!) {
    const digits = token.slice(1)
    const n = digits === '' ? 1 : Number(digits)
    if (!/^\d*$/.test(digits) || !Number.isSafeInteger(n)) {
      malformed(`'${token}' is not ~N or ^N with N a whole number (main~2, main^2, main^)${token.includes('@{') ? '; @{N} goes right after the ref name' : ''}`)
    }
    steps.push({ op: token[0] as '~' | '^', n })
  }
  let base = head
  let reflog: number | undefined
  if (head.includes('@{')) {
    const m = /^(.*)@\{(\d+)\}$/.exec(head)
    if (!m || !Number.isSafeInteger(Number(m[2]))) malformed(`'${head.slice(head.indexOf('@{'))}' is not @{N} with N a whole number (main@{1} is the value main had before its last update)`)
    base = m![1] || 'main'
    reflog = Number(m![2])
  }
  if (base === '') malformed(ancestry === 0 ? `nothing before '${rev[0]}': write a ref or a CID first (main${rev})` : 'it is empty')
  const readsAsCid = readsAsStoreCid(base) || (looksLikeCidPrefix(base) && base.length >= FULL_CID_LENGTH)
  if (reflog !== undefined || !readsAsCid) {
    try {
      checkRefNameFormat(base)
    } catch (e) {
      const reason = (e as InvalidRefNameError).data.reason as string
      malformed(`'${base}' is not a ref name (${reason})${reflog === undefined ? ', nor a CID' : ''}`)
    }
  }
  return { base, ...(reflog === undefined ? {} : { reflog }), steps }
}

/**
 * Resolve a revision to a commit: a ref name (`main`, `tags/v1`, or `v1` for a tag),
 * a CID or a unique CID prefix of at least 12 characters, followed by any of `@{N}`
 * (N-th previous value in the reflog), `~N` (N-th first-parent ancestor), `^N` (N-th parent).
 * Annotated tags are peeled to their commit. Text that reads as a CID (see readsAsStoreCid)
 * is a CID, never a ref; when a ref `v1` and a tag `tags/v1` both exist, `v1` is the ref, as
 * in git (see shadowedTag).
 *
 * @example
 * const { cid, commit } = await resolveCommit(repo, 'models/braggnn@{1}~2')
 */
export async function resolveCommit(repo: Repository, rev: string): Promise<ResolvedCommit> {
  const parsed = parseRevision(rev)
  let commit = await peel(repo, await resolveStart(repo, parsed, rev), rev)
  for (const { op, n } of parsed.steps) {
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

/**
 * The block a revision names, with annotated tags not peeled: any block for a CID or an
 * abbreviated CID (a record, a file, a tag, a commit), a ref's value, or (after `~N`, `^N`)
 * a commit.
 *
 * @example
 * const cid = await resolveBlock(repo, 'bafyreiaepqy5d4mr') // a record, say
 */
export async function resolveBlock(repo: Repository, rev: string): Promise<CID> {
  const parsed = parseRevision(rev)
  if (parsed.steps.length > 0) return (await resolveCommit(repo, rev)).cid
  return resolveStart(repo, parsed, rev)
}

/**
 * When `rev` (or the revision of a `rev:path`) starts from a ref that a tag shares its name
 * with (a ref `v1` and `tags/v1`), the tag's full name: the ref is what `v1` means, as in
 * git, and a caller may want to say so. Undefined otherwise.
 */
export async function shadowedTag(repo: Repository, rev: string): Promise<string | undefined> {
  const colon = rev.indexOf(':')
  const { base } = parseRevision(colon < 0 ? rev : rev.slice(0, colon) || 'main')
  if (base.startsWith(TAG_PREFIX) || !isValidRefName(base) || !isValidRefName(TAG_PREFIX + base)) return undefined
  const [ref, tag] = await Promise.all([repo.refs.get(base), repo.refs.get(TAG_PREFIX + base)])
  return ref && tag ? TAG_PREFIX + base : undefined
}

/** Resolve `<rev>:<path>` to the entry at that path in that commit's tree. */
export async function resolveEntry(repo: Repository, spec: string): Promise<ResolvedEntry> {
  const colon = spec.indexOf(':')
  if (colon < 0) throw new InvalidInputError(`'${spec}' does not name a path: use <rev>:<path>`, { rev: spec })
  const rev = spec.slice(0, colon) || 'main'
  const path = spec.slice(colon + 1)
  const at = await resolveCommit(repo, rev)
  const entry = await repo.trees.get(at.commit.tree, path)
  if (!entry) {
    const folder = path === '' || path.endsWith('/') ? path : `${path}/`
    for await (const _ of repo.trees.entries(at.commit.tree, { prefix: folder })) {
      throw new InvalidInputError(
        `${path === '' ? 'the root' : `'${path}'`} is a folder in ${rev} (${cidToString(at.cid)}), not a record or file: list it with \`pedigree ls ${rev}${folder ? ` ${folder}` : ''}\``,
        { rev, path, folder: true },
      )
    }
    throw new NotFoundError('path', path, `not in ${rev} (${cidToString(at.cid)})`, { rev, path })
  }
  return { ...at, path, entry }
}

/** A ref name as the user may abbreviate it: `v1` for `tags/v1` when no ref `v1` exists. */
export async function refNameFor(repo: Repository, name: string): Promise<string> {
  return (await lookUpRef(repo, name)).name
}

/**
 * The ref a name means (see {@link refNameFor}) and its value, reading each ref once. A name
 * a ref may not be given is no ref here: a store from before that rule may hold a ref named
 * like a CID, which must not hide the block (it can still be listed and deleted).
 */
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

/** The block a parsed revision starts from: a reflog entry, a CID, or a ref's value. */
async function resolveStart(repo: Repository, { base, reflog }: ParsedRevision, rev: string): Promise<CID> {
  if (reflog === undefined) return resolveBase(repo, base, rev)
  const log = await repo.refs.reflog(await refNameFor(repo, base))
  const line = log[reflog]
  if (!line) throw new NotFoundError('revision', rev, `the reflog of '${base}' has ${log.length} entries`)
  if (!line.new) throw new NotFoundError('revision', rev, `the ref was deleted at that point`)
  return line.new
}

async function resolveBase(repo: Repository, base: string, rev: string): Promise<CID> {
  if (!readsAsStoreCid(base)) {
    const { value } = await lookUpRef(repo, base)
    if (value) return value
  }
  if (looksLikeCidPrefix(base) && base.length >= FULL_CID_LENGTH) {
    const cid = parseCid(base)
    if (!(await repo.blocks.has(cid))) throw new NotFoundError('revision', rev, 'no block with that CID in this store')
    return cid
  }
  if (readsAsStoreCid(base)) return resolvePrefix(repo, base, rev)
  throw await unknownRevision(repo, base, rev)
}

/** Why a well-formed name resolves to nothing: a deleted ref, an empty store, or no such thing. */
async function unknownRevision(repo: Repository, base: string, rev: string): Promise<NotFoundError> {
  const name = await refNameFor(repo, base)
  if ((await repo.refs.reflog(name)).length > 0) {
    return new NotFoundError('revision', rev, `the ref '${name}' was deleted; its reflog keeps every value it had (${name}@{1} is the last)`)
  }
  for await (const _ of repo.refs.list()) {
    return new NotFoundError('revision', rev, `not a ref, nor a CID or CID prefix (${MIN_PREFIX}+ characters) in this store`)
  }
  return new NoCommitsError(base, rev)
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
    throw new InvalidInputError(`'${rev}' resolves to ${cidToString(cid)}, which is not a commit (\`pedigree show ${rev}\` shows what it is)`, {
      rev,
      cid: cidToString(cid),
    })
  }
  throw new InvalidInputError(`'${rev}': tag chain too long`, { rev })
}

export { CID }
