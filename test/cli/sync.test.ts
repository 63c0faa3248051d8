import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AUTHOR, BIN, refState, removeDir, runCli, runJson, tempDir } from './run-cli.js'

/**
 * Sync through the real CLI: remotes, push, fetch, pull, clone and bundles between stores
 * in one temp folder, with --json output and the documented exit codes.
 */

let dir: string
let a: string // the workspace that pushes
let hub: string // the shared store
let c: string // a clone of it

async function commitRecord(cwd: string, path: string, json: string, message: string): Promise<string> {
  const r = await runJson(['commit', '--record', `${path}=-`, '-m', message], { cwd, input: json })
  expect(r.code, r.stderr).toBe(0)
  return r.json.cid
}

beforeAll(async () => {
  dir = await tempDir('sync')
  a = join(dir, 'a')
  hub = join(dir, 'hub')
  c = join(dir, 'c')
  await mkdir(a)
  await mkdir(hub)
  expect((await runCli(['init'], { cwd: a })).code).toBe(0)
  expect((await runCli(['init'], { cwd: hub })).code).toBe(0)
  await writeFile(join(a, 'weights.bin'), Buffer.alloc(1_500_000, 7))
  expect((await runCli(['commit', 'model/weights.bin=weights.bin', '-m', 'model'], { cwd: a })).code).toBe(0)
}, 60_000)

afterAll(() => removeDir(dir))

describe('pedigree remote', () => {
  it('adds, lists, shows and removes remotes', async () => {
    const add = await runJson(['remote', 'add', 'origin', '../hub'], { cwd: a })
    expect(add.code, add.stderr).toBe(0)
    expect(add.json).toEqual({ name: 'origin', url: hub })
    expect((await runJson(['remote', 'add', 'spare', hub], { cwd: a })).code).toBe(0)
    const list = await runJson(['remote', 'list'], { cwd: a })
    expect(list.json).toEqual([
      { name: 'origin', url: hub },
      { name: 'spare', url: hub },
    ])
    const again = await runJson(['remote', 'add', 'origin', '../elsewhere'], { cwd: a })
    expect(again.code).toBe(4)
    expect(again.json.error.code).toBe('ERR_EXISTS')
    const bad = await runCli(['remote', 'add', 'no/slash', hub], { cwd: a })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("invalid remote name 'no/slash'")

    const show = await runJson(['remote', 'show', 'spare'], { cwd: a })
    expect(show.json).toEqual({ name: 'spare', url: hub, refs: [] })
    expect((await runJson(['remote', 'remove', 'spare'], { cwd: a })).json).toMatchObject({ name: 'spare', removedRefs: [] })
    expect((await runJson(['remote', 'list'], { cwd: a })).json).toEqual([{ name: 'origin', url: hub }])
    const gone = await runCli(['remote', 'remove', 'spare'], { cwd: a })
    expect(gone.code).toBe(3)
    expect(gone.stderr).toContain('remote not found: spare')
  })
})

