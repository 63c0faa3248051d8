import { InvalidInputError } from '../../errors.js'

/** Where a store lives in S3: a bucket and a key prefix (empty, or ending in `/`). */
export interface S3Location {
  bucket: string
  prefix: string
  /** The canonical URL, `s3://bucket/prefix/` (or `s3://bucket`). */
  url: string
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

/** True for text that names an S3 location (`s3://…`), whatever its validity. */
export function isS3Url(text: string): boolean {
  return /^s3:\/\//i.test(text.trim())
}

/**
 * Parse `s3://bucket/prefix`. The prefix is kept as given (without leading or doubled slashes)
 * and always ends in `/`, so that `s3://b/lab` and `s3://b/lab/` are the same store.
 *
 * @example
 * parseS3Url('s3://beamline/stores/aps') // { bucket: 'beamline', prefix: 'stores/aps/', url: 's3://beamline/stores/aps/' }
 */
export function parseS3Url(text: string): S3Location {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/i.exec(text.trim())
  if (!m) throw new InvalidInputError(`not an S3 URL: '${text}' (expected s3://bucket/prefix)`, { url: text })
  const bucket = m[1]!
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    throw new InvalidInputError(`invalid S3 bucket name '${bucket}' in ${text}: 3 to 63 characters of a-z, 0-9, '.' and '-'`, { url: text, bucket })
  }
  const parts = (m[2] ?? '').split('/').filter((p) => p !== '')
  for (const p of parts) {
    if (p === '.' || p === '..') throw new InvalidInputError(`invalid S3 prefix in ${text}: '${p}' is not allowed as a path segment`, { url: text })
  }
  const prefix = parts.length > 0 ? `${parts.join('/')}/` : ''
  return { bucket, prefix, url: `s3://${bucket}/${prefix}` }
}
