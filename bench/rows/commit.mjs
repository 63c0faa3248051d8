// Row 1: commit N small JSON task records in one commit, pedigree vs git fast-import.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Repository } from '../../dist/index.js'
import { FastImport, GIT_MALLOC, fmtRate, git, gitJob, median, msSince, now, prng, removeDir, taskRecord, tempDir, timeJobs } from '../lib.mjs'

const TIME = Date.UTC(2026, 10, 22, 12, 0, 0)

export async function commitRow({ records: n, runs, log }) {
  const workflows = Math.max(1, Math.round(n / 1000))
  const perWorkflow = Math.ceil(n / workflows)
  const rand = prng(42)
  const items = []
  for (let i = 0; i < n; i++) {
    const wf = `wf-${String(Math.floor(i / perWorkflow)).padStart(4, '0')}`
    const value = taskRecord(rand, wf, i % perWorkflow)
    items.push({ path: `tasks/${wf}/${value.task_id}.json`, value })
  }
  const jsonBytes = items.reduce((s, it) => s + Buffer.byteLength(JSON.stringify(it.value)), 0)

  // pedigree: one repo.commit of every record, on a fresh LevelDB store each run.
  const edits = items.map((it) => ({ type: 'record', path: it.path, value: it.value }))
  const ped = []
  for (let r = 0; r < runs; r++) {
    const dir = tempDir('commit')
    const repo = await Repository.init(join(dir, '.pedigree'))
    const t0 = now()
    const res = await repo.commit({ ref: 'main', edits, message: `${n} task records`, author: { name: 'bench', email: 'bench@example.org' }, time: TIME })
    const commitMs = msSince(t0)
    await repo.close()
    const totalMs = msSince(t0)
    if (res.changes.added !== n) throw new Error(`pedigree commit added ${res.changes.added} entries, expected ${n}`)
    ped.push({ commitMs, totalMs })
    log(`  pedigree run ${r + 1}: commit ${commitMs.toFixed(0)} ms, + close ${(totalMs - commitMs).toFixed(0)} ms → ${fmtRate(n / (totalMs / 1000))}`)
    removeDir(dir)
  }

  // git: the same records as blobs at the same paths in one commit, through fast-import.
  const fi = new FastImport()
  const files = items.map((it) => [it.path, fi.blob(JSON.stringify(it.value))])
  fi.commit('refs/heads/main', { message: `${n} task records`, time: TIME, files })
  const stream = fi.toBuffer()
  const work = tempDir('commit-git')
  const streamFile = join(work, 'stream.fi')
  writeFileSync(streamFile, stream)
  // Each run imports into a fresh `git init` repo (untimed), one directory per malloc setting;
  // the settings take turns, run by run.
  const variants = Object.keys(GIT_MALLOC)
  const jobs = variants.map((v) => {
    const dir = join(work, v)
    return gitJob(v, work, ['-C', dir, 'fast-import', '--quiet', '--done'], {
      malloc: v,
      inputFile: streamFile,
      pre: [['rm', ['-rf', dir]], ['git', ['init', '-q', '-b', 'main', dir]]],
    })
  })
  const { times: gitRuns } = timeJobs(jobs, { runs, warmup: 0 })
  for (const v of variants) {
    const count = git(join(work, v), ['ls-tree', '-r', '--name-only', 'main']).stdout.toString().split('\n').filter(Boolean).length
    if (count !== n) throw new Error(`git tree has ${count} paths, expected ${n}`)
    log(`  git fast-import (${v} malloc): ${gitRuns[v].map((ms) => `${ms.toFixed(0)} ms`).join(', ')} → median ${fmtRate(n / (median(gitRuns[v]) / 1000))}`)
  }
  removeDir(work)

  const pedMs = median(ped.map((p) => p.totalMs))
  const gitMedians = Object.fromEntries(variants.map((v) => [v, median(gitRuns[v])]))
  const peer = variants.reduce((best, v) => (gitMedians[v] < gitMedians[best] ? v : best))
  const gitMs = gitMedians[peer]
  const pedRate = n / (pedMs / 1000)
  const gitRate = n / (gitMs / 1000)
  return {
    n,
    avgJson: jsonBytes / n,
    streamBytes: stream.length,
    pedMs,
    pedCommitMs: median(ped.map((p) => p.commitMs)),
    pedRate,
    gitMedians,
    peer,
    gitMs,
    gitRate,
    met: { floor: pedRate >= 30_000, git: pedRate >= gitRate },
    runs: { ped, git: gitRuns },
  }
}
