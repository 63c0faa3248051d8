#!/usr/bin/env node
// Target 2 (BENCHMARKS.md row 8): `pedigree query main --filter '{"metrics.loss":{"$lt":0.05}}'
// --format jsonl` over 100k records, timed as a whole process (spawned, output piped and
// dropped), plus `pedigree --version` as the start-up floor. Medians of --runs (default 7), runs
// of each command interleaved; CPU (user + system, all threads) beside wall time where
// /usr/bin/time is there to measure it, since on a shared machine wall time is mostly load.
//
//   node bench/perf/query.mjs [--records=100000] [--runs=7] [--root=DIR] [--compare=DIR]
//                             [--filter=JSON] [--format=jsonl|table|json|csv]
//
// `--compare=DIR[,DIR…]` interleaves other checkouts in the same runs.
//
// The store is built once (with this checkout's dist/) under $PERF_SCRATCH and reused.
// `--root` measures another checkout (its bin/run.js); `--compare` measures a second one in
// the same interleaved runs, e.g. a copy of the tree before a change.
import { existsSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { prng, taskRecord } from '../lib.mjs'
import { ROOT, fmt, join, load, median, parseArgs, scratchDir, targetRoot, timeProcess } from './util.mjs'

const args = parseArgs()
const records = Number(args.records ?? 100_000)
const runs = Number(args.runs ?? 7)
const roots = [targetRoot(args), ...(args.compare ? String(args.compare).split(',').map((root) => targetRoot({ root })) : [])]
const store = join(scratchDir(), `query-${records}`, '.pedigree')
const FILTER = args.filter ?? '{"metrics.loss":{"$lt":0.05}}'
const FORMAT = args.format ?? 'jsonl'
const TIME = '/usr/bin/time'
const withTime = existsSync(TIME)

/** A whole process, with its CPU seconds (user + system, every thread) from /usr/bin/time when there is one. */
function run(bin, args) {
  if (!withTime) return { ...timeProcess(process.execPath, [bin, ...args]), cpu: NaN }
  const r = timeProcess(TIME, ['-f', 'cpu %U %S', process.execPath, bin, ...args])
  const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(String(r.stderr))
  return { ...r, cpu: m ? (Number(m[1]) + Number(m[2])) * 1000 : NaN }
}

if (!existsSync(join(store, 'FORMAT'))) {
  const { Repository } = await import(pathToFileURL(join(ROOT, 'dist/index.js')).href)
  const t0 = performance.now()
  const repo = await Repository.init(store)
  const rand = prng(42)
  const edits = []
  for (let i = 0; i < records; i++) {
    const wf = `wf-${String(Math.floor(i / 1000)).padStart(4, '0')}`
    const value = taskRecord(rand, wf, i % 1000)
    edits.push({ type: 'record', path: `tasks/${wf}/${value.task_id}.json`, value })
  }
  await repo.commit({ ref: 'main', edits, message: 'perf fixture', author: { name: 'bench' }, time: 1 })
  await repo.close()
  console.log(`built ${store} (${records} records) in ${fmt(performance.now() - t0)}`)
}

console.log(`query --filter '${FILTER}' --format ${FORMAT} over ${records} records, ${runs} runs; load at start ${load()}`)
const times = new Map()
const add = (k, ms) => times.set(k, [...(times.get(k) ?? []), ms])
const rows = new Map()
for (let r = 0; r < runs + 1; r++) {
  for (const root of roots) {
    const bin = join(root, 'bin/run.js')
    const v = run(bin, ['--version'])
    const q = run(bin, ['query', 'main', '--filter', FILTER, '--format', FORMAT, '--repo', store])
    const out = String(q.stdout)
    if (rows.has('out') && rows.get('out') !== out) throw new Error(`${root} gave different output from the first run`)
    rows.set('out', out)
    // The first round warms the page cache and is not counted.
    if (r === 0) continue
    add(`${root} --version`, v.ms)
    add(`${root} query`, q.ms)
    add(`${root} --version CPU`, v.cpu)
    add(`${root} query CPU`, q.cpu)
  }
}
for (const [k, xs] of times) if (!xs.some(Number.isNaN)) console.log(`${k}: median ${fmt(median(xs))} (${xs.map((x) => x.toFixed(0)).join(', ')})`)
console.log(`(output ${rows.get('out').split('\n').length - 1} lines, the same from every run; load at end ${load()})`)
