// Row 10: lineage of depth 10 and 100 in a store of N records (target <= 50 ms in-process),
// beside `git rev-list` over the same DAG (records as commits, links as parents).
//
// The store: N - CHAIN - 1 independent task records, a calibration, and a chain of CHAIN
// processing steps, each using the step before it and FAN_IN randomly chosen task records
// (so each level of the lineage graph is FAN_IN + 1 nodes wide, as a real pipeline's is).
// Links are DAG-JSON {"/": cid}, with CIDs computed here the way the store computes them
// (dag-cbor, sha2-256, CIDv1) and checked against the store after ingest.
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { FastImport, git, gitInit, gitJob, median, msSince, now, prng, removeDir, taskRecord, tempDir, timeJobs, childEnv } from '../lib.mjs'
import { fileURLToPath } from 'node:url'

const RUN_JS = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
const CHAIN = 120
const FAN_IN = 3
const DEPTHS = [10, 100]
const BATCH = 10_000
const TIME = Date.UTC(2026, 10, 22, 12, 0, 0)

const cidOf = async (value) => CID.create(1, dagCbor.code, await sha256.digest(dagCbor.encode(value)))
const link = (cid) => ({ '/': cid.toString() })

/** The records as JSON lines (in ingest order), the chain's CIDs, and which tasks each step used. */
async function makeRecords(n) {
  const rand = prng(7)
  const tasks = n - CHAIN - 1
  const taskCids = []
  const lines = []
  for (let i = 0; i < tasks; i++) {
    const task = taskRecord(rand, `wf-${String(Math.floor(i / 1000)).padStart(4, '0')}`, i % 1000)
    const value = { type: 'task', id: task.task_id, ...task }
    lines.push(JSON.stringify(value))
    if (i < 20_000) taskCids.push(await cidOf(value)) // steps draw their inputs from the first 20k
  }
  const calibration = { type: 'calibration', id: 'cal-0', gain: 1.2, detector: 'eiger-4m' }
  let prev = await cidOf(calibration)
  lines.push(JSON.stringify(calibration))
  const chain = [prev]
  const used = []
  for (let k = 1; k <= CHAIN; k++) {
    const inputs = Array.from({ length: FAN_IN }, () => Math.floor(rand() * taskCids.length))
    used.push(inputs)
    // Keys in dag-cbor's order (length, then bytes), so that the computed CID is the stored one.
    const value = { id: `step-${k}`, type: 'step', used: inputs.map((i) => taskCids[i]), previous: prev }
    const json = { id: value.id, type: 'step', used: inputs.map((i) => link(taskCids[i])), previous: link(prev) }
    prev = await cidOf(value)
    chain.push(prev)
    lines.push(JSON.stringify(json))
  }
  return { lines, chain, used, tasks }
}

/** The same DAG for git: each step a commit whose parents are the step before and its tasks (root commits). */
function gitStream(chain, used, taskCount) {
  const fi = new FastImport()
  const taskMark = new Map()
  const commitOf = (label, parents) =>
    fi.commit(`refs/heads/${label}`, { from: parents[0] && `:${parents[0]}`, merges: parents.slice(1).map((m) => `:${m}`), message: label, time: TIME, files: [] })
  const taskCommit = (i) => {
    if (!taskMark.has(i)) taskMark.set(i, commitOf(`tasks/t${i}`, []))
    return taskMark.get(i)
  }
  let prev = commitOf('cal', [])
  const marks = [prev]
  for (let k = 1; k < chain.length; k++) {
    const parents = [prev, ...used[k - 1].map(taskCommit)]
    prev = commitOf(`step-${k}`, parents)
    marks.push(prev)
  }
  return { stream: fi.toBuffer(), tasks: Math.min(taskCount, taskMark.size) }
}

