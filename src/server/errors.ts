import { PedigreeError } from '../errors.js'

/** HTTP status for each error code; anything else is a 500. */
const STATUS: Record<string, number> = {
  ERR_INVALID_INPUT: 400,
  ERR_INVALID_REF_NAME: 400,
  ERR_UNSAFE_PATH: 400,
  ERR_AMBIGUOUS: 400,
  ERR_UNSUPPORTED: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_CONFLICT: 409,
  ERR_REFUSED: 409,
  ERR_EXISTS: 409,
  ERR_NOTHING_TO_COMMIT: 409,
  ERR_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_CORRUPT: 422,
  ERR_INCOMPLETE: 422,
  ERR_LOCKED: 423,
  // The server cannot serve now (shutting down; its store's backend unreachable): retry later.
  ERR_UNREACHABLE: 503,
}

export function statusOf(code: string): number {
  return STATUS[code] ?? 500
}

/**
 * Any error thrown while answering, as a PedigreeError: ours as they are; fastify's own
 * (a body over the limit, malformed JSON, an unknown content type) by their status.
 */
export function asPedigreeError(e: unknown): PedigreeError {
  if (e instanceof PedigreeError) return e
  const err = e as { statusCode?: number; code?: string; message?: string }
  const message = err?.message ?? String(e)
  switch (err?.statusCode) {
    case 413:
      return new PedigreeError('ERR_TOO_LARGE', `request body too large: ${message}`, { reason: err.code })
    case 415:
      return new PedigreeError('ERR_UNSUPPORTED_MEDIA_TYPE', message, { reason: err.code })
    case 400:
      return new PedigreeError('ERR_INVALID_INPUT', message, { reason: err.code })
    case 404:
      return new PedigreeError('ERR_NOT_FOUND', message)
    default:
      return new PedigreeError('ERR_INTERNAL', message || 'internal error', {}, { cause: e })
  }
}

/** The JSON body every error answer has. */
export function errorBody(e: PedigreeError): { error: { code: string; message: string; data: Record<string, unknown> } } {
  return { error: e.toJSON() }
}

/** What an error sent to a remote client says instead of the server's store folder. */
export const STORE_NAME = "the server's store"

/**
 * `e` as it may be sent over HTTP: the server's filesystem paths (its store folder, the folder
 * around it, its daemon socket: whatever `privatePaths` lists) are not the client's business,
 * so messages name "the server's store" instead, and data fields holding such a path are left
 * out. Errors without such paths are returned as they are.
 *
 * @example
 * reply.send(errorBody(withoutPaths(e, [repo.location])))
 */
export function withoutPaths(e: PedigreeError, privatePaths: readonly string[]): PedigreeError {
  const paths = [...new Set(privatePaths.filter((p) => p.length > 1))].sort((a, b) => b.length - a.length)
  const leaks = (text: string): boolean => paths.some((p) => text.includes(p))
  if (!leaks(e.message) && !Object.values(e.data).some((v) => typeof v === 'string' && leaks(v))) return e
  let message = e.message
  for (const p of paths) {
    message = message
      .split(`the store daemon of ${p}`).join(`the store daemon of ${STORE_NAME}`)
      .split(`the store at ${p}`).join(STORE_NAME)
      .split(`the store ${p}`).join(STORE_NAME)
  }
  // Any other mention: a path under one of them becomes the part below it, the path itself the store.
  for (const p of paths) message = message.replace(new RegExp(`${escapeRegExp(p)}(/[^\\s'"),;:]*)?`, 'g'), (_m, rest?: string) => (rest ? `<${STORE_NAME}>${rest}` : STORE_NAME))
  const data: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(e.data)) if (!(typeof v === 'string' && leaks(v))) data[k] = v
  return new PedigreeError(e.code, message, data)
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
