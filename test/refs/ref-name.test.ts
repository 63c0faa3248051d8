import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { checkRefName, checkRefNameFormat, isValidRefName } from '../../src/refs/ref-name.js'
import { InvalidRefNameError, PedigreeError } from '../../src/errors.js'

/**
 * Names to compare with git. The verdict is asked of git at test time, never written here,
 * so the test follows git's rules (with --allow-onelevel, since `main` is a pedigree ref).
 */
const NAMES: string[] = [
  // plain and nested
  'main',
  'models/braggnn',
  'a/b/c',
  'tags/v1.0',
  'refs/heads/x',
  'remotes/origin/main',
  'v1.0.0-rc.1',
  'under_score',
  'a-b',
  'a+b',
  'a=b',
  'a,b',
  'a#b',
  'a%b',
  'a&b',
  'a!b',
  'a\'b',
  'a"b',
  'a<b>',
  'a|b',
  'a{b}',
  'a]',
  'ünï/cødé',
  'models/中',
  'emoji/🚀',
  '-dash',
  'a/-b',
  // dots
  '.hidden',
  'a/.b',
  'a.b',
  'a./b',
  'a.',
  'a/b.',
  '.',
  '..',
  'a..b',
  'a/../b',
  // .lock
  'x.lock',
  'a/b.lock/c',
  'a.lock.b',
  '.lock',
  'a/x.lockx',
  // revision and glob syntax
  'a~1',
  'a^',
  'a:b',
  'a?',
  'a*',
  'a/*',
  'a[',
  'a\\b',
  // whitespace and control characters
  'a b',
  ' a',
  'a ',
  'a\tb',
  'a\nb',
  'a\x01b',
  'a\x1fb',
  'a\x7fb',
  // slashes
  '/a',
  'a/',
  'a//b',
  '/',
  // @
  '@',
  '@/a',
  'a/@',
  'a@{1}',
  'a@b',
  '@{',
  'a@',
  '@@',
  // empty
  '',
]

/** git's verdict. git takes a leading '-' as an option, so such a name is asked as `x/<name>`: same rules, one more valid component. */
function gitAccepts(name: string): boolean {
  const arg = name.startsWith('-') ? `x/${name}` : name
  const r = spawnSync('git', ['check-ref-format', '--allow-onelevel', arg], { encoding: 'utf8' })
  if (r.error) throw r.error
  if (r.status !== 0 && r.status !== 1) throw new Error(`git check-ref-format exited ${r.status} for ${JSON.stringify(name)}: ${r.stderr}`)
  return r.status === 0
}

describe('checkRefName agrees with git check-ref-format --allow-onelevel', () => {
  it('git is there to ask, and its verdicts are not all the same', () => {
    expect(gitAccepts('main')).toBe(true)
    expect(gitAccepts('a..b')).toBe(false)
  })

  it.each(NAMES.map((n) => [JSON.stringify(n), n] as const))('%s', (_label, name) => {
    const git = gitAccepts(name)
    expect(isValidRefName(name), `git says ${git ? 'valid' : 'invalid'}`).toBe(git)
    if (git) {
      expect(checkRefName(name)).toBe(name)
      return
    }
    let caught: unknown
    try {
      checkRefName(name)
    } catch (e) {
      caught = e
    }
    expect(caught).toBeInstanceOf(InvalidRefNameError)
    const err = caught as InvalidRefNameError
    expect(err).toBeInstanceOf(PedigreeError)
    expect(err.code).toBe('ERR_INVALID_REF_NAME')
    expect(err.data.name).toBe(name)
    expect(typeof err.data.reason).toBe('string')
    expect((err.data.reason as string).length).toBeGreaterThan(0)
    expect(err.message).toContain(`'${name}'`)
    expect(err.message).toContain(err.data.reason as string)
  })

  it('refuses a NUL byte (git cannot even be asked: argv cannot hold one)', () => {
    expect(() => checkRefName('a\x00b')).toThrow(InvalidRefNameError)
    expect(isValidRefName('\x00')).toBe(false)
  })

  it('names the rule each bad name breaks', () => {
    const reason = (name: string): string => {
      try {
        checkRefName(name)
      } catch (e) {
        return String((e as InvalidRefNameError).data.reason)
      }
      throw new Error(`${name} was accepted`)
    }
    expect(reason('a..b')).toContain('..')
    expect(reason('x.lock')).toContain('.lock')
    expect(reason('a/b.lock/c')).toContain('b.lock')
    expect(reason('.hidden')).toContain("'.'")
    expect(reason('a@{1}')).toContain('@{')
    expect(reason('a//b')).toContain('//')
    expect(reason('a b')).toContain('space')
    expect(reason('a\tb')).toContain('0x09')
    expect(reason('a\x7fb')).toContain('0x7f')
    expect(reason('a~1')).toContain('~')
    expect(reason('')).toContain('empty')
  })
})

describe('a ref may not be named like a CID', () => {
  // CIDs of blocks a store can hold begin bafyrei (dag-cbor) or bafkrei (raw); 12+ characters abbreviate one.
  const CID_LIKE = [
    'bafyreicddwj5ircipxa4ue76ann3hgdhy3ae4za3rolentg6qudxq2mruq',
    'bafyreicddwj5irc',
    'bafkreicddwj5',
    'bafyreiaaaaaa',
    'tags/bafyreicddwj5irc', // `bafyreicddwj5irc` would abbreviate this tag
  ]
  const ALLOWED = [
    'bafyreiaaaa', // 11 characters: too short to be read as a CID
    'baselinemodels', // base32 letters, but no block's CID begins so
    'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi', // a dag-pb CID: never in a store
    'bafyreicddwj5irc-retrain', // '-' is not base32
    'models/bafyreicddwj5irc', // only the whole name (or a tag's) is read as a revision
    'remotes/origin/bafyreicddwj5irc',
    'BAFYREICDDWJ5IRC',
  ]

  it.each(CID_LIKE)('refuses %s with ERR_INVALID_REF_NAME saying why', (name) => {
    expect(gitAccepts(name)).toBe(true) // git's rules allow it: this rule is pedigree's own
    expect(checkRefNameFormat(name)).toBe(name)
    expect(isValidRefName(name)).toBe(false)
    let caught: unknown
    try {
      checkRefName(name)
    } catch (e) {
      caught = e
    }
    expect(caught).toBeInstanceOf(InvalidRefNameError)
    expect((caught as InvalidRefNameError).code).toBe('ERR_INVALID_REF_NAME')
    expect((caught as InvalidRefNameError).data.name).toBe(name)
    expect((caught as Error).message).toContain('reads as a CID')
  })

  it.each(ALLOWED)('allows %s', (name) => {
    expect(checkRefName(name)).toBe(name)
  })
})
