#!/usr/bin/env node
// CPU profile of one in-process commit of 100k records (only the commit call is profiled, not
// making the records), written to $PERF_SCRATCH/commit.cpuprofile; summarise it with
//   node bench/profile-summary.mjs /tmp/pedigree-perf/commit.cpuprofile
//
//   node bench/perf/profile-commit.mjs [--records=100000] [--interval=200] [--root=DIR]
import { rmSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { pathToFileURL } from 'node:url'
import { prng, taskRecord } from '../lib.mjs'
import { join, parseArgs, scratchDir, targetRoot } from './util.mjs'

const args = parseArgs()
const records = Number(args.records ?? 100_000)
const root = targetRoot(args)
const { Repository } = await import(pathToFileURL(join(root, 'dist/index.js')).href)
const rand = prng(42)
const edits = []
for (let i = 0; i < records; i++) {
  const wf = `wf-${String(Math.floor(i / 1000)).padStart(4, '0')}`
  const value = taskRecord(rand, wf, i % 1000)
  edits.push({ type: 'record', path: `tasks/${wf}/${value.task_id}.json`, value })
}
const dir = join(scratchDir(), `profile-commit-${process.pid}`)
rmSync(dir, { recursive: true, force: true })
const repo = await Repository.init(join(dir, '.pedigree'))
const session = new Session()
session.connect()
await session.post('Profiler.enable')
await session.post('Profiler.setSamplingInterval', { interval: Number(args.interval ?? 200) })
await session.post('Profiler.start')
const c0 = process.cpuUsage()
const t0 = performance.now()
await repo.commit({ ref: 'main', edits, message: 'perf', author: { name: 'bench' }, time: 1 })
await repo.close()
const ms = performance.now() - t0
const cpu = process.cpuUsage(c0)
const { profile } = await session.post('Profiler.stop')
const out = join(scratchDir(), 'commit.cpuprofile')
writeFileSync(out, JSON.stringify(profile))
console.log(`commit + close ${ms.toFixed(0)} ms, process CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms; profile in ${out}`)
rmSync(dir, { recursive: true, force: true })
