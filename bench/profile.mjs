#!/usr/bin/env node
// CPU profiles of pedigree's side of each benchmark row, for finding where the time goes.
//   node bench/profile.mjs commit [records=20000]   profile of repo.commit of N task records
//   node bench/profile.mjs diff [dirs=50]            profile of 5 cold-cache diffs of dirs×1000-entry trees
//   node bench/profile.mjs log [commits=2000]        profile (--cpu-prof) of `bin/run.js log -n 20`, plus
//                                                    an import-time breakdown of the log command
// Each writes bench/out/<row>.cpuprofile (open it in Chrome DevTools or speedscope) and prints
// a summary from bench/profile-summary.mjs.
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Repository } from '../dist/index.js'
import { encodeNode } from '../dist/codec/block.js'
import { ProllyTree } from '../dist/model/tree.js'
import { childEnv, median, msSince, now, pickDistinct, prng, taskRecord, tempDir } from './lib.mjs'

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
const OUT = join(ROOT, 'bench/out')
mkdirSync(OUT, { recursive: true })
const [what = 'commit', sizeArg] = process.argv.slice(2)

async function profiled(name, fn) {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await session.post('Profiler.start')
  await fn()
  const { profile } = await session.post('Profiler.stop')
  const file = join(OUT, `${name}.cpuprofile`)
  writeFileSync(file, JSON.stringify(profile))
  summarize(file)
}

function summarize(file) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bench/profile-summary.mjs'), file, '--top=30'], { encoding: 'utf8' })
  process.stdout.write(r.stdout + r.stderr)
  console.log(`\nprofile: ${file}`)
}

if (what === 'commit') {
  const n = Number(sizeArg ?? 20_000)
  const rand = prng(42)
  const edits = []
  for (let i = 0; i < n; i++) {
    const wf = `wf-${String(Math.floor(i / 1000)).padStart(4, '0')}`
    const value = taskRecord(rand, wf, i % 1000)
    edits.push({ type: 'record', path: `tasks/${wf}/${value.task_id}.json`, value })
  }
  await profiled('commit', async () => {
    const repo = await Repository.init(join(tempDir('prof-commit'), '.pedigree'))
    const t0 = now()
    await repo.commit({ ref: 'main', edits, message: 'm', author: { name: 'bench' }, time: 1 })
    console.log(`commit of ${n} records: ${msSince(t0).toFixed(0)} ms`)
    await repo.close()
  })
} else if (what === 'diff') {
  const dirs = Number(sizeArg ?? 50)
  const per = 1000
  const pathOf = (d, f) => `runs/${String(d).padStart(3, '0')}/${String(f).padStart(4, '0')}.json`
  const root = join(tempDir('prof-diff'), '.pedigree')
  let repo = await Repository.init(root)
  const entries = []
  for (let d = 0; d < dirs; d++) {
    for (let f = 0; f < per; f++) {
      const b = encodeNode({ run: d, task: f, version: 0 })
      entries.push([pathOf(d, f), { cid: b.cid, kind: 'record', size: b.bytes.length }])
    }
  }
  const a = await repo.trees.build(entries)
  const edits = pickDistinct(prng(7), dirs * per, 100).map((i) => {
    const b = encodeNode({ run: Math.floor(i / per), task: i % per, version: 1 })
    return { path: pathOf(Math.floor(i / per), i % per), entry: { cid: b.cid, kind: 'record', size: b.bytes.length } }
  })
  const b = await repo.trees.edit(a, edits)
  await repo.close()
  repo = await Repository.open(root)
  await profiled('diff', async () => {
    const times = []
    for (let r = 0; r < 5; r++) {
      const t0 = now()
      for await (const _ of new ProllyTree(repo.blocks).diff(a, b));
      times.push(msSince(t0))
    }
    console.log(`diff (cold node cache), ${dirs * per} entries: ${times.map((t) => t.toFixed(0)).join(', ')} ms`)
  })
  await repo.close()
} else if (what === 'log') {
  const commits = Number(sizeArg ?? 2000)
  const dir = tempDir('prof-log')
  const root = join(dir, '.pedigree')
  const repo = await Repository.init(root)
  const rand = prng(3)
  for (let i = 0; i < commits; i++) {
    const v = taskRecord(rand, 'wf-0001', i)
    await repo.commit({ ref: 'main', edits: [{ type: 'record', path: `tasks/${i % 1000}.json`, value: v }], message: `task ${i}`, author: { name: 'bench' }, time: 1e12 + i * 1000 })
  }
  await repo.close()
  const env = childEnv()
  const runJs = join(ROOT, 'bin/run.js')
  // Import-time breakdown: min over runs of each step, in a fresh process each time.
  const probe = join(dir, 'probe.mjs')
  writeFileSync(
    probe,
    `const t = [performance.now()]
await import(${JSON.stringify(join(ROOT, 'node_modules/@oclif/core/lib/index.js'))}); t.push(performance.now())
await import(${JSON.stringify(join(ROOT, 'dist/commands/log.js'))}); t.push(performance.now())
const { Repository } = await import(${JSON.stringify(join(ROOT, 'dist/index.js'))})
const repo = await Repository.open(${JSON.stringify(root)}); t.push(performance.now())
for await (const _ of repo.log({ from: 'main', limit: 20 })); t.push(performance.now())
await repo.close(); t.push(performance.now())
console.log(JSON.stringify(t.slice(1).map((x, i) => x - t[i])))\n`,
  )
  const steps = ['import @oclif/core', 'import dist/commands/log.js (and all it imports)', 'Repository.open', 'log 20 commits', 'close']
  const samples = []
  for (let i = 0; i < 10; i++) samples.push(JSON.parse(spawnSync(process.execPath, [probe], { env, encoding: 'utf8' }).stdout))
  console.log('in-process breakdown of `log -n 20` (median of 10 fresh processes):')
  steps.forEach((s, i) => console.log(`  ${median(samples.map((x) => x[i])).toFixed(1).padStart(7)} ms  ${s}`))
  const whole = (args) => {
    const t = []
    for (let i = 0; i < 10; i++) {
      const t0 = now()
      spawnSync(process.execPath, args, { env, cwd: dir })
      t.push(msSince(t0))
    }
    return median(t)
  }
  console.log(`whole process: node -e 0 ${whole(['-e', '0']).toFixed(0)} ms; --version ${whole([runJs, '--version']).toFixed(0)} ms; log -n 20 ${whole([runJs, 'log', '-n', '20', '--repo', root]).toFixed(0)} ms`)
  const profDir = join(dir, 'prof')
  spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', profDir, runJs, 'log', '-n', '20', '--repo', root], { env, cwd: dir })
  const file = join(OUT, 'log.cpuprofile')
  renameSync(join(profDir, readdirSync(profDir)[0]), file)
  summarize(file)
} else {
  console.error('usage: node bench/profile.mjs commit|diff|log [size]')
  process.exit(2)
}
