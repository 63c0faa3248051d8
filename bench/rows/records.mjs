// Rows 7–8: Flowcept-like task records from JSON Lines through the pedigree CLI vs git.
//   7. `pedigree ingest` of N records, whole process (records/s) vs `git fast-import` of the same records as blobs
//   8. `pedigree query` with a filter on N records, whole process vs `git grep` over the same records in a git repo
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FastImport, childEnv, fastImport, git, gitInit, gitJob, median, prng, removeDir, run, taskRecord, tempDir, timeJobs } from '../lib.mjs'

const RUN_JS = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
const TIME = Date.UTC(2026, 10, 22, 12, 0, 0)
const TEMPLATE = 'tasks/{workflow_id}/{task_id}.json'
const BATCH = 1000 // pedigree ingest's default --batch
export const FILTER = '{"metrics.loss":{"$lt":0.05}}'
// The same condition as a regex over the JSON text: loss is 0, or 0.0 then a digit 0–4 (JSON.stringify
// writes numbers ≥ 1e-6 without an exponent, and the records' losses are rounded to 6 digits).
export const GREP = '"loss":(0|0\\.0[0-4][0-9]*)[,}]'

/** N records as JSON Lines, plus the matching fast-import stream (one commit per BATCH records). */
function makeRecords(n, dir) {
  const workflows = Math.max(1, Math.round(n / 1000))
  const perWorkflow = Math.ceil(n / workflows)
  const rand = prng(42)
  const lines = []
  const fi = new FastImport()
  let files = []
  let from
  let bytes = 0
  for (let i = 0; i < n; i++) {
    const wf = `wf-${String(Math.floor(i / perWorkflow)).padStart(4, '0')}`
    const value = taskRecord(rand, wf, i % perWorkflow)
    const json = JSON.stringify(value)
    bytes += json.length + 1
    lines.push(json)
    files.push([`tasks/${wf}/${value.task_id}.json`, fi.blob(json)])
    if (files.length === BATCH || i === n - 1) {
      const m = fi.commit('refs/heads/main', { from, message: `ingest ${i + 1 - files.length + 1}-${i + 1}`, time: TIME, files })
      from = `:${m}`
      files = []
    }
  }
  const jsonl = join(dir, 'tasks.jsonl')
  writeFileSync(jsonl, lines.join('\n') + '\n')
  const stream = join(dir, 'tasks.fi')
  writeFileSync(stream, fi.toBuffer())
  const expected = lines.filter((l) => JSON.parse(l).metrics.loss < 0.05).length
  return { jsonl, stream, bytes, expected, workflows }
}

const ingestArgs = (store, jsonl) => [RUN_JS, 'ingest', '--repo', store, '-b', 'main', '--path-template', TEMPLATE, jsonl]

// ---------------------------------------------------------------------------------
// Row 7: ingest

export async function ingestRow({ records: n, runs, log }) {
  const dir = tempDir('ingest')
  const { jsonl, stream, bytes } = makeRecords(n, dir)
  const store = join(dir, 'store', '.pedigree')
  const env = childEnv()
  const gitMallocs = ['default', 'numeric']
  const jobs = [
    {
      name: 'ped',
      cmd: process.execPath,
      args: ingestArgs(store, jsonl),
      cwd: dir,
      env,
      pre: [['rm', ['-rf', join(dir, 'store')]], [process.execPath, [RUN_JS, 'init', '--repo', store]]],
    },
    ...gitMallocs.map((m) => {
      const g = join(dir, `git-${m}`)
      return gitJob(m, dir, ['-C', g, 'fast-import', '--quiet', '--done'], {
        malloc: m,
        inputFile: stream,
        pre: [['rm', ['-rf', g]], ['git', ['init', '-q', '-b', 'main', g]]],
      })
    }),
  ]
  const { times, stdout } = timeJobs(jobs, { runs, warmup: 0 })
  const m = /ingested (\d+) records/.exec(stdout.ped)
  if (!m || Number(m[1]) !== n) throw new Error(`pedigree ingest printed: ${stdout.ped.slice(0, 300)}`)
  for (const g of gitMallocs) {
    const count = git(join(dir, `git-${g}`), ['ls-tree', '-r', '--name-only', 'main']).stdout.toString().split('\n').filter(Boolean).length
    if (count !== n) throw new Error(`git tree has ${count} paths, expected ${n}`)
  }
  log(`  pedigree ingest: ${times.ped.map((t) => t.toFixed(0)).join(', ')} ms`)
  for (const g of gitMallocs) log(`  git fast-import (${g} malloc): ${times[g].map((t) => t.toFixed(0)).join(', ')} ms`)
  removeDir(dir)
  const pedMs = median(times.ped)
  const gitMedians = Object.fromEntries(gitMallocs.map((g) => [g, median(times[g])]))
  const peer = gitMallocs.reduce((a, b) => (gitMedians[b] < gitMedians[a] ? b : a))
  const pedRate = n / (pedMs / 1000)
  return {
    n,
    bytes,
    batch: BATCH,
    commits: Math.ceil(n / BATCH),
    pedMs,
    gitMs: gitMedians[peer],
    gitMedians,
    peer,
    pedRate,
    gitRate: n / (gitMedians[peer] / 1000),
    runs: times,
    met: { floor: pedRate >= 30_000 },
  }
}

// ---------------------------------------------------------------------------------
// Row 8: query with a filter

export async function queryRow({ records: n, runs, log }) {
  const dir = tempDir('query')
  const { jsonl, stream, expected } = makeRecords(n, dir)
  const store = join(dir, 'store', '.pedigree')
  run(process.execPath, [RUN_JS, 'init', '--repo', store], { env: childEnv() })
  const ing = run(process.execPath, ingestArgs(store, jsonl), { env: childEnv() })
  log(`  pedigree ingest (setup): ${ing.ms.toFixed(0)} ms`)
  const gdir = join(dir, 'git')
  run('mkdir', ['-p', gdir])
  gitInit(gdir)
  const fiMs = fastImport(gdir, readFileSync(stream))
  log(`  git fast-import (setup): ${fiMs.toFixed(0)} ms`)
  const jobs = [
    { name: 'ped', cmd: process.execPath, args: [RUN_JS, 'query', 'main', '--repo', store, '--filter', FILTER, '--format', 'jsonl'], cwd: dir, env: childEnv() },
    gitJob('gitGrep', gdir, ['grep', '-l', '-E', GREP, 'main', '--', 'tasks/']),
  ]
  const { times, stdout } = timeJobs(jobs, { runs, warmup: 1 })
  const pedRows = stdout.ped.split('\n').filter(Boolean).length
  const gitRows = stdout.gitGrep.split('\n').filter(Boolean).length
  if (pedRows !== expected) throw new Error(`pedigree query returned ${pedRows} records, expected ${expected}`)
  if (gitRows !== expected) throw new Error(`git grep matched ${gitRows} files, expected ${expected}`)
  log(`  ${expected} of ${n} records match; pedigree query: ${times.ped.map((t) => t.toFixed(0)).join(', ')} ms; git grep: ${times.gitGrep.map((t) => t.toFixed(0)).join(', ')} ms`)
  removeDir(dir)
  const pedMs = median(times.ped)
  return {
    n,
    matches: expected,
    pedMs,
    gitMs: median(times.gitGrep),
    setup: { ingestMs: ing.ms, fastImportMs: fiMs },
    runs: times,
    met: { abs: pedMs <= 1000 },
  }
}
