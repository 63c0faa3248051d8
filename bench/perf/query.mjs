#!/usr/bin/env node
// Target 2: `pedigree query main --filter '{"metrics.loss":{"$lt":0.1}}'` over 100k records,
// timed as a whole process (spawned, output piped and dropped), plus `pedigree --version`
// as the start-up floor. Medians of --runs (default 7), runs of each command interleaved.
//
//   node bench/perf/query.mjs [--records=100000] [--runs=7] [--root=DIR] [--compare=DIR]
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
const roots = [targetRoot(args), ...(args.compare ? [targetRoot({ root: args.compare })] : [])]
const store = join(scratchDir(), `query-${records}`, '.pedigree')
const FILTER = '{"metrics.loss":{"$lt":0.1}}'

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

console.log(`query over ${records} records, ${runs} runs; load at start ${load()}`)
const times = new Map()
const add = (k, ms) => times.set(k, [...(times.get(k) ?? []), ms])
let rows
for (let r = 0; r < runs + 1; r++) {
  for (const root of roots) {
    const bin = join(root, 'bin/run.js')
    const v = timeProcess(process.execPath, [bin, '--version'])
    const q = timeProcess(process.execPath, [bin, 'query', 'main', '--filter', FILTER, '--repo', store])
    rows = String(q.stdout).split('\n').length
    // The first round warms the page cache and is not counted.
    if (r === 0) continue
    add(`${root} --version`, v.ms)
    add(`${root} query`, q.ms)
  }
}
for (const [k, xs] of times) console.log(`${k}: median ${fmt(median(xs))} (${xs.map((x) => x.toFixed(0)).join(', ')})`)
console.log(`(output ${rows} lines; load at end ${load()})`)
