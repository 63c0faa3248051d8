import type { CID } from '../codec/cid.js'
import type { Person } from '../model/commit.js'
import { checkRefName } from '../refs/ref-name.js'
import type { Repository } from './repository.js'
import { resolveCommit } from './resolve.js'

export interface SetRefOptions {
  who: Person
  message?: string
  /** Required to move or delete a tag. */
  force?: boolean
  /** Only if the ref still has this value (null: only if it does not exist). */
  expect?: CID | null
}

/**
 * Point a ref at a commit (creating it if new). The old value stays in the reflog, so
 * nothing is lost by moving a ref.
 *
 * @example
 * await setRef(repo, 'production', 'models/braggnn~2', { who: { name: 'ana' }, message: 'roll back' })
 */
export async function setRef(repo: Repository, name: string, rev: string, options: SetRefOptions): Promise<{ ref: string; old: CID | null; new: CID }> {
  // The name first: a bad name is the mistake to report even when the revision is bad too.
  checkRefName(name)
  const { cid } = await resolveCommit(repo, rev)
  const r = await repo.refs.update(name, {
    next: cid,
    expect: options.expect,
    who: options.who,
    force: options.force,
    message: options.message ?? `set: ${rev}`,
  })
  return { ref: name, old: r.old, new: cid }
}

/**
 * Delete a ref. Its commits stay in the store and its reflog keeps every value it had,
 * so `name@{1}` still resolves after the deletion.
 */
export async function deleteRef(repo: Repository, name: string, options: SetRefOptions): Promise<{ ref: string; old: CID }> {
  const old = await repo.refs.resolve(name)
  await repo.refs.update(name, { next: null, expect: options.expect ?? old, who: options.who, force: options.force, message: options.message ?? 'delete' })
  return { ref: name, old }
}
