#!/usr/bin/env node
// Target 3: `pedigree log -n 20` on a 10k-commit history, whole process, against `pedigree
// --version` (a minimal oclif command) and `node -e 0`. Runs of the three commands are
// interleaved so that load drift hits them alike; the first round only warms caches.
//
//   node bench/perf/log.mjs [--commits=10000] [--runs=15] [--root=DIR] [--compare=DIR]
//
// The history (one repo.commit per record, 1000 paths in turn) is built once with this
// checkout's dist/ under $PERF_SCRATCH and reused.
import { existsSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { prng, taskRecord } from '../lib.mjs'
import { ROOT, fmt, join, load, median, parseArgs, scratchDir, targetRoot, timeProcess } from './util.mjs'

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

console.log(`log -n 20 over ${commits} commits, ${runs} runs; load at start ${load()}`)
const times = new Map()
const add = (k, ms) => times.set(k, [...(times.get(k) ?? []), ms])
for (let r = 0; r < runs + 1; r++) {
  const bare = timeProcess(process.execPath, ['-e', '0'])
  if (r > 0) add('node -e 0', bare.ms)
  for (const root of roots) {
    const bin = join(root, 'bin/run.js')
    const v = timeProcess(process.execPath, [bin, '--version'])
    const l = timeProcess(process.execPath, [bin, 'log', '-n', '20', '--repo', store])
    const n = (String(l.stdout).match(/^commit /gm) ?? []).length
    if (n !== 20) throw new Error(`log printed ${n} commits, expected 20`)
    if (r === 0) continue
    add(`${root} --version`, v.ms)
    add(`${root} log`, l.ms)
  }
}
for (const [k, xs] of times) console.log(`${k}: median ${fmt(median(xs))} (${xs.map((x) => x.toFixed(0)).join(', ')})`)
for (const root of roots) {
  const ratio = median(times.get(`${root} log`)) / median(times.get(`${root} --version`))
  console.log(`${root}: log / --version = ${ratio.toFixed(2)}x (target <= 1.3x)`)
}
console.log(`load at end ${load()}`)
