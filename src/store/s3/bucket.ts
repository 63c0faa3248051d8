import type { S3Client } from '@aws-sdk/client-s3'
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { NotFoundError, PedigreeError, StoreError } from '../../errors.js'
import type { S3Location } from './url.js'

/** How to reach the object store; anything left out comes from the usual AWS environment. */
export interface S3ConnectOptions {
  /** e.g. `http://127.0.0.1:7480` (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS). */
  endpoint?: string
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else us-east-1. */
  region?: string
  /**
   * Path-style addressing (`endpoint/bucket/key`), which Ceph RGW and MinIO need. Default:
   * PEDIGREE_S3_PATH_STYLE (`1`/`0`) if set, else on whenever an endpoint is set.
   */
  forcePathStyle?: boolean
  /** Default: the SDK's provider chain (environment, profiles, SSO, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  /** Attempts per request, retries included (default 3, the SDK's). */
  maxAttempts?: number
  /** Give up connecting after this long (default 10 s). */
  connectTimeoutMs?: number
  /** Give up on a connection where nothing moves for this long (default 60 s): a network that went silent. */
  idleTimeoutMs?: number
  /** Environment to read the defaults from (default `process.env`; tests pass their own). */
  env?: Record<string, string | undefined>
}

/** Requests made and bytes moved, for tests and benchmarks ("objects written"). */
export interface S3Stats {
  puts: number
  gets: number
  lists: number
  bytesUp: number
  bytesDown: number
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'UND_ERR_SOCKET'])
const DENIED = new Set(['AccessDenied', 'SignatureDoesNotMatch', 'InvalidAccessKeyId', 'Forbidden', 'AllAccessDisabled', 'InvalidToken', 'ExpiredToken'])

interface SdkError {
  name?: string
  code?: string
  message?: string
  cause?: { code?: string }
  errors?: { code?: string }[]
  $metadata?: { httpStatusCode?: number }
}

type Sdk = typeof import('@aws-sdk/client-s3')

/**
 * One bucket and key prefix, reached through @aws-sdk/client-s3 (loaded on first use: only
 * code that touches `s3://` pays for it). Keys given to and returned by its methods are
 * relative to the prefix. Every failure becomes a PedigreeError naming the bucket and the
 * operation, with the SDK's error as `cause`.
 */
export class S3Bucket {
  readonly stats: S3Stats = { puts: 0, gets: 0, lists: 0, bytesUp: 0, bytesDown: 0 }

  private constructor(
    private readonly sdk: Sdk,
    private readonly client: S3Client,
    readonly location: S3Location,
    /** For messages: where requests go. */
    readonly endpoint: string,
  ) {}

