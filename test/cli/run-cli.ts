import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, realpath, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The CLI entry point of this clone, found relative to this file (never through PATH). */
export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export const AUTHOR = 'Test <t@example.org>'

export interface CliResult {
  /** Exit code (null only if the process was killed). */
  code: number | null
  stdout: string
  stderr: string
  /** stdout exactly as written, for byte-exact comparisons. */
  stdoutBytes: Buffer
}

export interface CliOptions {
  cwd: string
  /** Written to stdin, which is then closed (stdin is always a pipe, never a terminal). */
  input?: string | Uint8Array
  /** Extra environment; a value of undefined removes the variable. */
  env?: Record<string, string | undefined>
  /** Kill the process after this long (ms), so a hang fails the test instead of stalling it. */
  timeoutMs?: number
  /** Called with stderr as it arrives (everything so far), to act while the command runs. */
  onStderr?: (soFar: string) => void
}

/**
 * Run `pedigree <args>` the way a user or a workflow script would: a real process, with
 * PEDIGREE_AUTHOR set, PEDIGREE_REPO unset and no terminal (so no progress output).
 */
export function runCli(args: string[], { cwd, input, env = {}, timeoutMs = 30_000, onStderr }: CliOptions): Promise<CliResult> {
  const childEnv: Record<string, string | undefined> = { ...process.env, PEDIGREE_AUTHOR: AUTHOR, NO_COLOR: '1' }
  // vitest sets NODE_ENV=test, which puts oclif in development mode (TypeScript lookup, warnings).
  delete childEnv.NODE_ENV
  delete childEnv.PEDIGREE_REPO
  delete childEnv.PEDIGREE_LOCK_TIMEOUT
  delete childEnv.PEDIGREE_DEBUG
  delete childEnv.FORCE_COLOR
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k]
    else childEnv[k] = v
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: childEnv as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => {
      err.push(b)
      onStderr?.(Buffer.concat(err).toString('utf8'))
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      const stdoutBytes = Buffer.concat(out)
      resolve({ code, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes })
    })
    child.stdin.on('error', () => {}) // the CLI may exit without reading its stdin
    child.stdin.end(input ?? '')
  })
}

/** Run and parse stdout as one JSON document (fails with the output when it is not JSON). */
export async function runJson<T = any>(args: string[], options: CliOptions): Promise<{ code: number | null; json: T; stderr: string }> {
  const r = await runCli([...args, '--json'], options)
  let json: T
  try {
    json = JSON.parse(r.stdout) as T
  } catch {
    throw new Error(`stdout of 'pedigree ${args.join(' ')} --json' is not JSON (exit ${r.code}):\n${r.stdout}\nstderr:\n${r.stderr}`)
  }
  return { code: r.code, json, stderr: r.stderr }
}

/** A fresh directory (real path, so it compares equal to what the CLI prints). */
export async function tempDir(label: string): Promise<string> {
  return realpath(await mkdtemp(join(tmpdir(), `pedigree-cli-${label}-`)))
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true })
}

/** True if `dir` or one of its parents holds a store (a stray one would break "no store" tests). */
export function storeAbove(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, '.pedigree', 'FORMAT'))) return true
    if (dirname(d) === d) return false
  }
}

/** What a user checks to see that nothing moved: every ref, and main's reflog. */
export async function refState(cwd: string): Promise<{ refs: string; reflog: string }> {
  const refs = await runCli(['ref', 'list', '--json'], { cwd })
  const reflog = await runCli(['reflog', 'main', '--json'], { cwd })
  if (refs.code !== 0 || reflog.code !== 0) throw new Error(`cannot read the ref state in ${cwd}: ${refs.stderr}${reflog.stderr}`)
  return { refs: refs.stdout, reflog: reflog.stdout }
}
