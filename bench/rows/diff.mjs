// Row 2: diff two N-entry trees that differ in K entries, pedigree (in-process) vs git diff-tree.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Repository } from '../../dist/index.js'
import { encodeNode } from '../../dist/codec/block.js'
import { FastImport, GIT_MALLOC, childEnv, fastImport, fmtMs, git, gitInit, gitJob, mallocEnv, median, msSince, now, pickDistinct, prng, removeDir, tempDir, timeJobs } from '../lib.mjs'

const WORKER = fileURLToPath(new URL('./diff-worker.mjs', import.meta.url))

const TIME = Date.UTC(2026, 10, 22, 12, 0, 0)

const pathOf = (dir, file) => `runs/${String(dir).padStart(3, '0')}/${String(file).padStart(4, '0')}.json`
const valueOf = (dir, file, version) => ({ run: dir, task: file, version })

export async function diffRow({ dirs, filesPerDir, changes, runs, gitRuns, log }) {
  const n = dirs * filesPerDir
  const changed = pickDistinct(prng(7), n, changes)
  const info = {}

  // ---- pedigree
  const dir = tempDir('diff')
  const root = join(dir, '.pedigree')
  let repo = await Repository.init(root)
  let t0 = now()
  let entries = []
  for (let d = 0; d < dirs; d++) {
    for (let f = 0; f < filesPerDir; f++) {
      const block = encodeNode(valueOf(d, f, 0))
      entries.push([pathOf(d, f), { cid: block.cid, kind: 'record', size: block.bytes.length }])
    }
  }
  info.entriesMs = msSince(t0)
  t0 = now()
  const a = await repo.trees.build(entries)
  info.buildMs = msSince(t0)
  entries = null
  log(`  pedigree: ${n} entries made in ${info.entriesMs.toFixed(0)} ms, ProllyTree.build ${info.buildMs.toFixed(0)} ms`)
  const edits = changed.map((i) => {
    const d = Math.floor(i / filesPerDir)
    const f = i % filesPerDir
    const block = encodeNode(valueOf(d, f, 1))
    return { path: pathOf(d, f), entry: { cid: block.cid, kind: 'record', size: block.bytes.length } }
  })
  t0 = now()
  const b = await repo.trees.edit(a, edits)
  info.editMs = msSince(t0)
  log(`  pedigree: edit of ${changes} entries ${info.editMs.toFixed(1)} ms`)
  // Close the store (LevelDB finishes its background compaction on close), then time the
  // diffs in a fresh process: a small heap, and a fresh ProllyTree (cold node cache) per run.
  await repo.close()
  const w = spawnSync(process.execPath, [WORKER, root, a.toString(), b.toString(), String(runs), String(changes)], {
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (w.status !== 0) throw new Error(`diff worker failed: ${String(w.stderr).slice(0, 2000)}`)
  const worker = JSON.parse(w.stdout.toString('utf8'))
  const ped = worker.times
  Object.assign(info, { nodeReads: worker.nodeReads, nodeBytes: worker.nodeBytes, warmMs: worker.warmMs })
  log(`  pedigree diff (fresh process, cold node cache): ${ped.map(fmtMs).join(', ')}`)
  removeDir(dir)

  // ---- git: the same paths, runs/NNN/NNNN.json, commit A, change K blobs, commit B
  const gdir = tempDir('diff-git')
  gitInit(gdir)
  const fi = new FastImport()
  const filesA = []
  for (let d = 0; d < dirs; d++) for (let f = 0; f < filesPerDir; f++) filesA.push([pathOf(d, f), fi.blob(JSON.stringify(valueOf(d, f, 0)) + '\n')])
  const markA = fi.commit('refs/heads/a', { message: 'A', time: TIME, files: filesA })
  const filesB = changed.map((i) => {
    const d = Math.floor(i / filesPerDir)
    const f = i % filesPerDir
    return [pathOf(d, f), fi.blob(JSON.stringify(valueOf(d, f, 1)) + '\n')]
  })
  fi.commit('refs/heads/b', { from: `:${markA}`, message: 'B', time: TIME + 1000, files: filesB })
  info.gitImportMs = fastImport(gdir, fi.toBuffer())
  log(`  git: fast-import of ${n} + ${changes} blobs ${info.gitImportMs.toFixed(0)} ms`)
  const [A, B] = git(gdir, ['rev-parse', 'a', 'b']).stdout.toString().trim().split('\n')
  // git runs under each malloc setting, on the pack fast-import wrote and after a full
  // repack; the peer is the fastest of these.
  // git runs under each malloc setting, on the pack fast-import wrote and after a full
  // repack; the peer is the fastest of these.
  const gitVariants = {}
  const timeDiffTree = (packing) => {
    const mallocs = Object.keys(GIT_MALLOC)
    const jobs = mallocs.map((m) => gitJob(m, gdir, ['diff-tree', '-r', A, B], { malloc: m }))
    const { times, stdout } = timeJobs(jobs, { runs: gitRuns, warmup: 1 })
    for (const m of mallocs) {
      const lines = stdout[m].split('\n').filter(Boolean)
      if (lines.length !== changes) throw new Error(`git diff-tree printed ${lines.length} lines, expected ${changes}`)
      gitVariants[`${packing}/${m}`] = { packing, malloc: m, ms: median(times[m]), times: times[m] }
      log(`  git diff-tree (${packing}, ${m} malloc): ${times[m].map((t) => t.toFixed(1)).join(', ')} ms`)
    }
  }
  timeDiffTree('fast-import pack')
  t0 = now()
  git(gdir, ['repack', '-a', '-d', '-f', '-q'], { env: mallocEnv('numeric') })
  info.gitRepackMs = msSince(t0)
  timeDiffTree('after git repack -a -d -f')
  removeDir(gdir)

  const pedMs = median(ped)
  const peer = Object.values(gitVariants).reduce((best, v) => (v.ms < best.ms ? v : best))
  const gitMs = peer.ms
  return {
    n,
    dirs,
    filesPerDir,
    changes,
    pedMs,
    gitMs,
    gitVariants,
    peer,
    info,
    met: { abs: pedMs <= 100, git: gitMs / pedMs >= 10 },
    runs: { ped },
  }
}
