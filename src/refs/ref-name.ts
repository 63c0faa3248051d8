import { InvalidRefNameError } from '../errors.js'

/**
 * Check a ref name against git's check-ref-format rules (with --allow-onelevel, since
 * `main` is a valid pedigree ref), returning it unchanged or throwing InvalidRefNameError
 * with the rule it breaks.
 */
export function checkRefName(name: string): string {
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

/** True if `name` passes checkRefName. */
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
