import { spawn } from 'node:child_process'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Repository } from '../../src/repo/repository.js'
import { startServer, type RunningServer } from '../../src/server/server.js'
import { pseudoRandom } from '../helpers/random.js'
import { AUTHOR as WHO } from '../repo/fixture.js'
import { AUTHOR, BIN, removeDir, runCli, runJson, tempDir } from './run-cli.js'

/*
 * `pedigree clone` as a user runs it: interrupted half-way (Ctrl-C, SIGTERM) and run again,
 * and pointed at places that cannot hold a store.
 */

const MiB = 1024 * 1024
/** Past one write batch of the receiver (8 MiB), short of the whole file. */
const STALL_AT = 14 * MiB
let dir: string
let hub: Repository
let server: RunningServer
let stall: Server
/** A proxy in front of the server whose block answers stop after a few MiB (a link that hangs). */
let stallingUrl: string
let sentByStall = 0
const upstream = new Set<{ destroy(): void }>()
const weights = Buffer.from(pseudoRandom(7, 24 * MiB))

beforeAll(async () => {
  dir = await tempDir('clone')
  hub = await Repository.init(join(dir, 'hub', '.pedigree'))
  await hub.commit({ ref: 'main', author: WHO, message: 'weights', edits: [{ type: 'bytes', path: 'model/weights.bin', bytes: weights }] })
  server = await startServer(hub, { port: 0 })
  stall = createServer((req, res) => {
    const up = request(new URL(req.url!, server.url), { method: req.method, headers: req.headers }, (answer) => {
      upstream.add(answer)
      res.writeHead(answer.statusCode!, answer.headers)
      const holds = req.url!.includes('sync/get')
      answer.on('data', (chunk: Buffer) => {
        if (holds && sentByStall > STALL_AT) return answer.pause() // hang: never more, never the end
        if (holds) sentByStall += chunk.length
        if (!res.write(chunk)) {
          answer.pause()
          res.once('drain', () => answer.resume())
        }
      })
      answer.on('end', () => res.end())
    })
    req.pipe(up)
  })
  await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r))
  stallingUrl = `http://127.0.0.1:${(stall.address() as AddressInfo).port}`
}, 60_000)

afterAll(async () => {
  for (const u of upstream) u.destroy()
  stall?.closeAllConnections()
  await new Promise((r) => stall?.close(r))
  await server?.close()
  await hub?.close()
  await removeDir(dir)
})

/** Start a clone from `url` into `target`, interrupt it with `signal` once the stalling proxy has sent a few MiB. */
async function interruptedClone(url: string, target: string, signal: NodeJS.Signals): Promise<{ signal: NodeJS.Signals | null; stderr: string }> {
  sentByStall = 0
  const env: Record<string, string | undefined> = { ...process.env, PEDIGREE_AUTHOR: AUTHOR }
  delete env.NODE_ENV
  delete env.PEDIGREE_REPO
  const child = spawn(process.execPath, [BIN, 'clone', url, target], { cwd: dir, env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr += d))
  const ended = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, s) => resolve(s)))
  // Interrupt once it has stored a part of the file (its store's files hold more than a write batch).
  const deadline = Date.now() + 40_000
  while ((await sizeOf(join(dir, target, '.pedigree'))) < 8 * MiB && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  expect(await sizeOf(join(dir, target, '.pedigree'))).toBeGreaterThanOrEqual(8 * MiB)
  await new Promise((r) => setTimeout(r, 300)) // let its write finish
  child.kill(signal)
  return { signal: await ended, stderr }
}

/** Bytes in the files of a folder and its subfolders (0 if it is not there). */
async function sizeOf(folder: string): Promise<number> {
  let total = 0
  for (const e of await readdir(folder, { withFileTypes: true }).catch(() => [])) {
    const path = join(folder, e.name)
    if (e.isDirectory()) total += await sizeOf(path)
    else if (e.isFile()) total += (await stat(path).catch(() => ({ size: 0 }))).size
  }
  return total
}

describe('an interrupted clone', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} mid-transfer: it says how to resume; running the same clone again resumes it and ends byte-exact`, { timeout: 120_000 }, async () => {
      const target = `kc-${signal}`
      const first = await interruptedClone(stallingUrl, target, signal)
      expect(first.signal).toBe(signal)
      expect(first.stderr).toContain('clone interrupted; run the same `pedigree clone` again to resume it')
      expect(existsSync(join(dir, target, '.pedigree'))).toBe(true)

      // The same URL again (the proxy passes everything now): resumed, not refused.
      sentByStall = -Infinity
      const again = await runJson(['clone', stallingUrl, target], { cwd: dir, timeoutMs: 60_000 })
      expect(again.code, again.stderr).toBe(0)
      expect(again.json.resumed).toBe(true)
      expect(again.json.bytes).toBeLessThan(weights.length - 4 * MiB) // what the first run received was not fetched again
      const out = join(dir, `${target}-out`)
      const co = await runCli(['checkout', 'main', '-o', out, '--repo', join(dir, target)], { cwd: dir })
      expect(co.code, co.stderr).toBe(0)
      expect(Buffer.compare(await readFile(join(out, 'model', 'weights.bin')), weights)).toBe(0)

      // Done: a third clone into it is refused, saying why.
      const third = await runCli(['clone', stallingUrl, target], { cwd: dir })
      expect(third.code).toBe(4)
      expect(third.stderr).toContain('a store with refs is there')
    })
  }

  it('a store left by a clone of another URL is not resumed from this one', { timeout: 60_000 }, async () => {
    const target = 'kc-other'
    const first = await interruptedClone(stallingUrl, target, 'SIGINT')
    expect(first.signal).toBe('SIGINT')
    const other = await runCli(['clone', server.url, target], { cwd: dir })
    expect(other.code).toBe(4)
    expect(other.stderr).toContain(`it is a clone of ${stallingUrl}`)
  })
})

describe('clone into a place that cannot hold a store', () => {
  it('a file, a path through a file, a dangling symbolic link: exit 2 with a clear message, nothing made, nothing removed', async () => {
    await writeFile(join(dir, 'afile'), 'x')
    await symlink(join(dir, 'nowhere'), join(dir, 'dangling'))
    await mkdir(join(dir, 'parent'))
    await writeFile(join(dir, 'parent', 'f'), 'x')
    const cases: [string[], string][] = [
      [['afile'], `${join(dir, 'afile')} is a file, not a folder`],
      [['afile/sub'], `${join(dir, 'afile')} is a file, not a folder`],
      [['dangling/out'], `${join(dir, 'dangling')} is a symbolic link to nothing`],
      [['dangling'], `${join(dir, 'dangling')} is a symbolic link to nothing`],
      [['--repo', 'parent/f'], `${join(dir, 'parent', 'f')}: it is a file, not a folder`],
    ]
    for (const [args, message] of cases) {
      const r = await runCli(['clone', server.url, ...args], { cwd: dir })
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toContain(message)
      expect(r.stderr).not.toContain('ENOTDIR')
    }
    expect(await readFile(join(dir, 'afile'), 'utf8')).toBe('x')
    expect(existsSync(join(dir, 'nowhere'))).toBe(false)
  })
})
