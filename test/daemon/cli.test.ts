import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AUTHOR, BIN, removeDir, runCli, runJson, tempDir } from '../cli/run-cli.js'
import { seededBytes } from '../store/fixture.js'

/*
 * `pedigree daemon` and `pedigree serve` as real processes, and ordinary CLI commands beside
 * them. Every command here runs with PEDIGREE_LOCK_TIMEOUT=0: had it opened LevelDB itself
 * (held by the daemon), it would fail at once with exit 6 instead of going through the daemon.
 */

const NO_WAIT = { PEDIGREE_LOCK_TIMEOUT: '0' }

interface Started<T> {
  child: ChildProcess
  info: T
  stderr: () => string
}

/** Start `pedigree <args> --json` in `cwd` and read its first stdout line (where it listens). */
function startListening<T>(args: string[], cwd: string): Promise<Started<T>> {
  const env: Record<string, string | undefined> = { ...process.env, PEDIGREE_AUTHOR: AUTHOR }
  delete env.NODE_ENV
  delete env.PEDIGREE_REPO
  const child = spawn(process.execPath, [BIN, ...args, '--json'], { cwd, env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${args[0]} did not start: ${out}${err}`))
    }, 30_000)
    child.stdout!.on('data', (d) => {
      out += d
      const nl = out.indexOf('\n')
      if (nl >= 0) {
        clearTimeout(timer)
        resolve({ child, info: JSON.parse(out.slice(0, nl)) as T, stderr: () => err })
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${args[0]} exited (${code}) before listening: ${out}${err}`))
    })
  })
}

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)))
}

let dir: string
const children: ChildProcess[] = []

beforeAll(async () => {
  dir = await tempDir('daemon')
})

afterAll(async () => {
  for (const c of children) {
    if (c.exitCode === null) {
      c.kill('SIGKILL')
      await exitOf(c)
    }
  }
  await removeDir(dir)
})

