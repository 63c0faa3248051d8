#!/usr/bin/env node
// Sync over HTTP: `pedigree push` (a real process) to a `pedigree serve` (a real process) on
// loopback, beside `git push` of the same content to a local bare repository over file://
// (git's smart protocol between local processes: send-pack → receive-pack, no network).
//
//   node bench/sync-http.mjs [--quick] [--only=push,one-change,large]
//
// Uses dist/ (run `npx tsc -p tsconfig.build.json` first). Prints a JSON array of result rows
// on stdout; progress goes to stderr. --quick shrinks every size (a smoke run of ~20 s).
//
// Rows:
//   push-100k    push N task records (one commit) to an empty remote: records/s, whole process
//   noop-push    a push with nothing to send: ms, whole process (median)
//   one-change   one record changed in an N-record tree (1000 per folder): bytes on the wire
//                (counted by a TCP proxy in front of the server) and round trips; git: the
//                bytes of the thin pack its push sends for the same change
//   large-file   push one file of S bytes (pseudo-random, like model weights): MB/s, whole process
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { createServer, connect } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Repository, addRemote, removeRemote } from '../dist/index.js'
import { FastImport, childEnv, git, gitEnv, median, msSince, now, prng, removeDir, taskRecord, tempDir, timeJobs } from './lib.mjs'

const RUN_JS = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const quick = process.argv.includes('--quick')
const SIZES = quick
  ? { push: { records: 3_000, runs: 1 }, noop: { runs: 3 }, oneChange: { records: 10_000 }, large: { bytes: 32 * 2 ** 20, runs: 1 } }
  : { push: { records: 100_000, runs: 3 }, noop: { runs: 10 }, oneChange: { records: 1_000_000 }, large: { bytes: 512 * 2 ** 20, runs: 3 } }
const TIME = Date.UTC(2026, 10, 22, 12, 0, 0)
const WHO = { name: 'bench', email: 'bench@example.org' }
const log = (s) => process.stderr.write(s + '\n')

// ---------------------------------------------------------------------------------
// Processes

/** `pedigree serve` on an ephemeral port; resolves once it prints its URL. */
function startServe(store) {
  const child = spawn(process.execPath, [RUN_JS, 'serve', '--repo', store, '--port', '0', '--json', '--allow-anonymous-write'], {
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    child.stdout.on('data', (d) => {
      out += d
      const nl = out.indexOf('\n')
      if (nl >= 0) resolve({ url: JSON.parse(out.slice(0, nl)).url, cpuMs: () => processCpuMs(child.pid), stop: () => stop(child) })
    })
    child.on('exit', (code) => reject(new Error(`serve exited (${code}): ${err}`)))
  })
}

function stop(child) {
  if (child.exitCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.on('exit', resolve)
    child.kill('SIGTERM')
  })
}

/** Run the CLI asynchronously (the event loop keeps serving the proxy meanwhile); resolves with stdout. */
function cli(args) {
  const child = spawn(process.execPath, [RUN_JS, ...args], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`pedigree ${args.join(' ')} exited ${code}: ${err}${out}`))))
  })
}

/** Time one whole-process run of the CLI from a small timer process; also its CPU time (user + system, ms) through /usr/bin/time when there is one. */
function timeCli(args, name = 'ped') {
  const cpuFile = join(tmpdir(), `pedigree-bench-cpu-${process.pid}`)
  const timed = existsSync('/usr/bin/time')
  const job = timed
    ? { name, cmd: '/usr/bin/time', args: ['-f', '%U %S', '-o', cpuFile, process.execPath, RUN_JS, ...args], env: childEnv() }
    : { name, cmd: process.execPath, args: [RUN_JS, ...args], env: childEnv() }
  const { times, stdout } = timeJobs([job], { runs: 1, warmup: 0 })
  let cpuMs
  if (timed) {
    const [user, sys] = readFileSync(cpuFile, 'utf8').trim().split('\n').pop().split(' ').map(Number)
    cpuMs = Math.round((user + sys) * 1000)
    rmSync(cpuFile, { force: true })
  }
  return { ms: times[name][0], stdout: stdout[name], cpuMs }
}

