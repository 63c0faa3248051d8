// Shared helpers for the benchmarks: timing, temp dirs, git, deterministic data.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'

export const now = () => process.hrtime.bigint()
export const msSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e6

export function median(values) {
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export const fmtMs = (ms) => (ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(2)} ms`)
export const fmtRate = (perSec) => `${Math.round(perSec).toLocaleString('en-US')}/s`
export const fmtInt = (n) => Math.round(n).toLocaleString('en-US')

// ---------------------------------------------------------------------------------
// Temp dirs, removed at exit (also on Ctrl-C).

const tempDirs = new Set()
export function tempDir(label) {
  const dir = mkdtempSync(join(tmpdir(), `pedigree-bench-${label}-`))
  tempDirs.add(dir)
  return dir
}
export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true })
  tempDirs.delete(dir)
}
export function cleanupAll() {
  for (const d of [...tempDirs]) removeDir(d)
}
process.on('exit', cleanupAll)
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanupAll()
    process.exit(130)
  })
}

// ---------------------------------------------------------------------------------
// Processes

/** Environment for timed child processes: no NODE_EXTRA_CA_CERTS (adds ~60 ms to Node start-up, see STACK.md). */
export function childEnv(extra = {}) {
  const env = { ...process.env, ...extra }
  delete env.NODE_EXTRA_CA_CERTS
  return env
}

/** git with no user/system config, so "default" means git's built-in defaults. */
export function gitEnv(extra = {}) {
  const env = childEnv()
  for (const k of Object.keys(env)) if (k.startsWith('GIT_')) delete env[k]
  delete env.GLIBC_TUNABLES
  return { ...env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0', ...extra }
}

/**
 * malloc settings for git. `stack` is the string STACK.md gives, verbatim. glibc (2.36 here)
 * takes tunable values as plain numbers and needs the full name of each tunable, so that
 * string does not set what it means to (`64M` is not read as 64 MiB; `trim_threshold` without
 * its `glibc.malloc.` prefix is ignored); `numeric` says the same thing in a form glibc reads.
 * The benchmark runs git under each and reports the best as the peer.
 */
export const GIT_MALLOC = {
  default: undefined,
  stack: 'glibc.malloc.top_pad=64M:trim_threshold=128M',
  numeric: 'glibc.malloc.top_pad=67108864:glibc.malloc.trim_threshold=134217728',
}
export const MALLOC_LABEL = {
  default: 'default malloc',
  stack: '`GLIBC_TUNABLES=glibc.malloc.top_pad=64M:trim_threshold=128M` (STACK.md, verbatim)',
  numeric: '`GLIBC_TUNABLES=glibc.malloc.top_pad=67108864:glibc.malloc.trim_threshold=134217728` (the same, in a form glibc reads)',
}
export const mallocEnv = (variant) => (GIT_MALLOC[variant] ? { GLIBC_TUNABLES: GIT_MALLOC[variant] } : {})

/** Run a command; throws with its stderr on failure. Returns { ms, stdout }. */
export function run(cmd, args, { cwd, env, input, maxBuffer = 1 << 30 } = {}) {
  const t0 = now()
  const r = spawnSync(cmd, args, { cwd, env, input, maxBuffer, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
  const ms = msSince(t0)
  if (r.error) throw r.error
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}: ${String(r.stderr).slice(0, 2000)}`)
  }
  return { ms, stdout: r.stdout, stderr: r.stderr }
}

export function git(cwd, args, opts = {}) {
  return run('git', args, { cwd, env: gitEnv(opts.env), input: opts.input, maxBuffer: opts.maxBuffer })
}

export function gitInit(dir) {
  git(dir, ['init', '-q', '-b', 'main', '.'])
}

// ---------------------------------------------------------------------------------
// Machine

export function machine() {
  const gv = spawnSync('git', ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/^git version /, '')
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGiB: totalmem() / 2 ** 30,
    node: process.version,
    git: gv,
    platform: `${process.platform} ${process.arch}`,
  }
}

// ---------------------------------------------------------------------------------
// Deterministic data

/** mulberry32: a small seeded PRNG, so every run commits the same bytes. */
export function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `k` distinct integers in [0, n), in increasing order. */
export function pickDistinct(rand, n, k) {
  const set = new Set()
  while (set.size < k) set.add(Math.floor(rand() * n))
  return [...set].sort((a, b) => a - b)
}

