import type { Block } from '../codec/block.js'
import type { CID } from '../codec/cid.js'
import { NotFoundError, PedigreeError } from '../errors.js'
import { Repository, type OpenOptions } from '../repo/repository.js'
import { serveBlocks, serveCommits, serveRefs } from './provide.js'
import { receiveBlocks, receiveRefUpdate } from './receive.js'
import type { PutBlocksResult, RemoteRef, RemoteRefResult, RemoteRefUpdate, Transport } from './transport.js'

/**
 * Another store on a file system this process can reach (a second disk, NFS, a mounted
 * share). It is opened like any store, so it waits for another process that holds it (the
 * same bounded wait and message as every command) and holds it until `close`.
 *
 * @example
 * const remote = await PathTransport.open('/mnt/hpc/.pedigree')
 * try { console.log(await remote.listRefs()) } finally { await remote.close() }
 */
export class PathTransport implements Transport {
  private constructor(
    private readonly repo: Repository,
    readonly url: string,
    private readonly owned: boolean,
  ) {}

  /** Open the store at `path` (a `.pedigree` folder or a folder containing one). */
  static async open(path: string, options: OpenOptions = {}): Promise<PathTransport> {
    let repo: Repository
    try {
      repo = await Repository.open(path, options)
    } catch (e) {
      if (e instanceof PedigreeError && e.code === 'ERR_NOT_FOUND') {
        throw new NotFoundError('remote store', path, 'no pedigree store there; check the path, or run `pedigree init` there first', { url: path })
      }
      throw e
    }
    return new PathTransport(repo, repo.location, true)
  }

  /** Serve an already open repository (it stays open on `close`): tests, an embedding server. */
  static over(repo: Repository, url = repo.location): PathTransport {
    return new PathTransport(repo, url, false)
  }

  listRefs(): Promise<RemoteRef[]> {
    return serveRefs(this.repo)
  }

  hasMany(cids: readonly CID[]): Promise<boolean[]> {
    return this.repo.blocks.hasMany(cids)
  }

  getBlocks(cids: readonly CID[]): AsyncIterable<Block> {
    return serveBlocks(this.repo, cids)
  }

  walkCommits(heads: readonly CID[], options: { have?: readonly CID[]; limit: number }): AsyncIterable<Block> {
    return serveCommits(this.repo, heads, options)
  }

  putBlocks(blocks: AsyncIterable<Block>): Promise<PutBlocksResult> {
    return receiveBlocks(this.repo.blocks, blocks)
  }

  compareAndSwapRef(update: RemoteRefUpdate): Promise<RemoteRefResult> {
    return receiveRefUpdate(this.repo, update)
  }

  async close(): Promise<void> {
    if (this.owned) await this.repo.close()
  }
}
