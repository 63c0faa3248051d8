#!/usr/bin/env node
// Many writers on one store: W processes (default 16), each committing N times (default 100)
// to the same ref through the CLI, one distinct record per commit, all at once; beside W git
// processes doing the same in one repository (`git add` + `git commit`, as a workflow script
// would). Reports commits/s, how many commands failed (and why), and how many commits are
// lost: a command that exited 0 but whose record or commit is not in the final history.
// The pedigree row runs twice: each process waiting for the store's lock, and with a
// `pedigree daemon` holding the store so that every command goes through it.
//
//   node bench/writers.mjs [--quick] [--writers=16] [--commits=100] [--git-retries=20]
//
// Uses dist/ through bin/run.js (refresh it with `npx tsc -p tsconfig.build.json`). Prints a
// JSON array of rows on stdout; progress on stderr. --quick: 16 writers x 5 commits.
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync, mkdirSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { childEnv, gitEnv, tempDir, removeDir } from './lib.mjs'

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
// PEDIGREE_BIN: another build's bin/run.js (a snapshot, so that a rebuild of dist/ mid-run cannot break commands).
const BIN = process.env.PEDIGREE_BIN ?? join(ROOT, 'bin/run.js')
const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const arg = (name, dflt) => {
  const a = argv.find((x) => x.startsWith(`--${name}=`))
  return a ? Number(a.slice(name.length + 3)) : dflt
}
const WRITERS = arg('writers', 16)
const COMMITS = arg('commits', quick ? 5 : 100)
const GIT_RETRIES = arg('git-retries', 20)
const progress = (s) => process.stderr.write(s + '\n')

/** Run a process to completion; resolves with its exit code, output and wall time. */
function run(cmd, args, { cwd, env, input }) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const child = spawn(cmd, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Number(process.hrtime.bigint() - t0) / 1e6 }))
    child.stdin.on('error', () => {})
    child.stdin.end(input ?? '')
  })
}

const pct = (values, p) => {
  const s = [...values].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : 0
}

// ---------------------------------------------------------------------------------
// pedigree: every commit is `pedigree commit` of one record; the store admits one process at
// a time, the others wait for its lock (PEDIGREE_LOCK_TIMEOUT, default 30 s). With `daemon`,
// a `pedigree daemon` holds the store and every command goes through its unix socket.

/** Start `pedigree daemon --json` on `dir`; resolves once it listens, with the child process. */
function startDaemon(dir, env) {
  const child = spawn(process.execPath, [BIN, 'daemon', '--repo', dir, '--json'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    child.stdout.on('data', (d) => {
      out += d
      if (out.includes('\n')) resolve(child)
    })
    child.on('exit', (code) => reject(new Error(`pedigree daemon exited (${code}) before listening: ${out}${err}`)))
  })
}

