// Rows 2 and 19: diff two N-entry trees that differ in K entries, pedigree (in-process) vs git
// diff-tree. Row 2 lays the paths out as `dirs` directories of `filesPerDir` files
// (runs/NNN/NNNN.json), git's good case: a change touches one small tree object. Row 19 puts
// every file in one directory (runs/NNNNNNN.json), as a beamline's frames or a sweep's runs
// often are: git then reads and compares two tree objects of N entries. pedigree's tree is
// keyed by full path, so its work is the same in both.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Repository } from '../../dist/index.js'
import { encodeNode } from '../../dist/codec/block.js'
import { FastImport, GIT_MALLOC, childEnv, fastImport, fmtMs, git, gitInit, gitJob, mallocEnv, median, msSince, now, pickDistinct, prng, removeDir, tempDir, timeJobs } from '../lib.mjs'

const WORKER = fileURLToPath(new URL('./diff-worker.mjs', import.meta.url))
/** Diffs an in-process run makes first, untimed, each against a tree of its own. */
const WARMUPS = 3

const TIME = Date.UTC(2026, 10, 22, 12, 0, 0)

const nestedPath = (i, filesPerDir) => `runs/${String(Math.floor(i / filesPerDir)).padStart(3, '0')}/${String(i % filesPerDir).padStart(4, '0')}.json`
const flatName = (i) => `${String(i).padStart(7, '0')}.json`
/** Entry i's record: the same values in both layouts, only the paths differ. */
const valueOf = (i, filesPerDir, version) => ({ run: Math.floor(i / filesPerDir), task: i % filesPerDir, version })

/** git's blob id of `text` (SHA-1 of "blob <length>\0" and the bytes). */
const blobId = (text) => {
  const bytes = Buffer.from(text, 'utf8')
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex')
}

/**
 * layout 'nested': `dirs` × `filesPerDir` files; 'flat': `dirs` × `filesPerDir` files in one
 * directory, runs/NNNNNNN.json (the values are the same; filesPerDir only numbers them).
 */
