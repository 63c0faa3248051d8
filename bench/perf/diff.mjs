#!/usr/bin/env node
// Target 2: diff of two 1M-entry trees that differ in 10 (and 100) entries, cold: each run is
// a fresh Node process that opens the store and diffs once (nothing cached in the process;
// the OS page cache is warm after the first round, which is not counted). It prints the
// time of the diff call alone and of open + diff, then a warm in-process diff for context.
//
//   node bench/perf/diff.mjs [--entries=1000000] [--runs=9] [--root=DIR] [--compare=DIR]
//
// The store (runs/NNN/NNNN.json → distinct record CIDs, as bench/rows/diff.mjs makes) is
// built once with this checkout's dist/ under $PERF_SCRATCH and reused.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { pickDistinct, prng } from '../lib.mjs'
import { ROOT, fmt, join, load, median, parseArgs, scratchDir, targetRoot, timeProcess } from './util.mjs'

const args = parseArgs()

if (args.worker) {
  // Worker: node diff.mjs --worker --root=DIR --store=S --a=CID --b=CID --expect=N
  const t0 = performance.now()
  const lib = await import(pathToFileURL(join(args.root, 'dist/index.js')).href)
  const { ProllyTree } = await import(pathToFileURL(join(args.root, 'dist/model/tree.js')).href)
  const t1 = performance.now()
  const repo = await lib.Repository.open(args.store)
  const a = lib.parseCid(args.a)
  const b = lib.parseCid(args.b)
  const t2 = performance.now()
  const c2 = process.cpuUsage()
  let count = 0
  for await (const c of repo.trees.diff(a, b)) {
    if (c.type !== 'modified') throw new Error(`unexpected ${c.type} ${c.path}`)
    count++
  }
  const t3 = performance.now()
  const c3 = process.cpuUsage(c2)
  if (count !== Number(args.expect)) throw new Error(`found ${count} changes, expected ${args.expect}`)
  // Warm: a fresh ProllyTree (empty node cache) on the same open store, then the same one again.
  const fresh = new ProllyTree(repo.blocks)
  const t4 = performance.now()
  const c4 = process.cpuUsage()
  for await (const _ of fresh.diff(a, b));
  const t5 = performance.now()
  const c5 = process.cpuUsage(c4)
  const c6 = process.cpuUsage()
  for await (const _ of fresh.diff(a, b));
  const t6 = performance.now()
  const c7 = process.cpuUsage(c6)
  const cpu = (c) => (c.user + c.system) / 1000
  await repo.close()
  console.log(JSON.stringify({ imports: t1 - t0, open: t2 - t1, diff: t3 - t2, second: t5 - t4, cached: t6 - t5, diffCpu: cpu(c3), secondCpu: cpu(c5), cachedCpu: cpu(c7) }))
  process.exit(0)
}

const entries = Number(args.entries ?? 1_000_000)
const runs = Number(args.runs ?? 9)
const roots = [targetRoot(args), ...(args.compare ? [targetRoot({ root: args.compare })] : [])]
const dir = join(scratchDir(), `diff-${entries}`)
const store = join(dir, '.pedigree')
const cidsFile = join(dir, 'cids.json')
const filesPerDir = 1000

if (!existsSync(cidsFile)) {
  const { Repository } = await import(pathToFileURL(join(ROOT, 'dist/index.js')).href)
  const { encodeNode } = await import(pathToFileURL(join(ROOT, 'dist/codec/block.js')).href)
  const pathOf = (i) => `runs/${String(Math.floor(i / filesPerDir)).padStart(3, '0')}/${String(i % filesPerDir).padStart(4, '0')}.json`
  const entryOf = (i, version) => {
    const block = encodeNode({ run: Math.floor(i / filesPerDir), task: i % filesPerDir, version })
    return { cid: block.cid, kind: 'record', size: block.bytes.length }
  }
  const t0 = performance.now()
  const repo = await Repository.init(store)
  const list = []
  for (let i = 0; i < entries; i++) list.push([pathOf(i), entryOf(i, 0)])
  const a = await repo.trees.build(list)
  list.length = 0
  const out = { a: a.toString() }
  for (const k of [10, 100]) {
    const edits = pickDistinct(prng(7), entries, k).map((i) => ({ path: pathOf(i), entry: entryOf(i, 1) }))
    out[`b${k}`] = (await repo.trees.edit(a, edits)).toString()
  }
  await repo.close()
  writeFileSync(cidsFile, JSON.stringify(out))
  console.log(`built ${store} (${entries} entries) in ${fmt(performance.now() - t0)}`)
}
const cids = JSON.parse(readFileSync(cidsFile, 'utf8'))
const self = fileURLToPath(import.meta.url)

console.log(`diff of two ${entries}-entry trees, fresh process per run, ${runs} runs; load at start ${load()}`)
const results = new Map()
const add = (k, v) => results.set(k, [...(results.get(k) ?? []), v])
for (let r = 0; r < runs + 1; r++) {
  for (const k of [10, 100]) {
    for (const root of roots) {
      const w = timeProcess(process.execPath, [self, '--worker', `--root=${root}`, `--store=${store}`, `--a=${cids.a}`, `--b=${cids[`b${k}`]}`, `--expect=${k}`])
      if (r > 0) add(`${root} ${k}`, { ...JSON.parse(String(w.stdout)), process: w.ms })
    }
  }
}
for (const [k, xs] of results) {
  const m = (f) => median(xs.map((x) => x[f])).toFixed(1)
  console.log(
    `${k} changes: cold diff median ${m('diff')} ms (${xs.map((x) => x.diff.toFixed(0)).join(', ')}); open ${m('open')} ms; imports ${m('imports')} ms; ` +
      `whole process ${m('process')} ms; fresh tree, warm store ${m('second')} ms; node cache warm ${m('cached')} ms; ` +
      `CPU (process, all threads) of the cold diff ${m('diffCpu')} ms, fresh tree ${m('secondCpu')} ms, warm ${m('cachedCpu')} ms`,
  )
}
console.log(`load at end ${load()}`)
