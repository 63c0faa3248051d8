#!/usr/bin/env node
// Target 3: `pedigree log -n 20` on a 10k-commit history, whole process, against `pedigree
// --version` (a minimal oclif command) and `node -e 0`. Runs of the three commands are
// interleaved so that load drift hits them alike; the first round only warms caches.
//
//   node bench/perf/log.mjs [--commits=10000] [--runs=15] [--root=DIR] [--compare=DIR]
//
// Besides wall time, each process's CPU time (user + system, all its threads, as getrusage gives
// it at exit) is reported: on this shared 2-core machine it moves far less with the load than
// wall time does. A preloaded hook writes it to fd 3 when the process exits; the hook costs every
// process measured the same (~0.3 ms) and is not in `node -e 0`'s number. Medians and minimums.
//
// The history (one repo.commit per record, 1000 paths in turn) is built once with this
// checkout's dist/ under $PERF_SCRATCH and reused.
import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { prng, taskRecord } from '../lib.mjs'
import { ROOT, childEnv, fmt, join, load, median, parseArgs, scratchDir, targetRoot } from './util.mjs'

const args = parseArgs()
const commits = Number(args.commits ?? 10_000)
const runs = Number(args.runs ?? 15)
const roots = [targetRoot(args), ...(args.compare ? [targetRoot({ root: args.compare })] : [])]
const store = join(scratchDir(), `log-${commits}`, '.pedigree')

if (!existsSync(join(store, 'FORMAT'))) {
  const { Repository } = await import(pathToFileURL(join(ROOT, 'dist/index.js')).href)
  const t0 = performance.now()
  const repo = await Repository.init(store)
  const rand = prng(3)
  const time = Date.UTC(2026, 10, 22, 12, 0, 0)
  for (let i = 0; i < commits; i++) {
    const value = taskRecord(rand, 'wf-0001', i)
    await repo.commit({
      ref: 'main',
      edits: [{ type: 'record', path: `tasks/${String(i % 1000).padStart(4, '0')}.json`, value }],
      message: `task ${value.task_id}: ${value.status}`,
      author: { name: 'bench', email: 'bench@example.org' },
      time: time + i * 1000,
    })
  }
  await repo.close()
  console.log(`built ${store} (${commits} commits) in ${fmt(performance.now() - t0)}`)
}

const cpuHook = join(scratchDir(), 'cpu-at-exit.cjs')
writeFileSync(cpuHook, "process.on('exit', () => { const u = process.cpuUsage(); try { require('node:fs').writeSync(3, String((u.user + u.system) / 1000)) } catch {} })\n")

/** Run a process to completion: wall ms, CPU ms (all threads, from the exit hook) and stdout. */
function run(argv) {
  const t0 = performance.now()
  const r = spawnSync(process.execPath, ['-r', cpuHook, ...argv], { env: childEnv(), maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] })
  const ms = performance.now() - t0
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited with ${r.status ?? r.signal}: ${String(r.stderr).slice(0, 2000)}`)
  return { ms, cpu: Number(String(r.output[3])), stdout: r.stdout }
}

console.log(`log -n 20 over ${commits} commits, ${runs} runs; load at start ${load()}`)
const times = new Map()
const add = (k, { ms, cpu }) => {
  const t = times.get(k) ?? { wall: [], cpu: [] }
  t.wall.push(ms)
  t.cpu.push(cpu)
  times.set(k, t)
}
for (let r = 0; r < runs + 1; r++) {
  const bare = run(['-e', '0'])
  if (r > 0) add('node -e 0', bare)
  for (const root of roots) {
    const bin = join(root, 'bin/run.js')
    const v = run([bin, '--version'])
    const l = run([bin, 'log', '-n', '20', '--repo', store])
    const n = (String(l.stdout).match(/^commit /gm) ?? []).length
    if (n !== 20) throw new Error(`log printed ${n} commits, expected 20`)
    if (r === 0) continue
    add(`${root} --version`, v)
    add(`${root} log`, l)
  }
}
const min = (xs) => Math.min(...xs)
for (const [k, { wall, cpu }] of times) {
  console.log(`${k}: wall median ${fmt(median(wall))} min ${fmt(min(wall))}; CPU median ${fmt(median(cpu))} min ${fmt(min(cpu))}`)
  console.log(`  wall ${wall.map((x) => x.toFixed(0)).join(', ')}`)
  console.log(`  CPU  ${cpu.map((x) => x.toFixed(0)).join(', ')}`)
}
for (const root of roots) {
  const l = times.get(`${root} log`)
  const v = times.get(`${root} --version`)
  const ratio = (f, key) => (f(l[key]) / f(v[key])).toFixed(2)
  console.log(`${root}: log / --version = ${ratio(median, 'wall')}x wall, ${ratio(median, 'cpu')}x CPU (medians); ${ratio(min, 'wall')}x wall, ${ratio(min, 'cpu')}x CPU (minimums); target <= 1.3x`)
}
console.log(`load at end ${load()}`)
