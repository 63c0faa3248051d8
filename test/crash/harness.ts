import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'vitest'
import { prng } from '../helpers/random.js'
import { AUTHOR, BIN, runCli, runJson, type CliResult } from '../cli/run-cli.js'

/**
 * Kill the real CLI (SIGKILL) at random points and check what a user would check afterwards.
 *
 * Every random choice comes from one seed, printed in each test's name: set
 * PEDIGREE_CRASH_SEED to replay a failure (the data and each kill point replay, the latter as
 * the same fraction of how long the command held the store in that run's uncut calibration
 * run; where the kernel has got the process to by then may still differ). PEDIGREE_CRASH_ITERATIONS sets how many kills
 * each test makes (more for a long soak; the defaults keep each file near a minute on two
 * busy cores).
 */

export const SEED = process.env.PEDIGREE_CRASH_SEED ? Number(process.env.PEDIGREE_CRASH_SEED) : Math.floor(Math.random() * 2 ** 31)

export function iterations(fallback: number): number {
  const n = Number(process.env.PEDIGREE_CRASH_ITERATIONS)
  return Number.isSafeInteger(n) && n > 0 ? n : fallback
}

/** A seeded random source per test (its own stream, so tests replay independently). */
export function randomFor(label: string): () => number {
  let h = SEED >>> 0
  for (const ch of label) h = Math.imul(h ^ ch.charCodeAt(0), 0x9e3779b1) >>> 0
  return prng(h)
}

/** How long to let a command run before the kill: uniform in [from, to) ms. */
export function delay(rand: () => number, from: number, to: number): number {
  return Math.round(from + rand() * (to - from))
}

export interface Killed extends CliResult {
  /** True if the process was killed; false if it ended on its own before the kill point. */
  killed: boolean
  /** When the kill was due, in ms after the process had opened the store. */
  afterMs: number
  /** How long the process ran after it had opened the store (undefined if it never did). */
  openedMs?: number
}

/**
 * Run `pedigree <args>` and SIGKILL it `afterMs` ms after it has opened the store at `root`
 * (the moment it writes its pid into `root/holder.json`), so that kill points spread over the
 * work rather than over Node's start-up. No cleanup runs (no close, no flush); the LevelDB
 * lock is released only by the kernel as the process dies.
 */
export function runAndKill(args: string[], cwd: string, root: string, afterMs: number): Promise<Killed> {
  let opened: number | undefined
  const env: Record<string, string | undefined> = { ...process.env, PEDIGREE_AUTHOR: AUTHOR, NO_COLOR: '1' }
  for (const k of ['NODE_ENV', 'PEDIGREE_REPO', 'PEDIGREE_LOCK_TIMEOUT', 'PEDIGREE_DEBUG', 'FORCE_COLOR']) delete env[k]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    let killed = false
    let timer: NodeJS.Timeout | undefined
    const kill = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) return
      killed = true
      child.kill('SIGKILL')
    }
    // Watch for the holder file naming this process; a process that never opens the store is killed after two minutes.
    const deadline = setTimeout(kill, 120_000)
    const holder = join(root, 'holder.json')
    const poll = setInterval(() => {
      void readFile(holder, 'utf8').then(
        (text) => {
          if (opened !== undefined || !text.includes(`"pid":${child.pid},`)) return
          opened = Date.now()
          clearInterval(poll)
          if (Number.isFinite(afterMs)) timer = setTimeout(kill, afterMs)
        },
        () => {},
      )
    }, 2)
    const stop = (): void => {
      clearInterval(poll)
      clearTimeout(deadline)
      clearTimeout(timer)
    }
    child.on('error', (e) => {
      stop()
      reject(e)
    })
    child.on('close', (code) => {
      stop()
      const stdoutBytes = Buffer.concat(out)
      const openedMs = opened === undefined ? undefined : Date.now() - opened
      resolve({ code, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes, killed: killed && code === null, afterMs, openedMs })
    })
  })
}

/**
 * Run a command to its end (no kill), timing it from when it opened the store at `root`: the
 * span that {@link runAndKill}'s kill points are chosen in.
 */
export async function timeAfterOpen(args: string[], cwd: string, root: string): Promise<{ result: CliResult; ms: number }> {
  const r = await runAndKill(args, cwd, root, Infinity)
  expect(r.openedMs, `pedigree ${args.join(' ')} never opened ${root}`).toBeDefined()
  return { result: r, ms: r.openedMs! }
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

interface RefJson {
  name: string
  cid: string
}

/**
 * What must hold after any kill: the store opens at once (the kernel released the lock; no
 * "waiting for the store"), and `fsck` through the CLI exits 0 with no problems: every block
 * reachable from every ref and every reflog entry (each ref's whole history) is present,
 * verifies against its CID and has the shape its parent says. Returns the refs.
 */
export async function expectIntact(cwd: string, context: string): Promise<Record<string, string>> {
  const fsck = await runJson<{ ok: boolean; problems: unknown[] }>(['fsck'], { cwd, env: { PEDIGREE_LOCK_TIMEOUT: '10' } })
  expect(fsck.stderr, `${context}: fsck had to wait for the lock`).not.toContain('waiting for the store')
  expect(fsck.code, `${context}: fsck failed: ${JSON.stringify(fsck.json)}\n${fsck.stderr}`).toBe(0)
  expect(fsck.json.ok, context).toBe(true)
  expect(fsck.json.problems, context).toEqual([])
  const refs = await runJson<RefJson[]>(['ref', 'list'], { cwd })
  expect(refs.code, `${context}: ${refs.stderr}`).toBe(0)
  const out: Record<string, string> = {}
  for (const r of refs.json) out[r.name] = r.cid
  return out
}

/** The commits of `rev`, newest first (an empty list if the ref does not exist). */
export async function history(cwd: string, rev: string): Promise<{ cid: string; message: string }[]> {
  const r = await runJson<{ cid: string; message: string }[] | { error: { code: string } }>(['log', rev], { cwd })
  if (!Array.isArray(r.json)) {
    expect(r.json.error.code, `log ${rev}: ${r.stderr}`).toBe('ERR_NOT_FOUND')
    return []
  }
  expect(r.code).toBe(0)
  return r.json
}

/** Paths under `prefix` in `rev`. */
export async function paths(cwd: string, rev: string, prefix: string): Promise<string[]> {
  const r = await runJson<{ path: string }[]>(['ls', rev, prefix], { cwd })
  expect(r.code, r.stderr).toBe(0)
  return r.json.map((e) => e.path)
}

/** A short description of a kill for assertion messages (with the seed, to replay it). */
export function where(label: string, i: number, k: Killed): string {
  const text = `${label} #${i}, ${k.killed ? `killed ${k.afterMs} ms after it opened the store` : `finished (exit ${k.code}) before the kill due ${k.afterMs} ms after it opened the store`}, PEDIGREE_CRASH_SEED=${SEED}`
  // PEDIGREE_CRASH_VERBOSE=1 lists every kill (where they land, on this machine).
  if (process.env.PEDIGREE_CRASH_VERBOSE) process.stderr.write(`${text}\n`)
  return text
}
