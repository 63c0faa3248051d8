// Profile helper for row 10: build a lineage store once (kept in the given dir), then time
// lineage queries in-process. Usage: node bench/perf/lineage.mjs DIR [records] [--cpu-prof via node flags]
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { buildLineageStore } from '../rows/lineage.mjs'

const [dir = '/tmp/pedigree-perf-lineage', records = '30000'] = process.argv.slice(2)
const store = join(dir, '.pedigree')
if (!existsSync(store)) await buildLineageStore(store, Number(records), (s) => console.error(s))
const { Repository } = await import('../../dist/index.js')
for (const [direction, spec] of [['up', 'main:step/step-120.json'], ['down', 'main:calibration/cal-0.json']]) {
  for (const depth of [10, 100]) {
    const repo = await Repository.open(store)
    const times = []
    const cpu = []
    for (let i = 0; i < 5; i++) {
      const t = performance.now()
      const c = process.cpuUsage()
      await repo.lineage(spec, { direction, depth })
      times.push((performance.now() - t).toFixed(1))
      const u = process.cpuUsage(c)
      cpu.push(((u.user + u.system) / 1000).toFixed(1))
    }
    // CPU time of this process (all threads, LevelDB's included) is steadier than wall time on a loaded machine.
    console.log(direction, depth, 'wall ms', times.join(' '), '| cpu ms', cpu.join(' '))
    await repo.close()
  }
}