export async function diffRow({ layout = 'nested', dirs, filesPerDir, changes, runs, gitRuns, log }) {
  const n = dirs * filesPerDir
  const pathOf = layout === 'flat' ? (i) => `runs/${flatName(i)}` : (i) => nestedPath(i, filesPerDir)
  const changed = pickDistinct(prng(7), n, changes)
  const info = {}

  // ---- pedigree
  const dir = tempDir('diff')
  const root = join(dir, '.pedigree')
  const repo = await Repository.init(root)
  /** Entry i's tree entry at `version` (its record is encoded for the CID, not stored). */
  const entryOf = (i, version) => {
    const block = encodeNode(valueOf(i, filesPerDir, version))
    return { cid: block.cid, kind: 'record', size: block.bytes.length }
  }
  let t0 = now()
  let entries = []
  for (let i = 0; i < n; i++) entries.push([pathOf(i), entryOf(i, 0)])
  info.entriesMs = msSince(t0)
  t0 = now()
  const a = await repo.trees.build(entries)
  info.buildMs = msSince(t0)
  entries = null
  log(`  pedigree: ${n} entries made in ${info.entriesMs.toFixed(0)} ms, ProllyTree.build ${info.buildMs.toFixed(0)} ms`)
  const editOf = (indexes, version) => indexes.map((i) => ({ path: pathOf(i), entry: entryOf(i, version) }))
  t0 = now()
  const b = await repo.trees.edit(a, editOf(changed, 1))
  info.editMs = msSince(t0)
  log(`  pedigree: edit of ${changes} entries ${info.editMs.toFixed(1)} ms`)
  // For the in-process runs: other trees that differ from A in `changes` other entries each,
  // so that every timed diff reads nodes that no earlier diff in the process has read (only
  // the few nodes near the root are shared), and WARMUPS more to compile the code on.
  const others = []
  for (let k = 0; k < WARMUPS + runs; k++) others.push((await repo.trees.edit(a, editOf(pickDistinct(prng(100 + k), n, changes), 2 + k))).toString())
  // Close the store (LevelDB finishes its background compaction on close), then time the
  // diffs in fresh processes with a small heap: `runs` processes that each open the store and
  // diff A and B once (cold: as `pedigree diff` does), and one process that diffs A and each
  // of the other trees after WARMUPS untimed ones (in-process: as a library or `pedigree serve` does).
  await repo.close()
  const worker = (args) => {
    const w = spawnSync(process.execPath, [WORKER, root, String(changes), ...args], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    if (w.status !== 0) throw new Error(`diff worker failed: ${String(w.stderr).slice(0, 2000)}`)
    return JSON.parse(w.stdout.toString('utf8'))
  }
  const cold = []
  for (let r = 0; r < runs; r++) cold.push(worker(['cold', a.toString(), b.toString()]).times[0])
  const warm = worker(['warm', a.toString(), b.toString(), String(WARMUPS), ...others])
  const ped = warm.times
  Object.assign(info, { nodeReads: warm.nodeReads, nodeBytes: warm.nodeBytes, cachedMs: warm.cachedMs, coldMs: median(cold) })
  log(`  pedigree diff, cold (first diff in a fresh process): ${cold.map(fmtMs).join(', ')}`)
  log(`  pedigree diff, in-process (code warm, nodes not cached): ${ped.map(fmtMs).join(', ')}`)
  removeDir(dir)

  // ---- git: the same paths, commit A, change K blobs, commit B
  const gdir = tempDir('diff-git')
  gitInit(gdir)
  const text = (i, version) => JSON.stringify(valueOf(i, filesPerDir, version)) + '\n'
  const fi = new FastImport()
  let A, B
  if (layout === 'flat') {
    // fast-import keeps a directory's entries in a list it searches per path, so a directory
    // of a million files takes it hours; the blobs go through fast-import and the two trees
    // through `git mktree`, the commits through `git commit-tree`.
    const idsA = []
    for (let i = 0; i < n; i++) {
      fi.blob(text(i, 0))
      idsA.push(blobId(text(i, 0)))
    }
    const idsB = idsA.slice()
    for (const i of changed) {
      fi.blob(text(i, 1))
      idsB[i] = blobId(text(i, 1))
    }
    t0 = now()
    fastImport(gdir, fi.toBuffer())
    const mktree = (lines) => git(gdir, ['mktree'], { input: Buffer.from(lines) }).stdout.toString().trim()
    const commitOf = (ids, message, parent) => {
      const runsTree = mktree(ids.map((id, i) => `100644 blob ${id}\t${flatName(i)}\n`).join(''))
      const root = mktree(`040000 tree ${runsTree}\truns\n`)
      const env = { GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@example.org', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@example.org' }
      return git(gdir, ['commit-tree', root, ...(parent ? ['-p', parent] : []), '-m', message], { env }).stdout.toString().trim()
    }
    A = commitOf(idsA, 'A')
    B = commitOf(idsB, 'B', A)
    info.gitImportMs = msSince(t0)
    log(`  git: fast-import of ${n} + ${changes} blobs, two trees by mktree and two commits ${info.gitImportMs.toFixed(0)} ms`)
  } else {
    const filesA = []
    for (let i = 0; i < n; i++) filesA.push([pathOf(i), fi.blob(text(i, 0))])
    const markA = fi.commit('refs/heads/a', { message: 'A', time: TIME, files: filesA })
    const filesB = changed.map((i) => [pathOf(i), fi.blob(text(i, 1))])
    fi.commit('refs/heads/b', { from: `:${markA}`, message: 'B', time: TIME + 1000, files: filesB })
    info.gitImportMs = fastImport(gdir, fi.toBuffer())
    log(`  git: fast-import of ${n} + ${changes} blobs ${info.gitImportMs.toFixed(0)} ms`)
    ;[A, B] = git(gdir, ['rev-parse', 'a', 'b']).stdout.toString().trim().split('\n')
  }
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
  timeDiffTree(layout === 'flat' ? 'blobs in the fast-import pack, trees loose' : 'fast-import pack')
  t0 = now()
  git(gdir, ['repack', '-a', '-d', '-f', '-q'], { env: mallocEnv('numeric') })
  info.gitRepackMs = msSince(t0)
  timeDiffTree('after git repack -a -d -f')
  removeDir(gdir)

  const pedMs = median(ped)
  const peer = Object.values(gitVariants).reduce((best, v) => (v.ms < best.ms ? v : best))
  const gitMs = peer.ms
  return {
    layout,
    n,
    dirs,
    filesPerDir,
    changes,
    pedMs,
    gitMs,
    gitVariants,
    peer,
    info,
    met: { abs: pedMs <= 100 && info.coldMs <= 100, git: gitMs / pedMs >= 10 },
    runs: { ped, cold },
  }
}
