import type { CID } from '../codec/cid.js'
import { encodeNode } from '../codec/block.js'
import { checkPerson, type Person, type Tag } from '../model/commit.js'
import { TAG_PREFIX, checkRefName } from '../refs/ref-name.js'
import type { Repository } from './repository.js'
import { resolveCommit } from './resolve.js'

export interface TagOptions {
  /** With a message, an annotated Tag node is written and the ref points at it. */
  message?: string
  tagger: Person
  time?: number
  /** Move an existing tag. */
  force?: boolean
}

export interface TagResult {
  ref: string
  /** What the ref points at: the Tag node (annotated) or the commit. */
  cid: CID
  commit: CID
  annotated: boolean
  previous: CID | null
}

/**
 * Name a commit under `tags/<name>`. Tags never move without `force`.
 *
 * @example
 * await tag(repo, 'braggnn-v7', 'models/braggnn', { tagger: { name: 'ana' }, message: 'production' })
 */
export async function tag(repo: Repository, name: string, rev: string, options: TagOptions): Promise<TagResult> {
  const ref = name.startsWith(TAG_PREFIX) ? name : TAG_PREFIX + name
  checkRefName(ref)
  checkPerson(options.tagger, 'the tagger')
  const target = await resolveCommit(repo, rev)
  const time = options.time ?? Date.now()
  let cid = target.cid
  if (options.message !== undefined) {
    const node: Tag = { target: target.cid, name: ref.slice(TAG_PREFIX.length), tagger: options.tagger, time, message: options.message }
    const block = encodeNode(options.tagger.email ? node : { ...node, tagger: { name: options.tagger.name } })
    await repo.blocks.put(block)
    cid = block.cid
  }
  const previous = (await repo.refs.get(ref)) ?? null
  await repo.refs.update(ref, {
    next: cid,
    expect: previous,
    who: options.tagger,
    time,
    force: options.force,
    message: `tag: ${rev}${options.message ? ` (${options.message.split('\n', 1)[0]})` : ''}`,
  })
  return { ref, cid, commit: target.cid, annotated: options.message !== undefined, previous }
}
