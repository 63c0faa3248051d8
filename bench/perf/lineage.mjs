#!/usr/bin/env node
// Target 10: lineage of depth 10 and 100 in a store of 1M records, in-process, fresh open: ≤ 50 ms.
// As row 10 measures it: one process runs each query `runs` times, each time on a fresh
// Repository.open (LevelDB's block and table caches empty; the JIT warm after the first
// runs), timed cold, then again warm. A round is one such process; rounds of this checkout and
// of `--compare` are interleaved. Prints every run, medians, CPU of the process (all threads)
// beside wall time, and the load average.
//
//   node bench/perf/lineage.mjs [DIR] [records] [--runs=5] [--rounds=3] [--root=DIR] [--compare=DIR] [--depths=10,100] [--directions=up,down]
//
// The store (bench/rows/lineage.mjs's: a chain of 120 steps, each using the step before and 3
// of the task records) is built once in DIR (default $PERF_SCRATCH/lineage-<records>) with this
// checkout's dist/ and reused. `--compare=DIR` interleaves runs of another checkout's dist/.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { buildLineageStore } from '../rows/lineage.mjs'
import { join, load, median, parseArgs, scratchDir, targetRoot, timeProcess } from './util.mjs'

const args = parseArgs(process.argv.slice(2).filter((a) => a.startsWith('--')))
const [dirArg, recordsArg = '1000000'] = process.argv.slice(2).filter((a) => !a.startsWith('--'))

if (args.worker) {
  // Worker: node lineage.mjs --worker --root=DIR --store=S --runs=N --depths=10,100 --directions=up,down
  // As bench/rows/lineage.mjs does it: one process, depths in turn, and for each run a fresh
  // Repository.open (LevelDB's caches empty), the query timed cold, then again warm, closed.
  const { Repository } = await import(pathToFileURL(join(args.root, 'dist/index.js')).href)
  const cpu = (c) => (c.user + c.system) / 1000
  const out = []
  for (const depth of String(args.depths).split(',').map(Number)) {
    for (const direction of String(args.directions).split(',')) {
      const spec = direction === 'up' ? 'main:step/step-120.json' : 'main:calibration/cal-0.json'
      for (let r = 0; r < Number(args.runs); r++) {
        const repo = await Repository.open(args.store)
        let t = performance.now()
        let c = process.cpuUsage()
        const g = await repo.lineage(spec, { direction, depth })
        const cold = performance.now() - t
        const coldCpu = cpu(process.cpuUsage(c))
        t = performance.now()
        c = process.cpuUsage()
        await repo.lineage(spec, { direction, depth })
        out.push({ key: `${direction} ${depth}`, nodes: g.nodes.length, cold, coldCpu, warm: performance.now() - t, warmCpu: cpu(process.cpuUsage(c)) })
        await repo.close()
      }
    }
  }
  console.log(JSON.stringify(out))
  process.exit(0)
}

const records = Number(recordsArg)
const dir = dirArg ?? join(scratchDir(), `lineage-${records}`)
const store = join(dir, '.pedigree')
if (!existsSync(store)) await buildLineageStore(store, records, (s) => console.error(s))
const runs = Number(args.runs ?? 5)
const rounds = Number(args.rounds ?? 3)
const roots = [targetRoot(args), ...(args.compare ? [targetRoot({ root: args.compare })] : [])]
const depths = String(args.depths ?? '10,100')
const directions = String(args.directions ?? 'up,down')
const self = fileURLToPath(import.meta.url)

console.log(`lineage in ${store}: ${rounds} rounds of a process running the row's sequence (${runs} runs per query, each on a fresh open); load at start ${load()}`)
const results = new Map()
for (let round = 0; round < rounds; round++) {
  for (const root of roots) {
    const w = timeProcess(process.execPath, [self, '--worker', `--root=${root}`, `--store=${store}`, `--runs=${runs}`, `--depths=${depths}`, `--directions=${directions}`])
    for (const x of JSON.parse(String(w.stdout))) {
      const k = `${root} ${x.key}`
      results.set(k, [...(results.get(k) ?? []), x])
    }
  }
}
for (const [k, xs] of [...results].sort((a, b) => (a[0].split(' ').slice(1).join(' ') < b[0].split(' ').slice(1).join(' ') ? -1 : 1))) {
  const m = (f) => median(xs.map((x) => x[f])).toFixed(1)
  console.log(`${k} (${xs[0].nodes} nodes): cold median ${m('cold')} ms (${xs.map((x) => x.cold.toFixed(0)).join(', ')}), CPU ${m('coldCpu')} ms; warm ${m('warm')} ms, CPU ${m('warmCpu')} ms`)
}
console.log(`load at end ${load()}`)