describe('pedigree daemon', { timeout: 240_000 }, () => {
  let work: string
  let root: string
  let daemon: Started<{ socket: string; store: string; pid: number }>

  beforeAll(async () => {
    work = join(dir, 'work')
    root = join(work, '.pedigree')
    await mkdir(work)
    expect((await runCli(['init'], { cwd: work })).code).toBe(0)
    daemon = await startListening(['daemon'], work)
    children.push(daemon.child)
  }, 60_000)

  it('announces where it listens, in its JSON line and in DAEMON; the socket is the owner\'s only', async () => {
    expect(daemon.info).toEqual({ socket: join(root, 'daemon.sock'), store: root, pid: daemon.child.pid })
    const announced = JSON.parse(await readFile(join(root, 'DAEMON'), 'utf8'))
    expect(announced).toMatchObject({ pid: daemon.child.pid, host: hostname(), socket: daemon.info.socket, what: 'pedigree daemon' })
    expect((await stat(daemon.info.socket)).mode & 0o777).toBe(0o600)
  })

  it('commit, log, show, checkout and token add run beside it, without waiting for the store', async () => {
    await writeFile(join(work, 'config.yaml'), 'lr: 0.001\n')
    const c1 = await runJson(['commit', 'configs/train.yaml=config.yaml', '--record', 'runs/1.json=-', '-m', 'first run'], { cwd: work, env: NO_WAIT, input: '{"loss": 0.31}' })
    expect(c1.code, c1.stderr).toBe(0)
    expect(c1.stderr).not.toContain('waiting for the store')
    const c2 = await runJson(['commit', '--record', 'runs/2.json=-', '-m', 'second run'], { cwd: work, env: NO_WAIT, input: '{"loss": 0.27}' })
    expect(c2.code, c2.stderr).toBe(0)

    const log = await runJson<{ cid: string; message: string }[]>(['log'], { cwd: work, env: NO_WAIT })
    expect(log.code).toBe(0)
    expect(log.json.map((e) => [e.cid, e.message])).toEqual([
      [c2.json.cid, 'second run'],
      [c1.json.cid, 'first run'],
    ])
    const shown = await runCli(['show', 'main:configs/train.yaml'], { cwd: work, env: NO_WAIT })
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toBe('lr: 0.001\n')
    const record = await runJson(['show', 'main:runs/2.json'], { cwd: work, env: NO_WAIT })
    expect(record.json).toMatchObject({ type: 'record', path: 'runs/2.json', value: { loss: 0.27 } })

    const out = join(dir, 'checkout-small')
    const co = await runCli(['checkout', 'main', '-o', out], { cwd: work, env: NO_WAIT })
    expect(co.code, co.stderr).toBe(0)
    expect(await readFile(join(out, 'configs/train.yaml'), 'utf8')).toBe('lr: 0.001\n')
    expect(JSON.parse(await readFile(join(out, 'runs/1.json'), 'utf8'))).toEqual({ loss: 0.31 })

    const token = await runJson(['token', 'add', '--scope', 'write', '--name', 'pipeline'], { cwd: work, env: NO_WAIT })
    expect(token.code, token.stderr).toBe(0)
    expect(token.json.token).toMatch(/^pdg_/)
    const list = await runJson<{ name: string }[]>(['token', 'list'], { cwd: work, env: NO_WAIT })
    expect(list.json.map((t) => t.name)).toEqual(['pipeline'])
  })

  it('commits a large file (several chunks) through it and checks it out byte-exact', async () => {
    const big = Buffer.from(seededBytes(42, 6 * 1024 * 1024 + 12345))
    await writeFile(join(work, 'weights.bin'), big)
    const c = await runJson(['commit', 'model/weights.bin=weights.bin', '-m', 'weights'], { cwd: work, env: NO_WAIT, timeoutMs: 120_000 })
    expect(c.code, c.stderr).toBe(0)
    const out = join(dir, 'checkout-big')
    const co = await runCli(['checkout', 'main', 'model/', '-o', out], { cwd: work, env: NO_WAIT, timeoutMs: 120_000 })
    expect(co.code, co.stderr).toBe(0)
    expect(Buffer.compare(await readFile(join(out, 'model/weights.bin')), big)).toBe(0)
    const shown = await runCli(['show', 'main:model/weights.bin'], { cwd: work, env: NO_WAIT, timeoutMs: 120_000 })
    expect(Buffer.compare(shown.stdoutBytes, big)).toBe(0)
  })

  it('16 concurrent writers x 3 commits to one ref all land; fsck is clean', async () => {
    const before = (await runJson<unknown[]>(['log'], { cwd: work, env: NO_WAIT })).json.length
    const writers = 16
    const commits = 3
    const outcomes: { w: number; i: number; code: number | null; cid?: string; stderr: string }[] = []
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; i < commits; i++) {
          const r = await runJson(['commit', '-b', 'main', '-m', `writer ${w} commit ${i}`, '--record', `writers/${w}/${i}.json=-`], {
            cwd: work,
            env: NO_WAIT,
            input: JSON.stringify({ w, i }),
            timeoutMs: 180_000,
          })
          outcomes.push({ w, i, code: r.code, cid: r.json.cid, stderr: r.stderr })
        }
      }),
    )
    for (const o of outcomes) expect(o.code, `writer ${o.w} commit ${o.i}: ${o.stderr}`).toBe(0)
    const log = await runJson<{ cid: string }[]>(['log'], { cwd: work, env: NO_WAIT })
    expect(log.json).toHaveLength(before + writers * commits)
    const inHistory = new Set(log.json.map((e) => e.cid))
    for (const o of outcomes) expect(inHistory.has(o.cid!)).toBe(true)
    const ls = await runJson<{ path: string }[]>(['ls', 'main', 'writers/'], { cwd: work, env: NO_WAIT })
    expect(ls.json).toHaveLength(writers * commits)
    const fsck = await runCli(['fsck'], { cwd: work, env: NO_WAIT, timeoutMs: 120_000 })
    expect(fsck.code, fsck.stderr).toBe(0)
  })

  it('a second daemon on the same store is refused, naming the first', async () => {
    const second = await runJson(['daemon'], { cwd: work, env: NO_WAIT })
    expect(second.code).toBe(4)
    expect(second.json.error.code).toBe('ERR_EXISTS')
    expect(second.json.error.message).toContain(`pid ${daemon.child.pid}`)
  })

  it('SIGTERM: DAEMON and the socket go, it exits 0, and the next command opens the store itself', async () => {
    daemon.child.kill('SIGTERM')
    expect(await exitOf(daemon.child)).toBe(0)
    expect(existsSync(join(root, 'DAEMON'))).toBe(false)
    expect(existsSync(daemon.info.socket)).toBe(false)
    const log = await runJson<unknown[]>(['log'], { cwd: work, env: NO_WAIT })
    expect(log.code, log.stderr).toBe(0)
    expect(log.json.length).toBeGreaterThan(48)
  })

  it('a stale DAEMON file (its process dead, no socket) is ignored', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
    await writeFile(join(root, 'DAEMON'), JSON.stringify({ pid: Number(dead.stdout), host: hostname(), socket: join(root, 'daemon.sock'), since: new Date().toISOString(), what: 'pedigree daemon' }))
    const r = await runJson(['commit', '--record', 'runs/3.json=-', '-m', 'after a crash'], { cwd: work, env: NO_WAIT, input: '{"loss": 0.2}' })
    expect(r.code, r.stderr).toBe(0)
    // A new daemon replaces the stale announcement and serves again.
    const again = await startListening<{ socket: string; pid: number }>(['daemon'], work)
    children.push(again.child)
    expect(JSON.parse(await readFile(join(root, 'DAEMON'), 'utf8')).pid).toBe(again.child.pid)
    const shown = await runJson(['show', 'main:runs/3.json'], { cwd: work, env: NO_WAIT })
    expect(shown.json).toMatchObject({ path: 'runs/3.json', value: { loss: 0.2 } })
    again.child.kill('SIGINT')
    expect(await exitOf(again.child)).toBe(0)
  })
})