/** CPU time (user + system, ms) a running process has used so far (Linux /proc), or undefined. */
function processCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 // clock ticks of 10 ms (USER_HZ 100)
  } catch {
    return undefined
  }
}

/** Point the store's remote `origin` at `url` (the store must not be open elsewhere). */
async function setOrigin(store, url) {
  const repo = await Repository.open(store)
  try {
    await removeRemote(repo, 'origin', { who: WHO }).catch(() => {})
    await addRemote(repo, 'origin', url)
  } finally {
    await repo.close()
  }
}

/** A TCP proxy in front of `url` that counts the bytes each way. */
async function countingProxy(url) {
  const target = new URL(url)
  const counts = { up: 0, down: 0, connections: 0 }
  const server = createServer((client) => {
    counts.connections++
    const upstream = connect(Number(target.port), target.hostname)
    client.on('data', (d) => (counts.up += d.length))
    upstream.on('data', (d) => (counts.down += d.length))
    client.pipe(upstream)
    upstream.pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts,
    reset: () => Object.assign(counts, { up: 0, down: 0, connections: 0 }),
    close: () => new Promise((r) => server.close(r)),
  }
}

// ---------------------------------------------------------------------------------
// Content

function taskItems(n) {
  const workflows = Math.max(1, Math.round(n / 1000))
  const perWorkflow = Math.ceil(n / workflows)
  const rand = prng(42)
  const items = []
  for (let i = 0; i < n; i++) {
    const wf = `wf-${String(Math.floor(i / perWorkflow)).padStart(4, '0')}`
    const value = taskRecord(rand, wf, i % perWorkflow)
    items.push({ path: `tasks/${wf}/${value.task_id}.json`, value })
  }
  return items
}

/** A pedigree store at `dir/.pedigree` with `items` committed in commits of at most `batch`. */
async function pedigreeStore(dir, items, batch = 100_000) {
  const root = join(dir, '.pedigree')
  const repo = await Repository.init(root)
  for (let i = 0; i < items.length; i += batch) {
    const edits = items.slice(i, i + batch).map((it) => ({ type: 'record', path: it.path, value: it.value }))
    await repo.commit({ ref: 'main', edits, message: `records ${i}-${i + edits.length}`, author: WHO, time: TIME + i })
  }
  await repo.close()
  return root
}

/** A git repository at `dir` with the same records as blobs (JSON text), in commits of at most `batch`. */
function gitRepo(dir, items, batch = 100_000) {
  mkdirSync(dir, { recursive: true })
  git(dir, ['init', '-q', '-b', 'main', '.'])
  const fi = new FastImport()
  let from
  for (let i = 0; i < items.length; i += batch) {
    const files = items.slice(i, i + batch).map((it) => [it.path, fi.blob(JSON.stringify(it.value))])
    from = `:${fi.commit('refs/heads/main', { from, message: `records ${i}`, time: TIME + i, files })}`
  }
  git(dir, ['fast-import', '--quiet', '--done'], { input: fi.toBuffer() })
  return dir
}

const gitPushJob = (src, bare, name = 'git', extra = []) => ({
  name,
  cmd: 'git',
  args: ['-C', src, ...extra, 'push', '-q', `file://${bare}`, 'main'],
  env: gitEnv(),
})

// ---------------------------------------------------------------------------------
// Rows

async function pushRow({ records: n, runs }) {
  log(`[push-100k] ${n} records, ${runs} run(s)`)
  const dir = tempDir('http-push')
  const cpu = []
  const items = taskItems(n)
  let t0 = now()
  const local = await pedigreeStore(join(dir, 'a'), items)
  log(`  local store built in ${msSince(t0).toFixed(0)} ms`)
  const ped = []
  let result
  for (let r = 0; r < runs; r++) {
    const hub = join(dir, `hub-${r}`, '.pedigree')
    await Repository.init(hub).then((x) => x.close())
    const server = await startServe(hub)
    await setOrigin(local, server.url)
    const server0 = server.cpuMs()
    const { ms, stdout, cpuMs } = timeCli(['push', '--repo', local, '--json'])
    const serverCpu = server.cpuMs() - server0
    await server.stop()
    result = JSON.parse(stdout)
    if (result.refs[0].status !== 'created') throw new Error(`push did not create main: ${stdout}`)
    ped.push(ms)
    cpu.push({ push: cpuMs, server: Math.round(serverCpu) })
    log(`  pedigree push run ${r + 1}: ${ms.toFixed(0)} ms (${Math.round(n / (ms / 1000))} records/s), ${result.blocks} blocks, ${result.roundTrips} round trips; CPU: push ${cpuMs} ms, server ${Math.round(serverCpu)} ms; load ${loadavg()[0].toFixed(1)}`)
    removeDir(join(dir, `hub-${r}`))
  }

  const src = gitRepo(join(dir, 'git-src'), items)
  const gitJobs = []
  for (let r = 0; r < runs; r++) {
    const bare = join(dir, `git-bare-${r}`)
    gitJobs.push({ ...gitPushJob(src, bare, `git-${r}`), pre: [['rm', ['-rf', bare]], ['git', ['init', '-q', '--bare', bare]]] })
  }
  const { times } = timeJobs(gitJobs, { runs: 1, warmup: 0 })
  const gitMs = Object.values(times).map((t) => t[0])
  log(`  git push (file://, empty bare repo): ${gitMs.map((m) => m.toFixed(0)).join(', ')} ms`)
  const pedMs = median(ped)
  const gMs = median(gitMs)
  removeDir(dir)
  return {
    row: 'push-100k',
    what: `push ${n} records (one commit) to an empty remote over loopback HTTP, whole process`,
    unit: 'records/s',
    pedigree: Math.round(n / (pedMs / 1000)),
    git: Math.round(n / (gMs / 1000)),
    target: '>= 20000',
    met: n / (pedMs / 1000) >= 20_000,
    detail: { records: n, pedigreeMs: ped, pedigreeCpuMs: cpu, gitMs, blocks: result.blocks, bytes: result.bytes, roundTrips: result.roundTrips, negotiationRounds: result.negotiationRounds },
  }
}

async function noopAndOneChangeRows({ noopRuns, records: n }) {
  log(`[noop-push, one-change] tree of ${n} records (1000 per folder)`)
  const dir = tempDir('http-1m')
  const pathOf = (i) => `runs/${String(Math.floor(i / 1000)).padStart(4, '0')}/${String(i % 1000).padStart(4, '0')}.json`
  const items = Array.from({ length: n }, (_, i) => ({ path: pathOf(i), value: { run: Math.floor(i / 1000), task: i % 1000, loss: Number((1 / (i + 1)).toFixed(9)) } }))
  let t0 = now()
  const local = await pedigreeStore(join(dir, 'a'), items)
  log(`  pedigree store built in ${msSince(t0).toFixed(0)} ms`)
  // The remote starts as a copy of the same store (identical blocks and refs).
  const hubDir = join(dir, 'hub')
  cpSync(join(dir, 'a'), hubDir, { recursive: true })
  const hub = join(hubDir, '.pedigree')
  const server = await startServe(hub)
  // No-op push: nothing to send (timed straight to the server; then once through the counting proxy).
  await setOrigin(local, server.url)
  const noopRuns_ = timeJobs([{ name: 'ped', cmd: process.execPath, args: [RUN_JS, 'push', '--repo', local, '--json'], env: childEnv() }], { runs: noopRuns, warmup: 1 })
  const noop = noopRuns_.times.ped
  const proxy = await countingProxy(server.url)
  await setOrigin(local, proxy.url)
  const noopResult = JSON.parse(await cli(['push', '--repo', local, '--json']))
  const noopWire = { ...proxy.counts }
  log(`  pedigree no-op push: ${noop.map((m) => m.toFixed(0)).join(', ')} ms; ${noopResult.roundTrips} round trip(s), ${noopWire.up} B up, ${noopWire.down} B down`)

  // One record changes.
  const repo = await Repository.open(local)
  const changed = pathOf(Math.floor(n / 2) + 17)
  await repo.commit({ ref: 'main', edits: [{ type: 'record', path: changed, value: { run: 0, task: 0, loss: 0, note: 'recomputed' } }], message: 'one change', author: WHO, time: TIME + n + 1 })
  await repo.close()
  proxy.reset()
  t0 = now()
  const one = JSON.parse(await cli(['push', '--repo', local, '--json']))
  const oneMs = msSince(t0)
  const wire = { ...proxy.counts }
  log(`  pedigree push of one change: ${one.blocks} blocks, ${one.bytes} B of blocks, ${wire.up} B up / ${wire.down} B down on the wire, ${one.roundTrips} round trips, ${oneMs.toFixed(0)} ms`)
  await proxy.close()
  await server.stop()

  // git: the same tree, a bare copy, then the same one change.
  t0 = now()
  const src = gitRepo(join(dir, 'git-src'), items)
  log(`  git repo built in ${msSince(t0).toFixed(0)} ms`)
  const bare = join(dir, 'git-bare')
  git(dir, ['clone', '-q', '--bare', src, bare])
  const gitNoop = timeJobs([gitPushJob(src, bare)], { runs: noopRuns, warmup: 0 }).times.git
  log(`  git no-op push: ${gitNoop.map((m) => m.toFixed(0)).join(', ')} ms`)
  const before = git(src, ['rev-parse', 'main']).stdout.toString().trim()
  const fi = new FastImport()
  const blob = fi.blob(JSON.stringify({ run: 0, task: 0, loss: 0, note: 'recomputed' }))
  fi.commit('refs/heads/main', { from: before, message: 'one change', time: TIME + n + 1, files: [[changed, blob]] })
  git(src, ['fast-import', '--quiet', '--done'], { input: fi.toBuffer() })
  const after = git(src, ['rev-parse', 'main']).stdout.toString().trim()
  // What `git push` sends for it: a thin pack of the objects the remote lacks.
  const pack = git(src, ['pack-objects', '--revs', '--thin', '--stdout', '-q'], { input: `${after}\n^${before}\n` }).stdout
  const gitPushMs = timeJobs([gitPushJob(src, bare)], { runs: 1, warmup: 0 }).times.git[0]
  log(`  git push of one change: thin pack ${pack.length} B, ${gitPushMs.toFixed(0)} ms`)
  removeDir(dir)

  return [
    {
      row: 'noop-push',
      what: 'a push with nothing to send (remote up to date), whole process',
      unit: 'ms',
      pedigree: Math.round(median(noop)),
      git: Math.round(median(gitNoop)),
      target: '<= 300',
      met: median(noop) <= 300,
      detail: { pedigreeMs: noop, gitMs: gitNoop, roundTrips: noopResult.roundTrips, wireBytesUp: noopWire.up, wireBytesDown: noopWire.down },
    },
    {
      row: 'one-change',
      what: `push after one record changed in a ${n}-record tree (1000 records per folder)`,
      unit: 'bytes sent',
      pedigree: wire.up,
      git: pack.length,
      target: '<= 65536 bytes, <= 8 round trips',
      met: wire.up <= 65_536 && one.roundTrips <= 8,
      detail: {
        records: n,
        roundTrips: one.roundTrips,
        negotiationRounds: one.negotiationRounds,
        blocks: one.blocks,
        blockBytes: one.bytes,
        wireBytesUp: wire.up,
        wireBytesDown: wire.down,
        pedigreeMs: oneMs,
        gitThinPackBytes: pack.length,
        gitRoundTrips: 'one connection: ref advertisement, then the pack',
        gitPushMs,
      },
    },
  ]
}

async function largeFileRow({ bytes, runs }) {
  log(`[large-file] ${bytes} bytes, ${runs} run(s)`)
  const dir = tempDir('http-large')
  // Pseudo-random bytes (weights barely compress), deterministic.
  const data = Buffer.allocUnsafe(bytes)
  const words = new Uint32Array(data.buffer, data.byteOffset, bytes >>> 2)
  let x = 0x9e3779b9
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    words[i] = x >>> 0
  }
  const file = join(dir, 'weights.bin')
  writeFileSync(file, data)
  const local = join(dir, 'a', '.pedigree')
  await Repository.init(local).then((r) => r.close())
  let t0 = now()
  await cli(['commit', '--repo', local, '-m', 'checkpoint', `model/weights.bin=${file}`])
  log(`  pedigree commit of the file: ${msSince(t0).toFixed(0)} ms`)
  const ped = []
  const cpu = []
  for (let r = 0; r < runs; r++) {
    const hub = join(dir, `hub-${r}`, '.pedigree')
    await Repository.init(hub).then((x) => x.close())
    const server = await startServe(hub)
    await setOrigin(local, server.url)
    // Untimed: let the disk finish writing what came before (the commit of the file, the last
    // run's hub), so that a run does not pay for earlier writeback. git's runs get the same.
    spawnSync('sync')
    const server0 = server.cpuMs()
    const { ms, stdout, cpuMs } = timeCli(['push', '--repo', local, '--json'])
    const serverCpu = server.cpuMs() - server0
    await server.stop()
    const res = JSON.parse(stdout)
    ped.push(ms)
    cpu.push({ push: cpuMs, server: Math.round(serverCpu) })
    log(`  pedigree push run ${r + 1}: ${ms.toFixed(0)} ms (${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s), ${res.blocks} blocks, ${res.bytes} B; CPU: push ${cpuMs} ms, server ${Math.round(serverCpu)} ms; load ${loadavg()[0].toFixed(1)}`)
    removeDir(join(dir, `hub-${r}`))
  }

  // git with its best settings for incompressible data: no zlib compression anywhere.
  const src = join(dir, 'git-src')
  git(dir, ['init', '-q', '-b', 'main', src])
  t0 = now()
  git(src, ['-c', 'core.compression=0', '-c', 'core.bigFileThreshold=2g', 'hash-object', '-w', file])
  const blobId = git(src, ['hash-object', file]).stdout.toString().trim()
  git(src, ['update-index', '--add', '--cacheinfo', `100644,${blobId},model/weights.bin`])
  const tree = git(src, ['write-tree']).stdout.toString().trim()
  const ident = { GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@example.org', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@example.org' }
  const commit = git(src, ['commit-tree', tree, '-m', 'checkpoint'], { env: ident }).stdout.toString().trim()
  git(src, ['update-ref', 'refs/heads/main', commit])
  log(`  git commit of the file (core.compression=0): ${msSince(t0).toFixed(0)} ms`)
  const gitJobs = []
  for (let r = 0; r < runs; r++) {
    const bare = join(dir, `git-bare-${r}`)
    gitJobs.push({ ...gitPushJob(src, bare, `git-${r}`, ['-c', 'pack.compression=0', '-c', 'core.compression=0']), pre: [['rm', ['-rf', bare]], ['git', ['init', '-q', '--bare', bare]], ['sync', []]] })
  }
  const gitMs = Object.values(timeJobs(gitJobs, { runs: 1, warmup: 0 }).times).map((t) => t[0])
  log(`  git push (file://, pack.compression=0): ${gitMs.map((m) => m.toFixed(0)).join(', ')} ms`)
  removeDir(dir)
  const mbps = (ms) => Math.round(bytes / 1e6 / (ms / 1000))
  return {
    row: 'large-file',
    what: `push one ${Math.round(bytes / 2 ** 20)} MiB file to an empty remote over loopback HTTP, whole process`,
    unit: 'MB/s',
    pedigree: mbps(median(ped)),
    git: mbps(median(gitMs)),
    target: '>= 200',
    met: mbps(median(ped)) >= 200,
    detail: { bytes, pedigreeMs: ped, pedigreeCpuMs: cpu, gitMs, gitSettings: 'core.compression=0, pack.compression=0' },
  }
}

// ---------------------------------------------------------------------------------

// --only=push,one-change,large (one-change also gives noop-push): run some rows.
const onlyArg = process.argv.find((a) => a.startsWith('--only='))
const only = new Set(onlyArg ? onlyArg.slice(7).split(',') : ['push', 'one-change', 'large'])
const rows = []
const started = now()
if (only.has('push')) rows.push(await pushRow(SIZES.push))
if (only.has('one-change') || only.has('noop')) rows.push(...(await noopAndOneChangeRows({ noopRuns: SIZES.noop.runs, records: SIZES.oneChange.records })))
if (only.has('large')) rows.push(await largeFileRow(SIZES.large))
log(`done in ${(msSince(started) / 1000).toFixed(1)} s`)
process.stdout.write(JSON.stringify(rows, null, 2) + '\n')
