import { cidToString, type CID } from '../codec/cid.js'
import { RefusedError } from '../errors.js'
import { TAG_PREFIX } from '../refs/ref-name.js'
import type { Repository } from '../repo/repository.js'
import { isAncestor } from './ancestry.js'
import { fetch, type FetchOptions, type FetchResult } from './fetch.js'

export interface PullOptions extends Omit<FetchOptions, 'refs'> {
  /** The ref to fetch and fast-forward (default `main`): the same name locally and on the remote. */
  ref?: string
}

export interface PullResult {
  remote: string
  url: string
  ref: string
  /** The local ref's value before (null: it did not exist). */
  old: CID | null
  /** The local ref's value after the pull. */
  new: CID
  /**
   * `created`: the local ref did not exist; `fast-forward`: it moved forward to the remote's
   * commit; `up-to-date`: it already had it; `ahead`: it already contains the remote's commit
   * and more (nothing to do; push to publish).
   */
  status: 'created' | 'fast-forward' | 'up-to-date' | 'ahead'
  fetch: FetchResult
}

/**
 * Fetch one ref and fast-forward the local ref of the same name to it. If the two histories
 * have diverged (each has commits the other lacks), RefusedError says so and how to go on;
 * the local ref is not touched (the fetched commits are in `remotes/<remote>/<ref>`).
 *
 * @example
 * const r = await pull(repo, { remote: 'hpc', ref: 'main', who: { name: 'ana' } })
 */
export async function pull(repo: Repository, options: PullOptions): Promise<PullResult> {
  const { ref = 'main', who } = options
  const fetched = await fetch(repo, { ...options, refs: [ref] })
  const theirs = fetched.refs[0]!
  const name = theirs.ref
  const ours = (await repo.refs.get(name)) ?? null
  const base = { remote: fetched.remote, url: fetched.url, ref: name, old: ours, new: theirs.new, fetch: fetched }
  if (!ours) {
    await repo.refs.update(name, { next: theirs.new, expect: null, who, message: `pull: ${fetched.url} ${name}` })
    return { ...base, status: 'created' }
  }
  if (ours.equals(theirs.new)) return { ...base, status: 'up-to-date' }
  // A tag never moves without being told to: the remote moved it (or this store has another
  // tag of that name). Say so, with the command that takes theirs.
  if (name.startsWith(TAG_PREFIX)) {
    const o = cidToString(ours)
    const t = cidToString(theirs.new)
    throw new RefusedError(
      [
        `cannot pull '${name}': the tag moved upstream (or differs here); tags are not moved by pull, and '${name}' was not changed.`,
        `  yours:  ${name} = ${o}`,
        `  theirs: ${theirs.tracking} = ${t}`,
        `To take theirs:  pedigree ref set ${name} ${theirs.tracking} --force   (yours stays reachable as ${name}@{1})`,
      ].join('\n'),
      { ref: name, local: o, remote: t, tracking: theirs.tracking, reason: 'tag-moved' },
    )
  }
  if (await isAncestor(repo.blocks, ours, theirs.new)) {
    await repo.refs.update(name, { next: theirs.new, expect: ours, who, message: `pull: fast-forward to ${fetched.url} ${name}` })
    return { ...base, status: 'fast-forward' }
  }
  if (await isAncestor(repo.blocks, theirs.new, ours)) return { ...base, new: ours, status: 'ahead' }
  const o = cidToString(ours)
  const t = cidToString(theirs.new)
  throw new RefusedError(
    [
      `cannot pull '${name}': it has diverged from '${theirs.tracking}' (each has commits the other lacks); '${name}' was not changed.`,
      `  yours:  ${name} = ${o}`,
      `  theirs: ${theirs.tracking} = ${t}`,
      'To go on, either',
      `  keep theirs:  pedigree ref set ${name} ${theirs.tracking}   (yours stay reachable as ${name}@{1}; save them first with pedigree ref set <other-name> ${name})`,
      `  keep yours:   pedigree push ${fetched.remote} ${name} --force   (theirs stay in ${theirs.tracking})`,
    ].join('\n'),
    { ref: name, local: o, remote: t, tracking: theirs.tracking, reason: 'diverged' },
  )
}