describe('push, clone, pull, fetch', () => {
  it('pushes, then a second push sends nothing', async () => {
    const first = await runJson(['push'], { cwd: a })
    expect(first.code, first.stderr).toBe(0)
    expect(first.json.refs[0]).toMatchObject({ ref: 'main', old: null, status: 'created' })
    expect(first.json.blocks).toBeGreaterThan(3)
    const second = await runJson(['push', 'origin', 'main'], { cwd: a })
    expect(second.json).toMatchObject({ blocks: 0, bytes: 0, negotiationRounds: 0 })
    expect(second.json.refs[0].status).toBe('up-to-date')
    // Human output on stdout, nothing on stderr without a terminal.
    const human = await runCli(['push'], { cwd: a })
    expect(human.stdout).toContain(`everything up to date on origin (${hub}); 1 round trip\n`)
    expect(human.stderr).toBe('')
  })

  it('clones with identical CIDs and byte-exact files', async () => {
    const r = await runJson(['clone', hub, c], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    expect(r.json.location).toBe(join(c, '.pedigree'))
    const theirs = await runJson(['ref', 'list'], { cwd: a })
    const ours = await runJson(['ref', 'list'], { cwd: c })
    expect(ours.json.find((x: { name: string }) => x.name === 'main').cid).toBe(theirs.json.find((x: { name: string }) => x.name === 'main').cid)
    const out = join(dir, 'checkout')
    const co = await runCli(['checkout', 'main', '-o', out], { cwd: c })
    expect(co.code, co.stderr).toBe(0)
    expect(Buffer.compare(await readFile(join(out, 'model/weights.bin')), Buffer.alloc(1_500_000, 7))).toBe(0)
    expect((await runJson(['remote', 'list'], { cwd: c })).json).toEqual([{ name: 'origin', url: hub }])
    expect((await runCli(['fsck'], { cwd: c })).code).toBe(0)
  })

  it('refuses a push that is not a fast-forward (exit 4) unless --force; pull refuses diverged history', async () => {
    const theirs = await commitRecord(c, 'runs/1.json', '{"by": "c"}', 'from c')
    expect((await runJson(['push'], { cwd: c })).code).toBe(0)
    const ours = await commitRecord(a, 'runs/1.json', '{"by": "a"}', 'from a')
    const before = await refState(a)

    const refused = await runJson(['push'], { cwd: a })
    expect(refused.code).toBe(4)
    expect(refused.json.error.code).toBe('ERR_REFUSED')
    expect(refused.json.error.message).toContain('fetch them first (pedigree pull origin main)')
    const human = await runCli(['push'], { cwd: a })
    expect(human.code).toBe(4)
    expect(human.stderr).toMatch(/^error: rejected 'main'/)
    expect(await refState(a)).toEqual(before)

    const diverged = await runJson(['pull'], { cwd: a })
    expect(diverged.code).toBe(4)
    expect(diverged.json.error.data.reason).toBe('diverged')
    expect(diverged.json.error.message).toContain('pedigree ref set main remotes/origin/main')
    const refs = await runJson(['ref', 'list'], { cwd: a })
    const value = (name: string): string => refs.json.find((x: { name: string }) => x.name === name)?.cid
    expect(value('main')).toBe(ours)
    expect(value('remotes/origin/main')).toBe(theirs)

    const forced = await runJson(['push', '--force'], { cwd: a })
    expect(forced.code, JSON.stringify(forced.json)).toBe(0)
    expect(forced.json.refs[0]).toMatchObject({ status: 'forced', old: theirs, new: ours })
    // The other clone catches up with fetch (its tracking ref moves, its main does not), then cannot pull.
    const fetched = await runJson(['fetch'], { cwd: c })
    expect(fetched.code).toBe(0)
    expect(fetched.json.refs[0]).toMatchObject({ tracking: 'remotes/origin/main', old: theirs, new: ours, status: 'forced' })
    expect((await runJson(['pull', 'origin', 'main'], { cwd: c })).code).toBe(4)
    // Taking theirs as the error says, then pulling, works.
    expect((await runCli(['ref', 'set', 'main', 'remotes/origin/main'], { cwd: c })).code).toBe(0)
    const ok = await runJson(['pull'], { cwd: c })
    expect(ok.json.status).toBe('up-to-date')
    const next = await commitRecord(a, 'runs/2.json', '{"n": 2}', 'two')
    expect((await runJson(['push'], { cwd: a })).code).toBe(0)
    const ff = await runJson(['pull'], { cwd: c })
    expect(ff.json).toMatchObject({ ref: 'main', status: 'fast-forward', new: next })
    expect(ff.json.fetch.blocks).toBeGreaterThan(0)
  })

  it('fails clearly on an unreachable remote, changing nothing', async () => {
    expect((await runCli(['remote', 'add', 'nowhere', '../no-such-store'], { cwd: a })).code).toBe(0)
    const before = await refState(a)
    for (const cmd of [['push', 'nowhere'], ['fetch', 'nowhere'], ['pull', 'nowhere']]) {
      const r = await runCli(cmd, { cwd: a })
      expect(r.code, cmd.join(' ')).toBe(3)
      expect(r.stderr).toContain(`remote store not found: ${join(dir, 'no-such-store')}`)
    }
    expect(await refState(a)).toEqual(before)
    const unknown = await runJson(['push', 'nosuchremote'], { cwd: a })
    expect(unknown.code).toBe(3)
    expect(unknown.json.error.message).toContain('remote add nosuchremote')
    const clone = await runCli(['clone', join(dir, 'no-such-store'), join(dir, 'never')], { cwd: dir })
    expect(clone.code).toBe(3)
    expect(existsSync(join(dir, 'never'))).toBe(false)
  })
})

describe('pedigree bundle', () => {
  it('creates, verifies and imports a bundle; a truncated one changes nothing', async () => {
    const car = join(dir, 'a.car')
    const made = await runJson(['bundle', 'create', car, 'main'], { cwd: a })
    expect(made.code, made.stderr).toBe(0)
    expect(made.json.refs.map((r: { name: string }) => r.name)).toEqual(['main'])
    const verified = await runJson(['bundle', 'verify', car], { cwd: dir })
    expect(verified.code).toBe(0)
    expect(verified.json).toMatchObject({ ok: true, blocks: made.json.blocks })

    const fresh = join(dir, 'fresh')
    await mkdir(fresh)
    expect((await runCli(['init'], { cwd: fresh })).code).toBe(0)
    const cut = join(dir, 'cut.car')
    const bytes = await readFile(car)
    await writeFile(cut, bytes.subarray(0, bytes.length - 100))
    const badVerify = await runJson(['bundle', 'verify', cut], { cwd: dir })
    expect(badVerify.code).toBe(5)
    expect(badVerify.json.error.message).toContain('truncated')
    const badImport = await runCli(['bundle', 'import', cut], { cwd: fresh })
    expect(badImport.code).toBe(5)
    expect(badImport.stderr).toContain('truncated')
    expect((await runJson(['ref', 'list'], { cwd: fresh })).json).toEqual([])

    const imported = await runJson(['bundle', 'import', car], { cwd: fresh })
    expect(imported.code, imported.stderr).toBe(0)
    expect(imported.json.refs[0]).toMatchObject({ ref: 'main', local: 'created', tracking: 'remotes/bundle/main', cid: made.json.refs[0].cid })
    expect((await runCli(['fsck'], { cwd: fresh })).code).toBe(0)
  })
})

const hasScript = spawnSync('script', ['--version']).status === 0

describe.skipIf(!hasScript)('sync progress on a terminal', () => {
  /** Run the CLI under a pseudo-terminal (util-linux `script`), returning what the terminal showed. */
  function onTerminal(args: string[], cwd: string): string {
    const { NODE_ENV: _unused, ...env } = process.env
    const cmd = [process.execPath, BIN, ...args].map((x) => `'${x.replace(/'/g, `'\\''`)}'`).join(' ')
    return execFileSync('script', ['-qec', cmd, '/dev/null'], { cwd, env: { ...env, PEDIGREE_AUTHOR: AUTHOR }, encoding: 'utf8' })
  }

  it('draws blocks and bytes on a terminal, and nothing under --json', () => {
    expect(onTerminal(['bundle', 'create', join(dir, 'tty.car')], a)).toMatch(/writing [\d.]+ (B|KiB|MiB), [\d.]+ \w+\/s {2}\d+ block/)
    const json = onTerminal(['bundle', 'verify', join(dir, 'tty.car'), '--json'], a)
    expect(json).not.toMatch(/receiving|verifying/)
    expect(JSON.parse(json.replace(/\r/g, '')).ok).toBe(true)
  })
})
