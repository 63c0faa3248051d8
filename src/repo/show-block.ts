import { RAW, type CID } from '../codec/cid.js'
import { decodeBlock } from '../codec/block.js'
import { checkCommit, isCommitShape, isTagShape, type Commit, type Tag } from '../model/commit.js'
import { fileSize, isFileNode, readFile } from '../model/file.js'
import type { RecordValue } from '../model/record.js'
import type { Repository } from './repository.js'
import { peel } from './resolve.js'

/** An annotated tag as `show` prints it before the commit it names. */
export interface ShownTag {
  cid: CID
  tag: Tag
}

/** What a block named by CID (or a ref's value) is, for `show`. */
export type ShownBlock =
  | { type: 'commit'; cid: CID; commit: Commit; tag?: ShownTag }
  | { type: 'record'; cid: CID; size: number; value: RecordValue }
  | { type: 'file'; cid: CID; size: number; content: () => AsyncIterable<Uint8Array> }

/**
 * Read the block `cid` and say what it is: a commit; an annotated tag (with the commit it
 * names); a file (a raw block, or a file node, streamed and verified by `content`); or any
 * other node, a record. Records link by CID, so following a link ends here.
 *
 * @example
 * const b = await readShownBlock(repo, linkedCid, 'bafyreiaepqy5d4mr')
 * if (b.type === 'record') console.log(b.value)
 */
export async function readShownBlock(repo: Repository, cid: CID, rev: string): Promise<ShownBlock> {
  if (cid.code === RAW) return { type: 'file', cid, size: await fileSize(repo.blocks, cid), content: () => readFile(repo.blocks, cid) }
  const bytes = await repo.blocks.get(cid)
  const node = decodeBlock<unknown>(cid, bytes)
  if (isTagShape(node)) {
    const { cid: commitCid, commit } = await peel(repo, cid, rev)
    return { type: 'commit', cid: commitCid, commit, tag: { cid, tag: node as Tag } }
  }
  if (isCommitShape(node)) return { type: 'commit', cid, commit: checkCommit(cid, node) }
  if (isFileNode(node)) return { type: 'file', cid, size: node.size, content: () => readFile(repo.blocks, cid) }
  // The size a tree entry gives a record: its dag-cbor bytes.
  return { type: 'record', cid, size: bytes.length, value: node as RecordValue }
}
