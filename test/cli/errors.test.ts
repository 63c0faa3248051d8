import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RAW, cidFor, cidToString } from '../../src/codec/cid.js'
import { type CliResult, refState, removeDir, runCli, runJson, storeAbove, tempDir } from './run-cli.js'

/**
 * Bad input, one case at a time: each must fail with its documented exit code
 * (src/cli/base-command.ts EXIT_CODES), say on stderr what was wrong, and leave every ref
 * and main's reflog exactly as they were.
 */

const EXIT = { invalid: 2, notFound: 3, refused: 4 } as const

/**
 * Two small file contents whose raw-block CIDs share their first 12 characters (the shortest
 * prefix accepted as a revision), found by a birthday search: about 2^12.5 tries.
 */
function collidingContents(): { prefix: string; contents: [string, string]; cids: [string, string] } {
  const seen = new Map<string, { content: string; cid: string }>()
  for (let i = 0; ; i++) {
    const content = `ambiguous ${i}\n`
    const cid = cidToString(cidFor(RAW, Buffer.from(content)))
    const prefix = cid.slice(0, 12)
    const other = seen.get(prefix)
    if (other) return { prefix, contents: [other.content, content], cids: [other.cid, cid] }
    seen.set(prefix, { content, cid })
  }
}

let dir: string
let repo: string
let c1: string
let c2: string
let baseline: { refs: string; reflog: string }
const amb = collidingContents()

beforeAll(async () => {
  dir = await tempDir('errors')
  repo = join(dir, 'repo')
  await mkdir(join(repo, 'amb'), { recursive: true })
  await writeFile(join(repo, 'file.txt'), 'version 1\n')
  await writeFile(join(repo, 'amb', 'x.txt'), amb.contents[0])
  await writeFile(join(repo, 'amb', 'y.txt'), amb.contents[1])
  await writeFile(join(repo, 'good.json'), '{"lr": 0.1}')
  await writeFile(join(repo, 'bad.json'), '{"a": 1,\n  "b": }\n')
  await writeFile(join(repo, 'array.json'), '[1, 2]')
  expect((await runCli(['init'], { cwd: repo })).code).toBe(0)
  const first = await runJson(['commit', 'file.txt', 'amb', '--record', 'config.json=good.json', '-m', 'one'], { cwd: repo })
  expect(first.code, first.stderr).toBe(0)
  c1 = first.json.cid
  await writeFile(join(repo, 'file.txt'), 'version 2\n')
  const second = await runJson(['commit', 'file.txt', '-m', 'two'], { cwd: repo })
  expect(second.code, second.stderr).toBe(0)
  c2 = second.json.cid
  expect((await runCli(['tag', 't1', 'main~1'], { cwd: repo })).code).toBe(0)
  baseline = await refState(repo)
}, 60_000)

afterAll(() => removeDir(dir))

/** Run a command that must fail; check the exit code and that stderr names the problem. */
async function rejected(args: string[], code: number, stderr: string[], input?: string): Promise<CliResult> {
  const r = await runCli(args, { cwd: repo, input })
  expect(r.code, `pedigree ${args.join(' ')}\n${r.stderr}`).toBe(code)
  expect(r.stderr).toMatch(/^error: /)
  for (const s of stderr) expect(r.stderr).toContain(s)
  expect(r.stdout).toBe('')
  return r
}

/**
 * Every ref and main's reflog as they were before the test. Checked once per test, after all
 * of its failing commands (the baseline is fixed, so a change by any of them shows).
 */
async function expectStoreUnchanged(): Promise<void> {
  expect(await refState(repo)).toEqual(baseline)
}

