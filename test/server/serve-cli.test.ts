import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AUTHOR, BIN, refState, removeDir, runCli, runJson, tempDir } from '../cli/run-cli.js'

/*
 * `pedigree serve` as a real process started by the CLI, with tokens made by `pedigree token
 * add`, and push/clone/pull through the CLI against it: the exit codes and JSON a script sees.
 */

let dir: string
let hub: string
let a: string
let serve: ChildProcess | undefined
let url: string
let readToken: string
let writeToken: string
const weights = Buffer.from(Array.from({ length: 1_300_000 }, (_, i) => (i * 7919) % 251))

/** Start `pedigree serve --port 0 --json` in `cwd` and read the URL from its first line. */
function startServe(cwd: string, args: string[] = []): Promise<{ child: ChildProcess; info: { url: string; port: number; store: string } }> {
  const env: Record<string, string | undefined> = { ...process.env, PEDIGREE_AUTHOR: AUTHOR }
  delete env.NODE_ENV
  delete env.PEDIGREE_REPO
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--json', ...args], { cwd, env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`serve did not start: ${out}${err}`))
    }, 30_000)
    child.stderr!.on('data', (d) => (err += d))
    child.stdout!.on('data', (d) => {
      out += d
      const nl = out.indexOf('\n')
      if (nl >= 0) {
        clearTimeout(timer)
        resolve({ child, info: JSON.parse(out.slice(0, nl)) })
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`serve exited (${code}) before listening: ${out}${err}`))
    })
  })
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)))
}

beforeAll(async () => {
  dir = await tempDir('serve')
  hub = join(dir, 'hub')
  a = join(dir, 'a')
  await mkdir(hub)
  await mkdir(a)
  expect((await runCli(['init'], { cwd: hub })).code).toBe(0)
  expect((await runCli(['init'], { cwd: a })).code).toBe(0)
  await writeFile(join(a, 'weights.bin'), weights)
  expect((await runCli(['commit', 'model/weights.bin=weights.bin', '-m', 'model'], { cwd: a })).code).toBe(0)

  const w = await runJson(['token', 'add', '--scope', 'write', '--name', 'site-a'], { cwd: hub })
  expect(w.code, w.stderr).toBe(0)
  writeToken = w.json.token
  const r = await runCli(['token', 'add', '--scope', 'read'], { cwd: hub })
  expect(r.code, r.stderr).toBe(0)
  readToken = r.stdout.trim()
  expect(r.stderr).toContain('shown only this once')
}, 60_000)

afterAll(async () => {
  if (serve && serve.exitCode === null) {
    serve.kill('SIGKILL')
    await exitOf(serve)
  }
  await removeDir(dir)
})

describe('pedigree token', () => {
  it('lists names, scopes and dates, never the secret; refuses bad input', async () => {
    const list = await runJson(['token', 'list'], { cwd: hub })
    expect(list.json.map((t: { name: string; scope: string }) => `${t.name}:${t.scope}`)).toEqual(['read-1:read', 'site-a:write'])
    expect(JSON.stringify(list.json)).not.toContain(writeToken)
    const bad = await runJson(['token', 'add', '--scope', 'admin'], { cwd: hub })
    expect(bad.code).toBe(2)
    const gone = await runJson(['token', 'remove', 'nobody'], { cwd: hub })
    expect(gone.code).toBe(3)
    expect(gone.json.error.code).toBe('ERR_NOT_FOUND')
  })
})