async function pedigreeRow({ daemon = false } = {}) {
  const dir = tempDir('writers')
  const env = childEnv({ PEDIGREE_AUTHOR: 'bench <bench@example.org>' })
  delete env.PEDIGREE_REPO
  delete env.PEDIGREE_LOCK_TIMEOUT
  const init = await run(process.execPath, [BIN, 'init', dir], { cwd: dir, env })
  if (init.code !== 0) throw new Error(`pedigree init failed: ${init.stderr}`)
  const server = daemon ? await startDaemon(dir, env) : undefined
  const outcomes = []
  let done = 0
  const t0 = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; i < COMMITS; i++) {
        const record = JSON.stringify({ writer: w, seq: i, pid_hint: `w${w}` })
        const r = await run(
          process.execPath,
          [BIN, 'commit', '--repo', dir, '-b', 'main', '-m', `writer ${w} commit ${i}`, '--record', `writers/${w}/${i}.json=-`, '--json'],
          { cwd: dir, env, input: record },
        )
        let code = null
        let cid = null
        try {
          const json = JSON.parse(r.stdout)
          code = json.error?.code ?? null
          cid = json.cid ?? null
        } catch {}
        outcomes.push({ w, i, exit: r.code, code, cid, ms: r.ms, stderr: r.code === 0 ? undefined : (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ').slice(0, 300) })
        if (++done % 50 === 0) progress(`pedigree${daemon ? ' via daemon' : ''}: ${done}/${WRITERS * COMMITS} commands done`)
      }
    }),
  )
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const log = await run(process.execPath, [BIN, 'log', 'main', '--repo', dir, '--json'], { cwd: dir, env })
  const history = JSON.parse(log.stdout)
  const ls = await run(process.execPath, [BIN, 'ls', 'main', 'writers/', '--repo', dir, '--json'], { cwd: dir, env })
  const entries = JSON.parse(ls.stdout)
  const paths = new Set(entries.map((e) => e.path))
  const cids = new Set(history.map((c) => c.cid))
  const ok = outcomes.filter((o) => o.exit === 0)
  const lost = ok.filter((o) => !cids.has(o.cid) || !paths.has(`writers/${o.w}/${o.i}.json`))
  const fsck = await run(process.execPath, [BIN, 'fsck', '--repo', dir], { cwd: dir, env })
  if (server) {
    const exited = new Promise((resolve) => server.on('exit', resolve))
    server.kill('SIGTERM')
    await exited
  }
  const failures = {}
  for (const o of outcomes) if (o.exit !== 0) failures[o.code ?? `exit ${o.exit}`] = (failures[o.code ?? `exit ${o.exit}`] ?? 0) + 1
  const failureSamples = outcomes.filter((o) => o.exit !== 0).slice(0, 5).map((o) => `writer ${o.w} commit ${o.i}: exit ${o.exit}: ${o.stderr}`)
  removeDir(dir)
  return {
    system: daemon ? 'pedigree via daemon' : 'pedigree',
    how: daemon
      ? '`pedigree commit --record writers/W/I.json=- -b main` per commit while `pedigree daemon` holds the store; each command goes through its unix socket (no lock wait)'
      : '`pedigree commit --record writers/W/I.json=- -b main` per commit; each process waits for the store lock (PEDIGREE_LOCK_TIMEOUT 30 s)',
    writers: WRITERS,
    commitsPerWriter: COMMITS,
    attempted: outcomes.length,
    succeeded: ok.length,
    failed: outcomes.length - ok.length,
    failures,
    failureSamples,
    commitsInHistory: history.length,
    recordsInTree: paths.size,
    lost: lost.length,
    seconds: +seconds.toFixed(1),
    commitsPerSecond: +(ok.length / seconds).toFixed(2),
    commandMs: { p50: Math.round(pct(outcomes.map((o) => o.ms), 50)), p99: Math.round(pct(outcomes.map((o) => o.ms), 99)), max: Math.round(Math.max(...outcomes.map((o) => o.ms))) },
    fsckExit: fsck.code,
  }
}

// ---------------------------------------------------------------------------------
// git: one repository with a work tree; each commit is `git add` of a new file and `git commit`.
// git takes .git/index.lock (and the ref's lock) without waiting: a second process fails at
// once ("Unable to create '.../index.lock': File exists"). With retries, `git add` and
// `git commit` are run again after a short random pause, as a careful workflow script would.

/**
 * Why a git command failed. Besides the locks, a file just staged by `git add` can vanish from
 * the shared index when another process's `git commit` rewrites the index from its own copy;
 * the `git commit -- path` that follows then says the pathspec matches no file known to git.
 */
function gitReason(stderr) {
  if (/index\.lock/.test(stderr)) return 'index.lock exists'
  if (/cannot lock ref/.test(stderr)) return 'ref moved or locked (cannot lock ref)'
  if (/pathspec .* did not match/.test(stderr)) return 'staged file dropped from the shared index by a concurrent commit (pathspec did not match)'
  return stderr.split('\n')[0].slice(0, 80)
}
/** Failures a careful script retries (running `git add` and `git commit` again). */
const RETRYABLE = /index\.lock|cannot lock ref|pathspec .* did not match/