  static async connect(location: S3Location, options: S3ConnectOptions = {}): Promise<S3Bucket> {
    const env = options.env ?? process.env
    const sdk = await import('@aws-sdk/client-s3')
    // The SDK warns on every Node 20 start that releases after January 2027 need Node 22
    // (STACK.md); it is not the user's business on each command.
    await import('@aws-sdk/core/client').then((m) => (m.state.warningEmitted = true)).catch(() => {})
    const endpoint = options.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL
    const pathStyleEnv = env.PEDIGREE_S3_PATH_STYLE
    const forcePathStyle = options.forcePathStyle ?? (pathStyleEnv !== undefined && pathStyleEnv !== '' ? !/^(0|false|no)$/i.test(pathStyleEnv) : Boolean(endpoint))
    const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? (hasProfileConfig(env) ? undefined : 'us-east-1')
    const client = new sdk.S3Client({
      ...(endpoint ? { endpoint } : {}),
      ...(region ? { region } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}),
      forcePathStyle,
      // Without these the SDK waits forever on a network that drops packets silently.
      requestHandler: { connectionTimeout: options.connectTimeoutMs ?? 10_000, socketTimeout: options.idleTimeoutMs ?? 60_000 },
      // Ceph RGW answers streamed bodies with the default checksums with 411 (STACK.md).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
    return new S3Bucket(sdk, client, location, endpoint ?? 'AWS S3')
  }

  /** The full key of `key` under the prefix. */
  fullKey(key: string): string {
    return this.location.prefix + key
  }

  /**
   * Write an object. With `createOnly` it is a conditional create (`If-None-Match: *`):
   * returns false, writing nothing, when the key exists already (412), including when another
   * writer created it a moment before. This is the compare-and-swap primitive of the store.
   */
  async put(key: string, body: Uint8Array, { createOnly = false, contentType }: { createOnly?: boolean; contentType?: string } = {}): Promise<boolean> {
    this.stats.puts++
    try {
      await this.client.send(
        new this.sdk.PutObjectCommand({
          Bucket: this.location.bucket,
          Key: this.fullKey(key),
          Body: body,
          ContentLength: body.length,
          ...(contentType ? { ContentType: contentType } : {}),
          ...(createOnly ? { IfNoneMatch: '*' } : {}),
        }),
      )
      this.stats.bytesUp += body.length
      return true
    } catch (e) {
      const status = (e as SdkError).$metadata?.httpStatusCode
      // 412: the key exists. 409 (AWS): another conditional write to the key is in progress.
      if (createOnly && (status === 412 || status === 409)) return false
      throw this.translate(e, 'PutObject', key)
    }
  }

  /** An object's bytes (or `length` bytes from `offset`), or undefined if there is no such key. */
  async get(key: string, range?: { offset: number; length: number }): Promise<Uint8Array | undefined> {
    this.stats.gets++
    try {
      const res = await this.client.send(
        new this.sdk.GetObjectCommand({
          Bucket: this.location.bucket,
          Key: this.fullKey(key),
          ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
        }),
      )
      const bytes = await res.Body!.transformToByteArray()
      this.stats.bytesDown += bytes.length
      return bytes
    } catch (e) {
      const err = e as SdkError
      if (err.name === 'NoSuchKey' || (err.$metadata?.httpStatusCode === 404 && err.name !== 'NoSuchBucket')) return undefined
      // A range past the end of the object: the caller's index lies about it.
      if (err.$metadata?.httpStatusCode === 416) return new Uint8Array(0)
      throw this.translate(e, 'GetObject', key)
    }
  }

  /**
   * Keys under `prefix` in key order, a page (up to `maxKeys`, at most 1000) at a time, `truncated` when more
   * follow. With a delimiter, the common prefixes ("folders") come in `prefixes`. Keys and
   * prefixes are relative to the store's prefix.
   */
  async *list(
    prefix: string,
    { delimiter, startAfter, maxKeys }: { delimiter?: string; startAfter?: string; maxKeys?: number } = {},
  ): AsyncIterable<{ keys: string[]; prefixes: string[]; truncated: boolean }> {
    let token: string | undefined
    const strip = this.location.prefix.length
    do {
      this.stats.lists++
      let res
      try {
        res = await this.client.send(
          new this.sdk.ListObjectsV2Command({
            Bucket: this.location.bucket,
            Prefix: this.fullKey(prefix),
            ...(delimiter ? { Delimiter: delimiter } : {}),
            ...(maxKeys ? { MaxKeys: maxKeys } : {}),
            ...(token ? { ContinuationToken: token } : startAfter !== undefined ? { StartAfter: this.fullKey(startAfter) } : {}),
          }),
        )
      } catch (e) {
        throw this.translate(e, 'ListObjectsV2', prefix)
      }
      yield {
        keys: (res.Contents ?? []).map((o) => o.Key!.slice(strip)),
        prefixes: (res.CommonPrefixes ?? []).map((p) => p.Prefix!.slice(strip)),
        truncated: Boolean(res.IsTruncated),
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined
    } while (token)
  }

  /** Remove an object (tests and bucket cleanup only: a store never deletes what it wrote). */
  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new this.sdk.DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.fullKey(key) }))
    } catch (e) {
      throw this.translate(e, 'DeleteObject', key)
    }
  }

  close(): void {
    this.client.destroy()
  }

  /** A PedigreeError for a failed request, naming the bucket and the operation. */
  translate(e: unknown, operation: string, key: string): PedigreeError {
    if (e instanceof PedigreeError) return e
    const err = e as SdkError
    const { bucket } = this.location
    const full = this.fullKey(key)
    const status = err.$metadata?.httpStatusCode
    const name = err.name ?? 'Error'
    const data = { bucket, operation, key: full, endpoint: this.endpoint, s3Error: name, ...(status ? { status } : {}) }
    if (name === 'NoSuchBucket') {
      return withCause(new NotFoundError('S3 bucket', bucket, `${operation} of '${full}' at ${this.endpoint}; create the bucket first`, data), e)
    }
    if (status === 403 || DENIED.has(name)) {
      return new PedigreeError(
        'ERR_FORBIDDEN',
        `access denied to S3 bucket '${bucket}' (${operation} of '${full}' at ${this.endpoint}: ${name}); check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE) and the bucket's policy`,
        data,
        { cause: e },
      )
    }
    if (name === 'CredentialsProviderError' || /could not load credentials/i.test(err.message ?? '')) {
      return new PedigreeError(
        'ERR_UNAUTHORIZED',
        `no S3 credentials for bucket '${bucket}' (${operation}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE`,
        data,
        { cause: e },
      )
    }
    if (isNetworkError(err)) {
      return new PedigreeError(
        'ERR_UNREACHABLE',
        `cannot reach S3 at ${this.endpoint} for bucket '${bucket}' (${operation} of '${full}'): ${err.message || err.code || name}`,
        data,
        { cause: e },
      )
    }
    return new StoreError(`S3 ${operation} of '${full}' in bucket '${bucket}' at ${this.endpoint} failed: ${name}${status ? ` (HTTP ${status})` : ''}`, data, { cause: e })
  }
}

function withCause<E extends Error>(error: E, cause: unknown): E {
  Object.defineProperty(error, 'cause', { value: cause, enumerable: false, configurable: true, writable: true })
  return error
}

function isNetworkError(err: SdkError): boolean {
  const codes = [err.code, err.cause?.code, ...(err.errors ?? []).map((x) => x.code)]
  if (codes.some((c) => c !== undefined && NETWORK_CODES.has(c))) return true
  return err.$metadata?.httpStatusCode === undefined && (err.name === 'TimeoutError' || err.name === 'AbortError' || /socket hang up|ECONN|EPIPE/.test(err.message ?? ''))
}

/** Whether an AWS profile could supply a region (then the SDK's own lookup is left to find it). */
function hasProfileConfig(env: Record<string, string | undefined>): boolean {
  if (env.AWS_PROFILE) return true
  const file = env.AWS_CONFIG_FILE ?? join(homedir(), '.aws', 'config')
  return existsSync(file)
}
