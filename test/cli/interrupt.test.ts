import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { AUTHOR, T0, levelRepo, type RepoFixture } from '../repo/fixture.js'
import { BIN, runCli } from './run-cli.js'

// A checkout writes each file under a temporary name and renames it when whole. Interrupted,
// it must not leave that temporary file (a partial multi-GB checkpoint) behind.

const MiB = 1024 * 1024
// vitest sets NODE_ENV=test, which puts oclif in development mode (it then warns on stderr).
const { NODE_ENV: _unused, ...cliEnv } = process.env

/** A process id that no process has now: a child that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''])
  await new Promise((resolve) => child.on('close', resolve))
  return child.pid!
}

describe('an interrupted checkout', () => {
  let fx: RepoFixture
  beforeEach(async () => {
    fx = await levelRepo()
    // 256 MiB of random bytes: long enough to write that the interrupt lands mid-file.
    async function* bytes(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 256; i++) yield randomBytes(MiB)
    }
    await fx.repo.commit({ ref: 'main', author: AUTHOR, time: T0, message: 'weights', edits: [{ type: 'stream', path: 'model/weights.bin', stream: bytes() }] })
    await fx.repo.close()
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  it('Ctrl-C mid-file: the process ends by SIGINT, and neither the temporary file nor a partial file is left', { timeout: 120_000 }, async () => {
    const out = join(fx.dir, 'out')
    const temp = join(out, 'model', `weights.bin.pedigree-tmp-`)
    const child = spawn(process.execPath, [BIN, 'checkout', 'main', '-o', out], { cwd: fx.dir, env: cliEnv, stdio: 'ignore' })
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
    // Wait until its temporary file exists, then interrupt.
    const name = `${temp}${child.pid}`
    const deadline = Date.now() + 60_000
    while (!existsSync(name) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2))
    expect(existsSync(name)).toBe(true)
    child.kill('SIGINT')
    const { signal } = await ended
    expect(signal).toBe('SIGINT')
    expect(await readdir(join(out, 'model'))).toEqual([])
  })

  it('a reader that stops early (`show … | head -c 10`): the process ends quietly with 0, no EPIPE error', { timeout: 60_000 }, async () => {
    const child = spawn(process.execPath, [BIN, 'show', 'main:model/weights.bin'], { cwd: fx.dir, env: cliEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    const ended = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
    child.stdout.destroy()
    expect(await ended).toBe(0)
    expect(stderr).toBe('')
  })

  it('a temporary file left by a checkout killed outright is removed by the next one; one of a running process is left alone', { timeout: 120_000 }, async () => {
    const out = join(fx.dir, 'out')
    const dir = join(out, 'model')
    await mkdir(dir, { recursive: true })
    const stale = join(dir, `weights.bin.pedigree-tmp-${await deadPid()}`)
    const live = join(dir, `other.bin.pedigree-tmp-${process.pid}`)
    await writeFile(stale, randomBytes(1000))
    await writeFile(live, randomBytes(1000))
    const r = await runCli(['checkout', 'main', '-o', out], { cwd: fx.dir, timeoutMs: 60_000 })
    expect(r.code, r.stderr).toBe(0)
    expect((await readdir(dir)).sort()).toEqual([`other.bin.pedigree-tmp-${process.pid}`, 'weights.bin'])
  })
})