async function gitRow(retries) {
  const dir = tempDir('writers-git')
  const env = gitEnv({ GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@example.org', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@example.org' })
  const git = (args, input) => run('git', args, { cwd: dir, env, input })
  spawnSync('git', ['init', '-q', '-b', 'main', dir], { env })
  writeFileSync(join(dir, 'README'), 'writers\n')
  await git(['add', 'README'])
  const first = await git(['commit', '-q', '-m', 'start'])
  if (first.code !== 0) throw new Error(`git commit failed: ${first.stderr}`)
  const outcomes = []
  let done = 0
  const t0 = process.hrtime.bigint()
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
      mkdirSync(join(dir, 'writers', String(w)), { recursive: true })
      for (let i = 0; i < COMMITS; i++) {
        const path = `writers/${w}/${i}.json`
        writeFileSync(join(dir, path), JSON.stringify({ writer: w, seq: i, pid_hint: `w${w}` }))
        const started = process.hrtime.bigint()
        let attempt = 0
        let result
        for (;;) {
          const add = await git(['add', path])
          result = add.code !== 0 ? add : await git(['commit', '-q', '-m', `writer ${w} commit ${i}`, '--', path])
          if (result.code === 0 || attempt >= retries || !RETRYABLE.test(result.stderr)) break
          attempt++
          await new Promise((r) => setTimeout(r, 10 + Math.random() * 90))
        }
        const reason = result.code === 0 ? null : gitReason(result.stderr)
        outcomes.push({ w, i, exit: result.code, reason, attempts: attempt + 1, ms: Number(process.hrtime.bigint() - started) / 1e6 })
        if (++done % 50 === 0) progress(`git (${retries} retries): ${done}/${WRITERS * COMMITS} commands done`)
      }
    }),
  )
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const log = await git(['log', '--format=%s', 'main'])
  const subjects = new Set(log.stdout.split('\n').filter(Boolean))
  const tree = await git(['ls-tree', '-r', '--name-only', 'main', 'writers/'])
  const paths = new Set(tree.stdout.split('\n').filter(Boolean))
  const ok = outcomes.filter((o) => o.exit === 0)
  const lost = ok.filter((o) => !subjects.has(`writer ${o.w} commit ${o.i}`) || !paths.has(`writers/${o.w}/${o.i}.json`))
  const fsck = await git(['fsck', '--no-progress'])
  const failures = {}
  for (const o of outcomes) if (o.exit !== 0) failures[o.reason] = (failures[o.reason] ?? 0) + 1
  removeDir(dir)
  return {
    system: retries ? `git, retried up to ${retries} times` : 'git',
    how: `\`git add writers/W/I.json && git commit -- writers/W/I.json\` per commit in one work tree${retries ? `; on a lock error or a dropped staged file both run again after 10–100 ms, up to ${retries} times` : '; no retry'}`,
    writers: WRITERS,
    commitsPerWriter: COMMITS,
    attempted: outcomes.length,
    succeeded: ok.length,
    failed: outcomes.length - ok.length,
    failures,
    commitsInHistory: subjects.size - 1,
    recordsInTree: paths.size,
    lost: lost.length,
    seconds: +seconds.toFixed(1),
    commitsPerSecond: +(ok.length / seconds).toFixed(2),
    commandMs: { p50: Math.round(pct(outcomes.map((o) => o.ms), 50)), p99: Math.round(pct(outcomes.map((o) => o.ms), 99)), max: Math.round(Math.max(...outcomes.map((o) => o.ms))) },
    attemptsMax: Math.max(...outcomes.map((o) => o.attempts)),
    fsckExit: fsck.code,
  }
}

const rows = []
progress(`${WRITERS} writers x ${COMMITS} commits each, to one ref`)
rows.push(await pedigreeRow())
progress(JSON.stringify(rows.at(-1)))
rows.push(await pedigreeRow({ daemon: true }))
progress(JSON.stringify(rows.at(-1)))
rows.push(await gitRow(0))
progress(JSON.stringify(rows.at(-1)))
rows.push(await gitRow(GIT_RETRIES))
progress(JSON.stringify(rows.at(-1)))
process.stdout.write(JSON.stringify(rows, null, 2) + '\n')
