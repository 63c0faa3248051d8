// Small helpers shared by the bench/perf scripts (one script per performance target).
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** `--key=value` and `--flag` arguments as an object. */
export function parseArgs(argv = process.argv.slice(2)) {
  return Object.fromEntries(
    argv.map((a) => {
      const eq = a.indexOf('=')
      return eq < 0 ? [a.replace(/^--/, ''), true] : [a.slice(0, eq).replace(/^--/, ''), a.slice(eq + 1)]
    }),
  )
}

/** Where inputs and stores are kept between runs (not cleaned: building them takes a while). */
export function scratchDir() {
  const dir = process.env.PERF_SCRATCH ?? '/tmp/pedigree-perf'
  mkdirSync(dir, { recursive: true })
  return dir
}

/** The pedigree checkout to measure: this one, or `--root=DIR` (e.g. a copy of the tree before a change). */
export function targetRoot(args) {
  return args.root ? resolve(args.root) : ROOT
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

export const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')

/** Environment for timed child processes: without NODE_EXTRA_CA_CERTS, which adds ~60 ms to every Node start (STACK.md). */
export function childEnv() {
  const env = { ...process.env }
  delete env.NODE_EXTRA_CA_CERTS
  return env
}

/** Run a whole process to completion (stdout read and dropped); returns wall ms and peak RSS in MB. */
export function timeProcess(cmd, args, { cwd, env = childEnv(), input } = {}) {
  const t0 = performance.now()
  const r = spawnSync(cmd, args, { cwd, env, input, maxBuffer: 1 << 30, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
  const ms = performance.now() - t0
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}: ${String(r.stderr).slice(0, 2000)}`)
  return { ms, stdout: r.stdout, stderr: r.stderr }
}

/** CPU seconds per thread of this process (Linux /proc): the main thread as `main`, the others by id. */
export function threadCpu() {
  const out = {}
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out[tid === String(process.pid) ? 'main' : `t${tid}`] = (Number(f[11]) + Number(f[12])) / 100
    } catch {}
  }
  return out
}

/** `main 2.31, t123 0.80, …`: CPU seconds per thread since `before` (threads under 0.05 s left out). */
export function cpuSince(before) {
  return Object.entries(threadCpu())
    .map(([k, v]) => [k, v - (before[k] ?? 0)])
    .filter(([, v]) => v >= 0.05)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ')
}

export const fmt = (ms) => `${ms.toFixed(0)} ms`
export { join }