const STATUSES = ['completed', 'completed', 'completed', 'completed', 'failed', 'cancelled']
const OPTIMIZERS = ['adamw', 'sgd', 'adam', 'lamb']
const HOSTS = ['polaris', 'perlmutter', 'frontier', 'aps-bl7']
const round = (x, digits) => Number(x.toFixed(digits))

/** A realistic task record, ~300 bytes as JSON. */
export function taskRecord(rand, wf, task, t0 = Date.UTC(2026, 10, 22, 8, 0, 0)) {
  const start = t0 + Math.floor(rand() * 86_400_000)
  const end = start + 1000 + Math.floor(rand() * 3_600_000)
  return {
    task_id: `${wf}-t${String(task).padStart(6, '0')}`,
    workflow_id: wf,
    status: STATUSES[Math.floor(rand() * STATUSES.length)],
    started_at: new Date(start).toISOString(),
    ended_at: new Date(end).toISOString(),
    metrics: { loss: round(rand() * 2, 6), acc: round(0.5 + rand() * 0.5, 6) },
    hyperparameters: {
      learning_rate: round(10 ** (-5 + rand() * 3), 8),
      batch_size: 2 ** (4 + Math.floor(rand() * 5)),
      epochs: 10 + Math.floor(rand() * 90),
      optimizer: OPTIMIZERS[Math.floor(rand() * OPTIMIZERS.length)],
      dropout: round(rand() * 0.5, 3),
    },
    host: `nid${String(Math.floor(rand() * 10000)).padStart(6, '0')}.${HOSTS[Math.floor(rand() * HOSTS.length)]}`,
  }
}

// ---------------------------------------------------------------------------------
// git fast-import streams

const enc = new TextEncoder()

/** Builds a fast-import stream in memory as a list of Buffers. */
export class FastImport {
  parts = []
  mark = 0
  text(s) {
    this.parts.push(Buffer.from(s, 'utf8'))
  }
  /** A blob; returns its mark. */
  blob(content) {
    const bytes = typeof content === 'string' ? enc.encode(content) : content
    const m = ++this.mark
    this.parts.push(Buffer.from(`blob\nmark :${m}\ndata ${bytes.length}\n`), bytes, Buffer.from('\n'))
    return m
  }
  /** A commit on `ref` with `M` lines for [path, blobMark] pairs (and more parents in `merges`); returns its mark. */
  commit(ref, { from, merges = [], message, time, files }) {
    const m = ++this.mark
    const msg = enc.encode(message)
    let head = `commit ${ref}\nmark :${m}\ncommitter bench <bench@example.org> ${Math.floor(time / 1000)} +0000\ndata ${msg.length}\n`
    this.parts.push(Buffer.from(head), msg, Buffer.from('\n'))
    if (from) this.text(`from ${from}\n`)
    for (const m of merges) this.text(`merge ${m}\n`)
    // Join M lines in slices so the stream is built without millions of tiny Buffers.
    const lines = []
    for (const [path, mark] of files) {
      lines.push(`M 100644 :${mark} ${path}\n`)
      if (lines.length >= 8192) this.text(lines.splice(0).join(''))
    }
    this.text(lines.join('') + '\n')
    return m
  }
  toBuffer() {
    this.text('done\n')
    return Buffer.concat(this.parts)
  }
}

/** `git fast-import` of a stream into the repo at `dir` (untimed setup; see timeJobs for timing). */
export function fastImport(dir, stream, { malloc = 'numeric' } = {}) {
  return git(dir, ['fast-import', '--quiet', '--done'], { input: stream, env: mallocEnv(malloc) }).ms
}

const TIMER = new URL('./timer.mjs', import.meta.url).pathname

/**
 * Time whole processes from a fresh, small Node process (bench/timer.mjs), so the size of
 * this process's heap does not add fork cost to the numbers. Returns { times, stdout }.
 */
export function timeJobs(jobs, { runs, warmup = 1, interleave = true }) {
  const r = spawnSync(process.execPath, [TIMER], {
    input: JSON.stringify({ jobs, runs, warmup, interleave }),
    env: childEnv(),
    maxBuffer: 1 << 30,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  if (r.status !== 0) throw new Error(`timer failed: ${String(r.stderr).slice(0, 2000)}`)
  return JSON.parse(r.stdout.toString('utf8'))
}

/** A timer job running git with the benchmark's git environment. */
export const gitJob = (name, cwd, args, { malloc = 'default', inputFile, pre } = {}) => ({
  name,
  cmd: 'git',
  args,
  cwd,
  env: gitEnv(mallocEnv(malloc)),
  inputFile,
  pre,
})
