// Row 3: `log -n 20` on an N-commit history, whole process: pedigree CLI vs a minimal
// oclif command (`--version`) vs `git log -n 20`.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Repository } from '../../dist/index.js'
import { FastImport, GIT_MALLOC, childEnv, fastImport, git, gitInit, gitJob, mallocEnv, median, msSince, now, prng, removeDir, taskRecord, tempDir, timeJobs } from '../lib.mjs'

const RUN_JS = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
const TIME = Date.UTC(2026, 10, 22, 12, 0, 0)

export async function logRow({ commits, paths, runs, log }) {
  const info = {}
  const rand = prng(3)
  const values = []
  for (let i = 0; i < commits; i++) values.push(taskRecord(rand, 'wf-0001', i))
  const pathOf = (i) => `tasks/${String(i % paths).padStart(4, '0')}.json`

  // ---- pedigree history: one repo.commit per record, in-process
  const dir = tempDir('log')
  const root = join(dir, '.pedigree')
  const repo = await Repository.init(root)
  let t0 = now()
  for (let i = 0; i < commits; i++) {
    await repo.commit({
      ref: 'main',
      edits: [{ type: 'record', path: pathOf(i), value: values[i] }],
      message: `task ${values[i].task_id}: ${values[i].status}`,
      author: { name: 'bench', email: 'bench@example.org' },
      time: TIME + i * 1000,
    })
    if ((i + 1) % Math.max(1, Math.floor(commits / 5)) === 0) log(`  pedigree: ${i + 1} commits, ${(msSince(t0) / 1000).toFixed(1)} s`)
  }
  info.pedCreateMs = msSince(t0)
  await repo.close()

  // ---- git history: the same commits through fast-import
  const gdir = tempDir('log-git')
  gitInit(gdir)
  const fi = new FastImport()
  for (let i = 0; i < commits; i++) {
    const mark = fi.blob(JSON.stringify(values[i]))
    fi.commit('refs/heads/main', { message: `task ${values[i].task_id}: ${values[i].status}`, time: TIME + i * 1000, files: [[pathOf(i), mark]] })
  }
  info.gitCreateMs = fastImport(gdir, fi.toBuffer())
  log(`  git: ${commits} commits through fast-import in ${(info.gitCreateMs / 1000).toFixed(1)} s`)

  // ---- timed commands, whole process, from a fresh small process (bench/timer.mjs),
  // interleaved run by run so that drift in the machine's load hits all of them alike
  const env = childEnv()
  const jobs = [
    { name: 'nodeBare', cmd: process.execPath, args: ['-e', '0'], cwd: dir, env },
    { name: 'version', cmd: process.execPath, args: [RUN_JS, '--version'], cwd: dir, env },
    { name: 'pedLog', cmd: process.execPath, args: [RUN_JS, 'log', '-n', '20', '--repo', root], cwd: dir, env },
  ]
  const check = (name, stdout) => {
    const n = (stdout.match(/^commit /gm) ?? []).length
    if (n !== 20) throw new Error(`${name} printed ${n} commits, expected 20`)
  }
  const { times, stdout } = timeJobs(jobs, { runs, warmup: 1 })
  check('pedigree log', stdout.pedLog)
  log('  ' + Object.entries(times).map(([k, v]) => `${k} ${median(v).toFixed(1)} ms`).join(', '))
  // git log under each malloc setting, on the pack fast-import wrote and after `git gc`
  // (full repack plus commit-graph); the peer is the fastest.
  const gitVariants = {}
  const timeGitLog = (packing) => {
    const mallocs = Object.keys(GIT_MALLOC)
    const r = timeJobs(mallocs.map((m) => gitJob(m, gdir, ['log', '-n', '20'], { malloc: m })), { runs, warmup: 1 })
    for (const m of mallocs) {
      check('git log', r.stdout[m])
      gitVariants[`${packing}/${m}`] = { packing, malloc: m, ms: median(r.times[m]), times: r.times[m] }
    }
    log(`  git log -n 20 (${packing}): ` + mallocs.map((m) => `${m} malloc ${median(r.times[m]).toFixed(1)} ms`).join(', '))
  }
  timeGitLog('fast-import pack')
  t0 = now()
  git(gdir, ['gc', '-q'], { env: mallocEnv('numeric') })
  info.gitGcMs = msSince(t0)
  timeGitLog('after git gc')
  removeDir(dir)
  removeDir(gdir)

  const pedMs = median(times.pedLog)
  const versionMs = median(times.version)
  const peer = Object.values(gitVariants).reduce((best, v) => (v.ms < best.ms ? v : best))
  const gitMs = peer.ms
  return {
    commits,
    paths,
    pedMs,
    versionMs,
    nodeMs: median(times.nodeBare),
    gitMs,
    gitVariants,
    peer,
    info,
    met: { oclif: pedMs <= 1.3 * versionMs },
    runs: times,
  }
}
