import { realpathSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidInputError, PedigreeError } from '../errors.js'
import { STORE_DIRNAME, type OpenOptions } from '../repo/repository.js'
import { PathTransport } from './path-transport.js'
import type { Transport } from './transport.js'

export interface OpenTransportOptions {
  /** How to open a store on a path (lock wait, message while waiting). */
  open?: OpenOptions
  /** The local store's location: a remote that is the same store is refused (it would wait on itself). */
  local?: string
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i

/**
 * A remote URL in the form it is kept in the config: paths made absolute (relative to
 * `base`), `file://` URLs turned into paths, other URLs unchanged.
 */
export function normalizeRemoteUrl(url: string, base: string): string {
  const trimmed = url.trim()
  if (trimmed === '') throw new InvalidInputError('empty remote URL')
  if (/^file:\/\//i.test(trimmed)) return fileURLToPath(trimmed)
  if (SCHEME.test(trimmed)) {
    refuseCredentials(trimmed)
    return trimmed
  }
  return resolve(base, trimmed)
}

/**
 * A remote URL is kept in the store's config and shown by `remote list`: it must not carry a
 * user name or password (`http://user:secret@host/`). The error never repeats them.
 */
function refuseCredentials(url: string): void {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)@([^/?#@]*)/i.exec(url)
  if (!m) return
  const scheme = m[1]!.toLowerCase()
  const host = m[3]!
  const instead =
    scheme === 'http' || scheme === 'https'
      ? 'send a token in the environment variable PEDIGREE_TOKEN instead'
      : scheme === 's3'
        ? 'S3 credentials come from the usual AWS environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, …)'
        : 'pass credentials some other way'
  throw new InvalidInputError(`put no credentials in a remote URL (${scheme}://…@${host}): it would be kept in the store's config; ${instead}`, { scheme, host })
}

/**
 * The transport for a remote URL: a path to another store (or a `file://` URL),
 * `http(s)://` (a `pedigree serve`, see http-transport.ts) or `s3://bucket/prefix`
 * (see s3-transport.ts); a `.car` file is imported with `bundle import`.
 *
 * @example
 * const t = await openTransport('/mnt/hpc/.pedigree', { local: repo.location })
 */
export async function openTransport(url: string, { open, local }: OpenTransportOptions = {}): Promise<Transport> {
  const scheme = SCHEME.exec(url)?.[1]?.toLowerCase()
  // Each scheme's transport is its own module, loaded only when used (the AWS SDK and the
  // HTTP client cost start-up time every other command should not pay).
  if (scheme === 'http' || scheme === 'https') return (await import('./http-transport.js')).openHttpTransport(url, { open, local })
  if (scheme === 's3') return (await import('./s3-transport.js')).openS3Transport(url, { open, local })
  if (scheme && scheme !== 'file') throw new InvalidInputError(`unknown remote URL scheme '${scheme}://' in ${url}`, { url })
  const path = scheme === 'file' ? fileURLToPath(url) : resolve(url)
  if (/\.car$/i.test(path)) {
    throw new PedigreeError('ERR_UNSUPPORTED', `${url} is a bundle file; use \`pedigree bundle import ${url}\``, { url })
  }
  if (local) {
    const self = realOrSelf(local)
    if (realOrSelf(path) === self || realOrSelf(join(path, STORE_DIRNAME)) === self) throw new InvalidInputError(`the remote ${url} is this store itself`, { url })
  }
  return PathTransport.open(path, open)
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p)
  } catch {
    return resolve(p)
  }
}
