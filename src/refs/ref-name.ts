import { readsAsStoreCid } from '../codec/cid.js'
import { InvalidRefNameError } from '../errors.js'

/**
 * Check a name a ref is to be given: git's check-ref-format rules (see checkRefNameFormat),
 * and it must not read as a CID. A revision that reads as a CID or an abbreviated CID
 * (`bafyrei…`, `bafkrei…`, 12+ characters) names that block, so a ref so named (or a tag,
 * which `v1` abbreviates for `tags/v1`) could hide the block or never be reached. Returns the
 * name unchanged or throws InvalidRefNameError with the rule it breaks.
 *
 * @example
 * checkRefName('models/braggnn') // 'models/braggnn'
 * checkRefName('bafyreicddwj5irc') // throws ERR_INVALID_REF_NAME
 */
export function checkRefName(name: string): string {
  checkRefNameFormat(name)
  const short = name.startsWith(TAG_PREFIX) ? name.slice(TAG_PREFIX.length) : name
  if (readsAsStoreCid(short)) {
    throw new InvalidRefNameError(
      name,
      `${short === name ? 'it' : `'${short}'`} reads as a CID or an abbreviated CID (it begins '${short.slice(0, 7)}' and has 12 or more characters), ` +
        'and a revision written so names the block with that CID, never a ref; choose another name',
    )
  }
  return name
}

/**
 * Check a ref name against git's check-ref-format rules only (with --allow-onelevel, since
 * `main` is a valid pedigree ref), returning it unchanged or throwing InvalidRefNameError
 * with the rule it breaks. Enough to read, list or delete a ref: a store written before
 * checkRefName refused CID-like names may hold one, and must be able to delete it.
 */
export function checkRefNameFormat(name: string): string {
  const fail = (reason: string): never => {
    throw new InvalidRefNameError(name, reason)
  }
  if (name.length === 0) fail('it is empty')
  if (name === '@') fail("it is the single character '@'")
  if (name.startsWith('/') || name.endsWith('/')) fail("it begins or ends with '/'")
  if (name.includes('//')) fail("it contains '//'")
  if (name.endsWith('.')) fail("it ends with '.'")
  if (name.includes('..')) fail("it contains '..'")
  if (name.includes('@{')) fail("it contains '@{'")
  // Control characters, DEL, and the characters git reserves for revision syntax and globs.
  const bad = /[\x00-\x20\x7f~^:?*[\\]/.exec(name)
  if (bad) fail(`it contains ${describeChar(bad[0])}`)
  for (const component of name.split('/')) {
    if (component.startsWith('.')) fail(`component '${component}' begins with '.'`)
    if (component.endsWith('.lock')) fail(`component '${component}' ends with '.lock'`)
  }
  return name
}

/** True if `name` passes checkRefName: a name a ref may be given. */
export function isValidRefName(name: string): boolean {
  try {
    checkRefName(name)
    return true
  } catch {
    return false
  }
}

function describeChar(c: string): string {
  if (c === ' ') return 'a space'
  const code = c.charCodeAt(0)
  if (code < 0x20 || code === 0x7f) return `the control character 0x${code.toString(16).padStart(2, '0')}`
  return `'${c}'`
}

/** Refs under this prefix are tags: they never move without force. */
export const TAG_PREFIX = 'tags/'
/** Refs under this prefix record what a remote had when last seen; only sync writes them. */
export const REMOTE_PREFIX = 'remotes/'