describe('bad input: exit code, a message naming the problem, the store unchanged', { timeout: 20_000 }, () => {
  it('unknown revision (3)', async () => {
    await rejected(['show', 'no-such-rev'], EXIT.notFound, ["revision not found: no-such-rev"])
    await rejected(['log', 'main~5'], EXIT.notFound, ['revision not found: main~5', 'has no parent'])
    await rejected(['reflog', 'no-such-ref'], EXIT.notFound, ['ref not found: no-such-ref'])
    await expectStoreUnchanged()
  })

  it('ambiguous CID prefix (2), listing the candidates', async () => {
    expect(amb.cids[0].slice(0, 12)).toBe(amb.prefix)
    const r = await rejected(['show', amb.prefix], EXIT.invalid, [`ambiguous revision '${amb.prefix}'`])
    expect(r.stderr).toContain(amb.cids[0])
    expect(r.stderr).toContain(amb.cids[1])
    await expectStoreUnchanged()
  })

  it('too-short CID prefix (3), naming the 12-character minimum', async () => {
    const short = c1.slice(0, 10)
    await rejected(['show', short], EXIT.notFound, [`revision not found: ${short}`, '12+ characters'])
    await expectStoreUnchanged()
  })

  it('invalid ref names (2): commit -b and ref set', async () => {
    await rejected(['commit', '-b', 'bad..name', 'file.txt'], EXIT.invalid, ["invalid ref name 'bad..name'", "'..'"])
    await rejected(['ref', 'set', 'a b', 'main'], EXIT.invalid, ["invalid ref name 'a b'"])
    await expectStoreUnchanged()
  })

  it('malformed JSON records (2), naming the file or stdin and the line and column', async () => {
    await rejected(['commit', '--record', 'r.json=bad.json'], EXIT.invalid, ['malformed JSON in bad.json', 'line 2, column 8'])
    await rejected(['commit', '--record', 'r.json=-'], EXIT.invalid, ['malformed JSON in <stdin>', 'line 1, column 10'], '{"loss": }')
    await rejected(['commit', '--record', 'r.json=array.json'], EXIT.invalid, ['array.json', 'must be a JSON object'])
    await expectStoreUnchanged()
  })

  it('missing source path (3)', async () => {
    await rejected(['commit', 'nothere.txt'], EXIT.notFound, ['source path not found: nothere.txt'])
    await rejected(['commit', 'file.txt', '--record', 'r.json=missing.json'], EXIT.notFound, ['record file not found: missing.json'])
    await expectStoreUnchanged()
  })

  it('tree paths that could escape a checkout directory are refused at commit (2)', async () => {
    await rejected(['commit', '../evil=file.txt'], EXIT.invalid, ["invalid tree path '../evil'", "'..' segment"])
    await rejected(['commit', 'a//b=file.txt'], EXIT.invalid, ["invalid tree path 'a//b'", 'empty segment'])
    await rejected(['commit', '/etc/evil=file.txt'], EXIT.invalid, ["invalid tree path '/etc/evil'", 'absolute'])
    await expectStoreUnchanged()
  })

  it('moving or deleting a tag without --force (4)', async () => {
    await rejected(['tag', 't1', 'main'], EXIT.refused, ["refusing to move tag 'tags/t1'", '--force'])
    await rejected(['ref', 'set', 'tags/t1', 'main'], EXIT.refused, ["refusing to move tag 'tags/t1'"])
    await rejected(['ref', 'delete', 'tags/t1'], EXIT.refused, ["refusing to delete tag 'tags/t1'"])
    await expectStoreUnchanged()
  })

  it('commit with nothing changed (4)', async () => {
    await rejected(['commit', 'file.txt', '-m', 'again'], EXIT.refused, ["nothing to commit: the tree of 'main' would not change"])
    await expectStoreUnchanged()
  })

  it('init where a store already exists (4)', async () => {
    await rejected(['init'], EXIT.refused, [`a pedigree store already exists at ${join(repo, '.pedigree')}`])
    await expectStoreUnchanged()
  })

  it('checkout refuses to overwrite a differing file (4), and --force overwrites it', async () => {
    const out = join(dir, 'out')
    await mkdir(out)
    await writeFile(join(out, 'file.txt'), 'my local edits\n')
    await rejected(['checkout', 'main', '-o', out], EXIT.refused, [`refusing to overwrite ${join(out, 'file.txt')}`, '--force'])
    expect(await readFile(join(out, 'file.txt'), 'utf8')).toBe('my local edits\n')
    expect(await readdir(out)).toEqual(['file.txt']) // refused before anything was written

    const forced = await runCli(['checkout', 'main', '-o', out, '--force'], { cwd: repo })
    expect(forced.code, forced.stderr).toBe(0)
    expect(await readFile(join(out, 'file.txt'), 'utf8')).toBe('version 2\n')
    expect(await readFile(join(out, 'amb', 'x.txt'), 'utf8')).toBe(amb.contents[0])
    await expectStoreUnchanged()
  })

  it('no store found (3): the message says to run pedigree init', async ({ skip }) => {
    const elsewhere = join(dir, 'no-store-here')
    await mkdir(elsewhere)
    // A stray store above the temp dir would be found, and there would be nothing to test.
    if (storeAbove(elsewhere)) skip()
    const r = await runCli(['log'], { cwd: elsewhere })
    expect(r.code).toBe(EXIT.notFound)
    expect(r.stderr).toContain(`no pedigree store here or in any parent of ${elsewhere}`)
    expect(r.stderr).toContain('pedigree init')
    expect(existsSync(join(elsewhere, '.pedigree'))).toBe(false)
  })

  it('a tag moves with --force, and its reflog keeps the old value', async () => {
    const r = await runCli(['tag', 't1', 'main', '--force'], { cwd: repo })
    expect(r.code, r.stderr).toBe(0)
    const reflog = await runJson(['reflog', 'tags/t1'], { cwd: repo })
    expect(reflog.json.map((e: { new: string }) => e.new)).toEqual([c2, c1])
  })
})