describe('pedigree serve beside local commands', { timeout: 120_000 }, () => {
  it('token add from another process while serve runs; the server accepts the new token for a push', async () => {
    const hub = join(dir, 'hub')
    const site = join(dir, 'site')
    await mkdir(hub)
    await mkdir(site)
    expect((await runCli(['init'], { cwd: hub })).code).toBe(0)
    expect((await runCli(['init'], { cwd: site })).code).toBe(0)
    expect((await runJson(['commit', '--record', 'runs/1.json=-', '-m', 'at the site'], { cwd: site, input: '{"loss": 0.4}' })).code).toBe(0)

    const serve = await startListening<{ url: string; socket: string; store: string }>(['serve', '--port', '0'], hub)
    children.push(serve.child)
    expect(serve.info.socket).toBe(join(hub, '.pedigree', 'daemon.sock'))
    const token = await runJson(['token', 'add', '--scope', 'write', '--name', 'site'], { cwd: hub, env: NO_WAIT })
    expect(token.code, token.stderr).toBe(0)

    expect((await runJson(['remote', 'add', 'hub', serve.info.url], { cwd: site })).code).toBe(0)
    const pushed = await runJson(['push', 'hub'], { cwd: site, env: { PEDIGREE_TOKEN: token.json.token } })
    expect(pushed.code, JSON.stringify(pushed.json)).toBe(0)
    // And a local command on the hub sees what arrived over HTTP.
    const log = await runJson<{ message: string }[]>(['log'], { cwd: hub, env: NO_WAIT })
    expect(log.json.map((e) => e.message)).toEqual(['at the site'])

    serve.child.kill('SIGTERM')
    expect(await exitOf(serve.child)).toBe(0)
    expect(existsSync(join(hub, '.pedigree', 'DAEMON'))).toBe(false)
    expect(existsSync(serve.info.socket)).toBe(false)
  })

  it('a serve started beside a daemon takes the store over when the daemon stops: same URL, answers again, serves local processes itself', async () => {
    const store = join(dir, 'taken')
    await mkdir(store)
    expect((await runCli(['init'], { cwd: store })).code).toBe(0)
    expect((await runJson(['commit', '--record', 'runs/1.json=-', '-m', 'one'], { cwd: store, input: '{"loss": 0.4}' })).code).toBe(0)
    const daemon = await startListening<{ socket: string; pid: number }>(['daemon'], store)
    children.push(daemon.child)
    const serve = await startListening<{ url: string; socket?: string }>(['serve', '--port', '0'], store)
    children.push(serve.child)
    expect(serve.info.socket).toBeUndefined() // a client of the daemon
    const refs = async (): Promise<{ status: number; body: string }> => {
      const res = await fetch(`${serve.info.url}/v1/refs`)
      return { status: res.status, body: await res.text() }
    }
    expect((await refs()).status).toBe(200)

    daemon.child.kill('SIGTERM')
    expect(await exitOf(daemon.child)).toBe(0)
    // Within a few seconds the server holds the store itself and announces it to local processes.
    const deadline = Date.now() + 20_000
    let announced: { pid?: number; what?: string } = {}
    while (Date.now() < deadline) {
      announced = await readFile(join(store, '.pedigree', 'DAEMON'), 'utf8').then((t) => JSON.parse(t), () => ({}))
      if (announced.pid === serve.child.pid) break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(announced).toMatchObject({ pid: serve.child.pid, what: 'pedigree serve' })
    const after = await refs()
    expect(after.status, after.body).toBe(200)
    expect(JSON.parse(after.body).refs.map((r: { name: string }) => r.name)).toEqual(['main'])
    const c = await runJson(['commit', '--record', 'runs/2.json=-', '-m', 'two'], { cwd: store, env: NO_WAIT, input: '{"loss": 0.3}' })
    expect(c.code, c.stderr).toBe(0)
    expect(serve.child.exitCode).toBeNull()

    serve.child.kill('SIGTERM')
    expect(await exitOf(serve.child)).toBe(0)
    expect(existsSync(join(store, '.pedigree', 'DAEMON'))).toBe(false)
  })
})