/** Build the row's store at `store` (ingest, then the reverse index caught up); also used by bench/perf. */
export async function buildLineageStore(store, n, log = () => {}) {
  const { Repository } = await import('../../dist/index.js')
  log(`  making ${n.toLocaleString('en-US')} records (a chain of ${CHAIN} steps, each using ${FAN_IN} tasks)`)
  const { lines, chain, used, tasks } = await makeRecords(n)
  const t0 = now()
  const repo = await Repository.init(store)
  async function* input() {
    yield* lines
  }
  await repo.ingest(input(), {
    ref: 'main',
    author: { name: 'bench', email: 'bench@example.org' },
    pathTemplate: '{type}/{id}.json',
    batch: BATCH,
  })
  const tip = chain[chain.length - 1]
  const got = await repo.resolveEntry(`main:step/step-${CHAIN}.json`)
  if (!got.entry.cid.equals(tip)) throw new Error(`computed CID ${tip} differs from the stored ${got.entry.cid}`)
  // The reverse index is caught up by the first downstream query: do it now, untimed.
  await repo.lineage(`main:calibration/cal-0.json`, { direction: 'down', depth: 1 })
  const setupMs = msSince(t0)
  await repo.close()
  log(`  ingested and indexed in ${(setupMs / 1000).toFixed(1)} s`)
  return { chain, used, tasks, setupMs }
}

export async function lineageRow({ records: n, runs, log }) {
  const dir = tempDir('lineage')
  try {
    const { Repository } = await import('../../dist/index.js')
    const store = join(dir, 'store', '.pedigree')
    const { chain, used, tasks, setupMs } = await buildLineageStore(store, n, log)
    let repo
    // In-process: open the store afresh (cold caches), then time each query; repeat.
    const inProcess = {}
    for (const depth of DEPTHS) {
      for (const direction of ['up', 'down']) {
        const spec = direction === 'up' ? `main:step/step-${CHAIN}.json` : `main:calibration/cal-0.json`
        const cold = []
        const warm = []
        let nodes = 0
        for (let r = 0; r < runs; r++) {
          repo = await Repository.open(store)
          let t = now()
          const g = await repo.lineage(spec, { direction, depth })
          cold.push(msSince(t))
          t = now()
          await repo.lineage(spec, { direction, depth })
          warm.push(msSince(t))
          nodes = g.nodes.length
          await repo.close()
        }
        const expected = direction === 'up' ? Math.min(depth, CHAIN) * (FAN_IN + 1) + 1 : Math.min(depth, CHAIN) + 1
        if (direction === 'up' && nodes < Math.min(depth, CHAIN) + 1) throw new Error(`lineage up depth ${depth}: ${nodes} nodes, expected about ${expected}`)
        if (direction === 'down' && nodes !== expected) throw new Error(`lineage down depth ${depth}: ${nodes} nodes, expected ${expected}`)
        inProcess[`${direction}${depth}`] = { coldMs: median(cold), warmMs: median(warm), nodes, cold, warm }
        log(`  ${direction} depth ${depth}: ${nodes} nodes, cold ${median(cold).toFixed(1)} ms, warm ${median(warm).toFixed(1)} ms`)
      }
    }

    // Whole process, beside git rev-list over the same DAG (upstream only: git has no reverse walk).
    const g = join(dir, 'git')
    mkdirSync(g)
    gitInit(g)
    const { stream } = gitStream(chain, used, tasks)
    git(g, ['fast-import', '--quiet', '--done'], { input: stream })
    const jobs = []
    for (const depth of DEPTHS) {
      jobs.push({ name: `ped${depth}`, cmd: process.execPath, args: [RUN_JS, 'lineage', '--repo', store, `main:step/step-${CHAIN}.json`, '--depth', String(depth), '--json'], cwd: dir, env: childEnv() })
      jobs.push(gitJob(`git${depth}`, g, ['rev-list', `step-${CHAIN}`, `^step-${CHAIN - depth}`]))
    }
    const { times, stdout } = timeJobs(jobs, { runs, warmup: 1 })
    const wholeProcess = {}
    for (const depth of DEPTHS) {
      const gitCommits = stdout[`git${depth}`].trim().split('\n').length
      wholeProcess[depth] = { pedMs: median(times[`ped${depth}`]), gitMs: median(times[`git${depth}`]), gitCommits, ped: times[`ped${depth}`], git: times[`git${depth}`] }
    }
    return { n, chain: CHAIN, fanIn: FAN_IN, batch: BATCH, setupMs, inProcess, wholeProcess, runs, met: { target: DEPTHS.every((d) => inProcess[`up${d}`].coldMs <= 50 && inProcess[`down${d}`].coldMs <= 50) } }
  } finally {
    removeDir(dir)
  }
}