describe('errors under --json: one JSON error object on stdout, non-zero exit', { timeout: 20_000 }, () => {
  async function jsonError(args: string[], cwd = repo): Promise<{ code: number | null; error: { code: string; message: string; data: Record<string, unknown> } }> {
    const r = await runJson(args, { cwd })
    expect(Object.keys(r.json)).toEqual(['error'])
    expect(typeof r.json.error.message).toBe('string')
    expect(typeof r.json.error.data).toBe('object')
    expect(r.stderr).not.toContain('error:')
    return { code: r.code, error: r.json.error }
  }

  it('unknown revision, for a single result and for a streamed listing', async () => {
    const show = await jsonError(['show', 'no-such-rev'])
    expect(show.code).toBe(EXIT.notFound)
    expect(show.error).toMatchObject({ code: 'ERR_NOT_FOUND', data: { what: 'revision', name: 'no-such-rev' } })
    expect(show.error.message).toContain('no-such-rev')
    for (const cmd of [['log', 'no-such-rev'], ['ls', 'no-such-rev'], ['diff', 'no-such-rev', 'main']]) {
      const r = await jsonError(cmd)
      expect(r.code).toBe(EXIT.notFound)
      expect(r.error.code).toBe('ERR_NOT_FOUND')
    }
  })

  it('ambiguous prefix, invalid ref name, refused tag move, nothing to commit', async () => {
    const ambiguous = await jsonError(['show', amb.prefix])
    expect(ambiguous.code).toBe(EXIT.invalid)
    expect(ambiguous.error).toMatchObject({ code: 'ERR_AMBIGUOUS', data: { prefix: amb.prefix } })
    expect([...(ambiguous.error.data.candidates as string[])].sort()).toEqual([...amb.cids].sort())

    const refName = await jsonError(['commit', '-b', 'bad..name', 'file.txt'])
    expect(refName.code).toBe(EXIT.invalid)
    expect(refName.error).toMatchObject({ code: 'ERR_INVALID_REF_NAME', data: { name: 'bad..name' } })

    // The last test above moved tags/t1 to main (tests in a file run in order).
    const tag = await jsonError(['tag', 't1', 'main~1'])
    expect(tag.code).toBe(EXIT.refused)
    expect(tag.error).toMatchObject({ code: 'ERR_REFUSED', data: { ref: 'tags/t1' } })

    const nothing = await jsonError(['commit', 'file.txt'])
    expect(nothing.code).toBe(EXIT.refused)
    expect(nothing.error.code).toBe('ERR_NOTHING_TO_COMMIT')
  })

  it('a record file that is not UTF-8 (2), naming the byte, not stored with U+FFFD in its place', async () => {
    await writeFile(join(repo, 'latin1.json'), Buffer.from('{"name": "caf\xe9"}', 'latin1'))
    const r = await jsonError(['commit', '--record', 'r/latin1.json=latin1.json'])
    expect(r.code).toBe(EXIT.invalid)
    expect(r.error.message).toBe('latin1.json: not UTF-8 at byte 13 (line 1); JSON must be UTF-8')
  })

  it('an unknown command (2): a clear message, and the error document under --json', async () => {
    const r = await jsonError(['nosuchcmd'])
    expect(r.code).toBe(EXIT.invalid)
    expect(r.error).toMatchObject({ code: 'ERR_INVALID_INPUT', data: { command: 'nosuchcmd' } })
    const text = await runCli(['ref', 'nosuch'], { cwd: repo })
    expect(text.code).toBe(EXIT.invalid)
    expect(text.stderr).toBe("error: unknown command 'ref nosuch' (see `pedigree --help` for the commands)\n")
  })

  it('a checkout into a path that is a file, or under one (2), naming the file', async () => {
    await writeFile(join(dir, 'a-file'), 'x')
    for (const out of [join(dir, 'a-file'), join(dir, 'a-file', 'sub')]) {
      const r = await jsonError(['checkout', 'main', '-o', out])
      expect(r.code, out).toBe(EXIT.invalid)
      expect(r.error.message).toContain(`${join(dir, 'a-file')} is a file, not a folder`)
    }
  })

  it('usage errors (unknown flag, missing required flag, bad flag value) have the same shape', async () => {
    for (const args of [['log', '--bogus'], ['checkout', 'main'], ['log', '-n', 'abc']]) {
      const r = await jsonError(args)
      expect(r.code, args.join(' ')).toBe(EXIT.invalid)
      expect(r.error.code).toBe('ERR_INVALID_INPUT')
    }
  })

  it('no store found', async ({ skip }) => {
    const elsewhere = join(dir, 'no-store-json')
    await mkdir(elsewhere)
    if (storeAbove(elsewhere)) skip()
    const r = await jsonError(['reflog'], elsewhere)
    expect(r.code).toBe(EXIT.notFound)
    expect(r.error.code).toBe('ERR_NOT_FOUND')
    expect(r.error.message).toContain('pedigree init')
  })
})