describe('pedigree serve', () => {
  it('serves push, clone and pull with tokens; refused pushes exit 7 and change nothing', async () => {
    const started = await startServe(hub)
    serve = started.child
    url = started.info.url
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(started.info.store).toBe(join(hub, '.pedigree'))

    expect((await runJson(['remote', 'add', 'origin', url], { cwd: a })).json).toEqual({ name: 'origin', url })
    const before = await refState(a)
    const anonymous = await runJson(['push'], { cwd: a, env: { PEDIGREE_TOKEN: undefined } })
    expect(anonymous.code).toBe(7)
    expect(anonymous.json.error.code).toBe('ERR_UNAUTHORIZED')
    const reader = await runJson(['push'], { cwd: a, env: { PEDIGREE_TOKEN: readToken } })
    expect(reader.code).toBe(7)
    expect(reader.json.error.code).toBe('ERR_FORBIDDEN')
    const wrong = await runCli(['push'], { cwd: a, env: { PEDIGREE_TOKEN: 'pdg_wrong' } })
    expect(wrong.code).toBe(7)
    expect(wrong.stderr).toContain('token is not valid')
    expect(await refState(a)).toEqual(before)
    // The hub has no main yet: the refused pushes moved nothing there.
    const res = await fetch(`${url}/v1/refs`)
    expect(await res.json()).toEqual({ refs: [] })

    const pushed = await runJson(['push'], { cwd: a, env: { PEDIGREE_TOKEN: writeToken } })
    expect(pushed.code, JSON.stringify(pushed.json)).toBe(0)
    expect(pushed.json.refs[0]).toMatchObject({ ref: 'main', old: null, status: 'created' })
    const noop = await runJson(['push'], { cwd: a, env: { PEDIGREE_TOKEN: writeToken } })
    expect(noop.json).toMatchObject({ blocks: 0, bytes: 0, roundTrips: 1 })

    // Clone (reads need no token by default): identical CIDs, byte-exact file.
    const c = join(dir, 'c')
    const cloned = await runJson(['clone', url, c], { cwd: dir })
    expect(cloned.code, JSON.stringify(cloned.json)).toBe(0)
    const main = (refs: { name: string; cid: string }[]) => refs.find((x) => x.name === 'main')?.cid
    expect(main((await runJson(['ref', 'list'], { cwd: c })).json)).toBe(main((await runJson(['ref', 'list'], { cwd: a })).json))
    const shown = await runCli(['show', 'main:model/weights.bin'], { cwd: c })
    expect(Buffer.compare(shown.stdoutBytes, weights)).toBe(0)

    // Site C commits and pushes back; site A pulls it.
    const rec = await runJson(['commit', '--record', 'runs/1.json=-', '-m', 'from c'], { cwd: c, input: '{"loss": 0.1}' })
    expect(rec.code).toBe(0)
    expect((await runJson(['push'], { cwd: c, env: { PEDIGREE_TOKEN: writeToken } })).code).toBe(0)
    const pulled = await runJson(['pull'], { cwd: a })
    expect(pulled.json).toMatchObject({ ref: 'main', status: 'fast-forward', new: rec.json.cid })

    // The read API answers too.
    const file = await fetch(`${url}/v1/show?rev=${encodeURIComponent('main:model/weights.bin')}`)
    expect(Buffer.compare(Buffer.from(await file.arrayBuffer()), weights)).toBe(0)
  })

  it('stops cleanly on SIGTERM, releasing the store; then the remote is unreachable (exit 8)', async () => {
    expect(serve).toBeDefined()
    serve!.kill('SIGTERM')
    expect(await exitOf(serve!)).toBe(0)
    // The store is free again at once.
    expect((await runCli(['token', 'list'], { cwd: hub, env: { PEDIGREE_LOCK_TIMEOUT: '0' } })).code).toBe(0)
    const before = await refState(a)
    const r = await runJson(['push'], { cwd: a, env: { PEDIGREE_TOKEN: writeToken } })
    expect(r.code).toBe(8)
    expect(r.json.error.code).toBe('ERR_UNREACHABLE')
    expect(r.json.error.message).toContain(url)
    expect(await refState(a)).toEqual(before)
  })

  it('refuses a port in use and bad flags with clear errors', async () => {
    const first = await startServe(hub)
    try {
      const busy = await runJson(['serve', '--port', String(first.info.port)], { cwd: a })
      expect(busy.code).toBe(4)
      expect(busy.json.error.message).toContain('in use')
      const bad = await runJson(['serve', '--max-body', 'lots'], { cwd: a })
      expect(bad.code).toBe(2)
    } finally {
      first.child.kill('SIGINT')
      expect(await exitOf(first.child)).toBe(0)
    }
    expect(await readFile(join(hub, '.pedigree', 'FORMAT'), 'utf8')).toContain('pedigree')
  })
})
