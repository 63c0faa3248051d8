#!/usr/bin/env node
// Target 4: one in-process `repo.commit` of 100k small task records (~330 B of JSON each)
// into a fresh LevelDB store. Prints records/s for the commit call and for call + close
// (close flushes what is still pending), medians of --runs (default 3), and thread CPU.
//
//   node bench/perf/commit.mjs [--records=100000] [--runs=3] [--root=DIR]
import { rmSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { prng, taskRecord } from '../lib.mjs'
import { cpuSince, fmt, join, load, median, parseArgs, scratchDir, targetRoot, threadCpu } from './util.mjs'

const args = parseArgs()
const records = Number(args.records ?? 100_000)
const runs = Number(args.runs ?? 3)
const root = targetRoot(args)
const { Repository } = await import(pathToFileURL(join(root, 'dist/index.js')).href)

const rand = prng(42)
const edits = []
for (let i = 0; i < records; i++) {
  const wf = `wf-${String(Math.floor(i / 1000)).padStart(4, '0')}`
  const value = taskRecord(rand, wf, i % 1000)
  edits.push({ type: 'record', path: `tasks/${wf}/${value.task_id}.json`, value })
}

console.log(`commit of ${records} records, ${runs} runs, ${root}; load at start ${load()}`)
const call = []
const total = []
for (let r = 0; r < runs; r++) {
  const dir = join(scratchDir(), `commit-${process.pid}`)
  rmSync(dir, { recursive: true, force: true })
  const repo = await Repository.init(join(dir, '.pedigree'))
  const cpu0 = threadCpu()
  const t0 = performance.now()
  await repo.commit({ ref: 'main', edits, message: 'perf', author: { name: 'bench' }, time: 1 })
  const t1 = performance.now()
  await repo.close()
  const t2 = performance.now()
  call.push(t1 - t0)
  total.push(t2 - t0)
  console.log(`run ${r + 1}: commit ${fmt(t1 - t0)} (${Math.round(records / ((t1 - t0) / 1000))}/s), with close ${fmt(t2 - t0)} (${Math.round(records / ((t2 - t0) / 1000))}/s); cpu s: ${cpuSince(cpu0)}`)
  rmSync(dir, { recursive: true, force: true })
}
console.log(
  `median: commit ${Math.round(records / (median(call) / 1000))}/s, with close ${Math.round(records / (median(total) / 1000))}/s; load at end ${load()}`,
)
