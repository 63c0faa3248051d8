import type { Block } from '../codec/block.js'
import type { CID } from '../codec/cid.js'
import { InvalidInputError, NotFoundError, PedigreeError } from '../errors.js'
import { Repository } from '../repo/repository.js'
import { S3Blockstore } from '../store/s3/blocks.js'
import { isS3Url, parseS3Url } from '../store/s3/url.js'
import type { OpenTransportOptions } from './open-transport.js'
import { PathTransport } from './path-transport.js'
import { receiveRefUpdate } from './receive.js'
import type { PutBlocksResult, RemoteRef, RemoteRefResult, RemoteRefUpdate, Transport } from './transport.js'

/**
 * A store kept in an S3 bucket, used as a remote. There is no server on the other side: this
 * process opens the store in the bucket and plays both parts, with the same code as a path
 * remote (provide.ts, receive.ts). So every block pushed is verified before it is written, the
 * whole DAG under a ref is checked before the ref's next log entry is created, and that entry
 * is a create-only PUT: a push that raced another loses with ERR_CONFLICT, ref unchanged.
 */
class S3Transport implements Transport {
  private readonly inner: PathTransport
  /** The ref values listed by this connection: each costs a LIST, so the ref update reuses them. */
  private listed: CID[] | undefined

  constructor(
    private readonly repo: Repository,
    readonly url: string,
  ) {
    this.inner = PathTransport.over(repo, url)
  }

  async listRefs(): Promise<RemoteRef[]> {
    const refs = await this.inner.listRefs()
    this.listed = refs.map((r) => r.cid)
    return refs
  }
  hasMany(cids: readonly CID[]): Promise<boolean[]> {
    // Negotiation asks what to send: the packs listed when this connection opened answer it
    // (a listing per round would cost a LIST each; a block written meanwhile by another
    // process is only sent again).
    const blocks = this.repo.store.blocks
    return blocks instanceof S3Blockstore ? blocks.hasManyListed(cids) : this.inner.hasMany(cids)
  }
  getBlocks(cids: readonly CID[]): AsyncIterable<Block> {
    return this.inner.getBlocks(cids)
  }
  walkCommits(heads: readonly CID[], options: { have?: readonly CID[]; limit: number }): AsyncIterable<Block> {
    return this.inner.walkCommits(heads, options)
  }
  putBlocks(blocks: AsyncIterable<Block>): Promise<PutBlocksResult> {
    return this.inner.putBlocks(blocks)
  }
  compareAndSwapRef(update: RemoteRefUpdate): Promise<RemoteRefResult> {
    // The ref cells write every waiting pack (CAR, then index) before the ref's entry. The
    // completeness check starts from the refs listed when the push began (1 LIST + 1 per ref
    // saved); a ref created since is not needed, as the check reads the blocks themselves.
    return receiveRefUpdate(this.repo, update, { known: this.listed })
  }
  async close(): Promise<void> {
    // Blocks sent without a ref update (an interrupted push) are written too: a retry skips them.
    await this.repo.close()
  }
}

/**
 * The transport to a store kept in an S3 bucket at an `s3://bucket/prefix` URL (endpoint,
 * region and credentials from `options.open.s3`, else the usual AWS environment).
 *
 * @example
 * const t = await openS3Transport('s3://lab-provenance/aps')
 * try { console.log(await t.listRefs()) } finally { await t.close() }
 */
export async function openS3Transport(url: string, { open, local }: OpenTransportOptions = {}): Promise<Transport> {
  const location = parseS3Url(url)
  if (local && isS3Url(local) && parseS3Url(local).url === location.url) throw new InvalidInputError(`the remote ${url} is this store itself`, { url })
  let repo: Repository
  try {
    repo = await Repository.open(location.url, open)
  } catch (e) {
    if (e instanceof PedigreeError && e.code === 'ERR_NOT_FOUND' && e.data.what === 'pedigree store') {
      throw new NotFoundError('remote store', url, `no pedigree store under that prefix; run \`pedigree init --repo ${location.url}\` first`, { url })
    }
    throw e
  }
  return new S3Transport(repo, url)
}
