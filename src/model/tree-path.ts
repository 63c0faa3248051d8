import { InvalidInputError } from '../errors.js'

/** Longest path accepted, in UTF-16 code units. */
export const MAX_PATH_LENGTH = 4096

/**
 * The folder name of a store (`.pedigree`, in any case: file systems that ignore case would
 * open it as the store). No tree path may hold it as a segment, or a checkout of that tree
 * could write into a store: replace its database, or point its commands at another process's
 * socket (as git refuses `.git`).
 */
const STORE_SEGMENT = '.pedigree'

/**
 * Checks a tree path: relative, `/`-separated, no empty, `.`, `..` or `.pedigree` segments.
 * `removing`: a path being removed may hold `.pedigree` (a tree written before 2026-12 may
 * have one, and must be able to drop it).
 */
export function validateTreePath(path: string, { removing = false }: { removing?: boolean } = {}): string {
  const fail = (why: string): never => {
    throw new InvalidInputError(`invalid tree path '${path}': ${why}`, { path })
  }
  if (path.length === 0) fail('it is empty')
  if (path.length > MAX_PATH_LENGTH) fail(`longer than ${MAX_PATH_LENGTH} characters`)
  if (path.startsWith('/')) fail('it is absolute')
  // One pass over the characters (a commit checks every path, 100k of them at times); the
  // checks and their messages are those of the plain version in validateTreePathSlowly.
  let start = 0
  for (let i = 0; i <= path.length; i++) {
    const c = i < path.length ? path.charCodeAt(i) : 0x2f // the end closes the last segment
    if (c !== 0x2f) {
      if (c < 0x20 || c === 0x5c || c === 0x7f) return validateTreePathSlowly(path) // control character, backslash
      continue
    }
    const n = i - start
    if (n === 0 || (n <= 2 && path.charCodeAt(start) === 0x2e && (n === 1 || path.charCodeAt(start + 1) === 0x2e))) {
      return validateTreePathSlowly(path)
    }
    if (!removing && n === STORE_SEGMENT.length && path.charCodeAt(start) === 0x2e && path.slice(start, i).toLowerCase() === STORE_SEGMENT) return validateTreePathSlowly(path)
    start = i + 1
  }
  return path
}

function validateTreePathSlowly(path: string): string {
  const fail = (why: string): never => {
    throw new InvalidInputError(`invalid tree path '${path}': ${why}`, { path })
  }
  if (path.includes('\\')) fail('it contains a backslash')
  if (/[\x00-\x1f\x7f]/.test(path)) fail('it contains a control character')
  for (const seg of path.split('/')) {
    if (seg === '') fail('it has an empty segment')
    if (seg === '.' || seg === '..') fail(`it has a '${seg}' segment`)
    if (seg.toLowerCase() === STORE_SEGMENT) fail(`it has a '${seg}' segment (a store's folder: a checkout would write into a store)`)
  }
  return path
}

/** Whether a file or folder name is a store's folder (`.pedigree`, in any case). */
export function isStoreFolderName(name: string): boolean {
  return name.length === STORE_SEGMENT.length && name.toLowerCase() === STORE_SEGMENT
}
