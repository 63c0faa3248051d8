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
