import { NotFoundError, PedigreeError } from '../../errors.js'
import type { Store } from '../store.js'
import { S3Blockstore } from './blocks.js'
import { S3Bucket, type S3ConnectOptions } from './bucket.js'
import { S3ConfigCells, S3RefCells } from './cells.js'
import { S3IndexCells } from './index-cells.js'
import { parseS3Url } from './url.js'

export interface S3StoreOptions extends S3ConnectOptions {
  /** Bytes of blocks gathered into one pack before it is written (default 16 MiB). */
  packTarget?: number
  /** Requests in flight at once when reading packs (default 8). */
  concurrency?: number
  /** Packs whose indexes a process reads one by one before it writes a merged index of all (default 64). */
  mergeAt?: number
  /** The clock that names packs (tests set a writer's clock behind; default Date.now). */
  clock?: () => number
}

/** A store in S3, with the bucket it talks to (tests and benchmarks read its request counts). */
export interface S3Store extends Store {
  readonly blocks: S3Blockstore
  readonly bucket: S3Bucket
}

/** The object that marks a prefix as a pedigree store, written once by init. */
export const S3_FORMAT_KEY = 'pedigree.json'
const FORMAT = 'pedigree s3 store 1'

/**
 * Create an empty store at `s3://bucket/prefix` (the bucket must exist). The format object is
 * created with `If-None-Match: *`, so of two inits of one prefix exactly one succeeds; a prefix
 * that is a store already is refused with ERR_EXISTS.
 *
 * @example
 * const store = await initS3Store('s3://lab-provenance/aps', { endpoint: 'http://127.0.0.1:7480' })
 */
export async function initS3Store(url: string, options: S3StoreOptions = {}): Promise<S3Store> {
  const location = parseS3Url(url)
  const bucket = await S3Bucket.connect(location, options)
  try {
    const body = new TextEncoder().encode(JSON.stringify({ format: FORMAT, created: new Date().toISOString() }) + '\n')
    if (!(await bucket.put(S3_FORMAT_KEY, body, { createOnly: true, contentType: 'application/json' }))) {
      throw new PedigreeError(
        'ERR_EXISTS',
        `a pedigree store already exists at ${location.url}; to use it, pass --repo ${location.url} or set PEDIGREE_REPO=${location.url}`,
        { location: location.url },
      )
    }
  } catch (e) {
    bucket.close()
    throw e
  }
  return storeOver(bucket, options)
}

/**
 * Open the store at `s3://bucket/prefix`. Endpoint, region, credentials and addressing come
 * from `options`, else from the usual AWS environment (see {@link S3ConnectOptions}). A
 * prefix without a store is ERR_NOT_FOUND; a missing bucket ERR_NOT_FOUND naming it; refused
 * credentials ERR_FORBIDDEN; an endpoint that cannot be reached ERR_UNREACHABLE.
 *
 * @example
 * const store = await openS3Store('s3://lab-provenance/aps')
 */
export async function openS3Store(url: string, options: S3StoreOptions = {}): Promise<S3Store> {
  const location = parseS3Url(url)
  const bucket = await S3Bucket.connect(location, options)
  try {
    const marker = await bucket.get(S3_FORMAT_KEY)
    if (!marker) {
      throw new NotFoundError('pedigree store', location.url, `no ${S3_FORMAT_KEY} under that prefix; run \`pedigree init --store ${location.url}\``, {
        location: location.url,
      })
    }
    let format: unknown
    try {
      format = (JSON.parse(new TextDecoder().decode(marker)) as { format?: unknown }).format
    } catch {
      format = undefined
    }
    if (format !== FORMAT) {
      throw new PedigreeError('ERR_STORE', `the store at ${location.url} has format '${String(format)}', which this version of pedigree cannot read`, {
        location: location.url,
        format,
      })
    }
  } catch (e) {
    bucket.close()
    throw e
  }
  return storeOver(bucket, options)
}

function storeOver(bucket: S3Bucket, { packTarget, concurrency, mergeAt, clock }: S3StoreOptions): S3Store {
  const blocks = new S3Blockstore(bucket, { packTarget, concurrency, mergeAt, clock })
  const index = new S3IndexCells(bucket)
  return {
    location: bucket.location.url,
    bucket,
    blocks,
    refs: new S3RefCells(bucket, () => blocks.flush()),
    config: new S3ConfigCells(bucket),
    // Derived and rebuildable (link-index.ts): segment objects, written blind by each process
    // on close and read only by those that ask a downstream question (see index-cells.ts).
    index,
    async close() {
      try {
        await blocks.flush()
        // Derived data: a segment that cannot be written loses nothing (its commits carry no
        // `c/` marker, so the next reader indexes them again). It must not fail a push or a
        // commit whose ref has already moved.
        await index.flush().catch(() => {})
      } finally {
        bucket.close()
      }
    },
  }
}
