#!/usr/bin/env node
// Target 3: `pedigree ingest -b main --path-template 'tasks/{workflow_id}/{task_id}.json' FILE`
// of 100k Flowcept-like task records (JSON Lines, ~300–400 B a line), default batch (1000),
// timed as a whole process into a fresh store (made with `pedigree init`, not timed).
// Medians of --runs (default 3).
//
//   node bench/perf/ingest.mjs [--records=100000] [--runs=3] [--root=DIR] [--compare=DIR]
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { prng, taskRecord } from '../lib.mjs'
import { fmt, join, load, median, parseArgs, scratchDir, targetRoot, timeProcess } from './util.mjs'

const args = parseArgs()
const records = Number(args.records ?? 100_000)
const runs = Number(args.runs ?? 3)
const roots = [targetRoot(args), ...(args.compare ? [targetRoot({ root: args.compare })] : [])]
const input = join(scratchDir(), `tasks-${records}.jsonl`)

if (!existsSync(input)) {
  // Flowcept task documents: the task record plus the provenance fields Flowcept adds.
  const rand = prng(7)
  const lines = []
  for (let i = 0; i < records; i++) {
    const wf = `wf-${String(Math.floor(i / 1000)).padStart(4, '0')}`
    const t = taskRecord(rand, wf, i % 1000)
    lines.push(JSON.stringify({ ...t, campaign_id: 'c-2026-11', activity_id: `train_${i % 7}`, used: { epoch: i % 100 } }))
  }
  writeFileSync(input, lines.join('\n') + '\n')
}
const bytes = statSync(input).size
console.log(`ingest of ${records} records (${(bytes / records).toFixed(0)} B a line), ${runs} runs; load at start ${load()}`)
const times = new Map()
for (let r = 0; r < runs; r++) {
  for (const root of roots) {
    const store = join(scratchDir(), `ingest-${process.pid}`)
    rmSync(store, { recursive: true, force: true })
    const bin = join(root, 'bin/run.js')
    timeProcess(process.execPath, [bin, 'init', store])
    const { ms } = timeProcess(process.execPath, [bin, 'ingest', '-b', 'main', '--path-template', 'tasks/{workflow_id}/{task_id}.json', '--repo', store, input])
    times.set(root, [...(times.get(root) ?? []), ms])
    console.log(`${root}: ${fmt(ms)} (${Math.round(records / (ms / 1000))} records/s)`)
    rmSync(store, { recursive: true, force: true })
  }
}
for (const [root, xs] of times) console.log(`${root}: median ${fmt(median(xs))} = ${Math.round(records / (median(xs) / 1000))} records/s`)
console.log(`load at end ${load()}`)
