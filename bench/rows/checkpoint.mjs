// Rows 4–6: a large binary checkpoint (float32-like bytes) through the pedigree CLI vs git.
//   4. `pedigree commit` of the file, whole process (MB/s, peak RSS) vs `git add` in a fresh repo
//   5. a second version with 2% of its bytes changed in scattered 100 KiB regions: new bytes stored
//   6. `pedigree checkout` of the file, whole process, byte-exact vs `git checkout` / `git cat-file blob`
// Each row generates the same deterministic file in its own temp dir (rows run in separate processes).
import { createHash } from 'node:crypto'
import { closeSync, openSync, readFileSync, readSync, statSync, writeSync, copyFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { childEnv, git, gitEnv, gitJob, median, msSince, now, pickDistinct, prng, removeDir, run, tempDir, timeJobs } from '../lib.mjs'

const RUN_JS = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
const TIME_BIN = '/usr/bin/time'
const REGION = 100 * 1024
const CHUNK = 16 * 2 ** 20

/**
 * Deterministic float32-like bytes: every 4-byte word is a float32 with a random sign and
 * mantissa and an exponent in 2^-10…2^-3 (values ~0.001–0.25, like trained weights): the
 * mantissa bits are incompressible, as in real checkpoints.
 */
function fillFloats(u32, next) {
  for (let i = 0; i < u32.length; i++) {
    const r = next()
    u32[i] = ((r & 0x807fffff) | ((117 + ((r >>> 23) & 7)) << 23)) >>> 0
  }
}
function xorshift(seed) {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    return (x >>>= 0)
  }
}

export function writeCheckpoint(path, bytes, seed = 7) {
  const next = xorshift(seed)
  const buf = Buffer.alloc(CHUNK)
  const u32 = new Uint32Array(buf.buffer, buf.byteOffset, CHUNK / 4)
  const fd = openSync(path, 'w')
  for (let off = 0; off < bytes; off += CHUNK) {
    fillFloats(u32, next)
    writeSync(fd, buf, 0, Math.min(CHUNK, bytes - off))
  }
  closeSync(fd)
}

/** The regions (byte offsets, REGION long) changed in version 2: 2% of the file, scattered. */
export function changedRegions(bytes) {
  const count = Math.ceil((0.02 * bytes) / REGION)
  const slots = Math.floor(bytes / REGION)
  return pickDistinct(prng(11), slots, count).map((s) => s * REGION)
}

/** Version 2: a copy of `src` with the changed regions overwritten by new float32-like bytes. */
export function writeVersion2(src, dst, bytes) {
  copyFileSync(src, dst)
  const next = xorshift(99)
  const buf = Buffer.alloc(REGION)
  const u32 = new Uint32Array(buf.buffer, buf.byteOffset, REGION / 4)
  const fd = openSync(dst, 'r+')
  const regions = changedRegions(bytes)
  for (const off of regions) {
    fillFloats(u32, next)
    writeSync(fd, buf, 0, REGION, off)
  }
  closeSync(fd)
  return regions
}

export function sha256File(path) {
  const h = createHash('sha256')
  const buf = Buffer.alloc(CHUNK)
  const fd = openSync(path, 'r')
  for (;;) {
    const n = readSync(fd, buf, 0, CHUNK, null)
    if (n === 0) break
    h.update(n === CHUNK ? buf : buf.subarray(0, n))
  }
  closeSync(fd)
  return h.digest('hex')
}

const ped = (args) => run(process.execPath, [RUN_JS, ...args], { env: childEnv() })
const MB = (bytes, ms) => bytes / 1e6 / (ms / 1000)

/** Wraps a timer job in /usr/bin/time, appending each run's peak RSS (KiB) to `rssFile`. */
function withRss(job, rssFile) {
  return { ...job, cmd: TIME_BIN, args: ['-a', '-o', rssFile, '-f', '%M', job.cmd, ...job.args] }
}
const readRss = (file) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number) : [])

function makeData(label, bytes, log) {
  const dir = tempDir(label)
  const data = join(dir, 'data')
  run('mkdir', ['-p', data])
  const file = join(data, 'weights.bin')
  const t0 = now()
  writeCheckpoint(file, bytes)
  log(`  generated ${(bytes / 2 ** 20).toFixed(0)} MiB of float32-like bytes in ${msSince(t0).toFixed(0)} ms`)
  return { dir, data, file }
}

// ---------------------------------------------------------------------------------
// Row 4: commit

export async function ckptCommitRow({ bytes, runs, log }) {
  const { dir, data, file } = makeData('ckpt-commit', bytes, log)
  const store = join(dir, 'store', '.pedigree')
  const gdir = join(dir, 'git')
  const pedRss = join(dir, 'ped.rss')
  const gitRss = join(dir, 'git.rss')
  const env = childEnv()
  const jobs = [
    withRss(
      {
        name: 'ped',
        cmd: process.execPath,
        args: [RUN_JS, 'commit', '--repo', store, '-m', 'checkpoint', 'model/weights.bin=' + file],
        cwd: dir,
        env,
        pre: [['rm', ['-rf', join(dir, 'store')]], [process.execPath, [RUN_JS, 'init', '--repo', store]]],
      },
      pedRss,
    ),
    withRss(
      gitJob('git', dir, ['--git-dir', join(gdir, '.git'), '--work-tree', data, '-c', 'core.compression=0', 'add', 'weights.bin'], {
        pre: [['rm', ['-rf', gdir]], ['git', ['init', '-q', '-b', 'main', gdir]]],
      }),
      gitRss,
    ),
  ]
  const { times } = timeJobs(jobs, { runs, warmup: 0 })
  // Check: what pedigree stored reads back as the file's bytes.
  const ls = JSON.parse(ped(['du', '--repo', store, '--json']).stdout.toString())
  const logical = ls.refs.find((r) => r.name === 'main')?.logical
  if (logical !== bytes) throw new Error(`pedigree du reports ${logical} logical bytes, expected ${bytes}`)
  const gitStaged = git(gdir, ['ls-files', '-s']).stdout.toString()
  if (!gitStaged.includes('weights.bin')) throw new Error('git add did not stage weights.bin')
  const rss = { ped: readRss(pedRss), git: readRss(gitRss) }
  log(`  pedigree commit: ${times.ped.map((t) => t.toFixed(0)).join(', ')} ms; peak RSS ${rss.ped.map((k) => (k / 1024).toFixed(0)).join(', ')} MiB`)
  log(`  git add (core.compression=0): ${times.git.map((t) => t.toFixed(0)).join(', ')} ms; peak RSS ${rss.git.map((k) => (k / 1024).toFixed(0)).join(', ')} MiB`)
  removeDir(dir)
  const pedMs = median(times.ped)
  const gitMs = median(times.git)
  const pedRate = MB(bytes, pedMs)
  const gitRate = MB(bytes, gitMs)
  return {
    bytes,
    pedMs,
    gitMs,
    pedRate,
    gitRate,
    pedRssMiB: Math.max(...rss.ped) / 1024,
    gitRssMiB: Math.max(...rss.git) / 1024,
    runs: times,
    rss,
    met: { floor: pedRate >= 300, git: pedMs < gitMs },
  }
}

// ---------------------------------------------------------------------------------
// Row 5: 2% scattered change, new bytes stored

export async function ckptDeltaRow({ bytes, log }) {
  const { dir, data, file } = makeData('ckpt-delta', bytes, log)
  const file2 = join(dir, 'weights-v2.bin')
  const regions = writeVersion2(file, file2, bytes)
  const changedBytes = regions.length * REGION
  log(`  version 2: ${regions.length} regions of 100 KiB changed (${((100 * changedBytes) / bytes).toFixed(2)}% of the bytes)`)
  const store = join(dir, 'store', '.pedigree')
  ped(['init', '--repo', store])
  const stored = () => JSON.parse(ped(['du', '--repo', store, '--json']).stdout.toString()).store.stored
  const c1 = ped(['commit', '--repo', store, '-m', 'v1', 'model/weights.bin=' + file])
  const before = stored()
  const c2 = ped(['commit', '--repo', store, '-m', 'v2', 'model/weights.bin=' + file2])
  const after = stored()
  const diff = JSON.parse(ped(['diff', '--repo', store, 'main~1', 'main', '--json']).stdout.toString())
  const storage = diff.find((d) => d.path === 'model/weights.bin')?.storage ?? {}
  const pedNew = after - before
  log(`  pedigree: v1 commit ${c1.ms.toFixed(0)} ms, v2 commit ${c2.ms.toFixed(0)} ms; store grew by ${pedNew} bytes; diff storage ${JSON.stringify(storage)}`)

  // git: v1 added and committed, then v2 added: git writes the new version as one new whole object.
  const gdir = join(dir, 'git')
  run('mkdir', ['-p', gdir])
  git(gdir, ['init', '-q', '-b', 'main', '.'])
  const gitArgs = (f) => ['--work-tree', data, '-c', 'core.compression=0']
  git(gdir, [...gitArgs(), 'add', 'weights.bin'])
  git(gdir, ['-c', 'user.name=bench', '-c', 'user.email=bench@example.org', 'commit', '-q', '-m', 'v1'])
  copyFileSync(file2, file)
  // Files above core.bigFileThreshold (512 MiB) go straight into a new pack (bulk check-in),
  // smaller ones into a loose object: measure the growth of .git/objects either way.
  const objBytes = () => Number(run('du', ['-sb', join(gdir, '.git', 'objects')]).stdout.toString().split('\t')[0])
  const objBefore = objBytes()
  const t0 = now()
  git(gdir, [...gitArgs(), 'add', 'weights.bin'])
  const gitAddMs = msSince(t0)
  const gitObj = objBytes() - objBefore
  const sha = git(gdir, ['rev-parse', ':weights.bin']).stdout.toString().trim()
  const gitForm = existsSync(join(gdir, '.git', 'objects', sha.slice(0, 2), sha.slice(2))) ? 'loose object' : 'new pack'
  log(`  git: add of v2 ${gitAddMs.toFixed(0)} ms, .git/objects grew by ${gitObj} bytes (${gitForm})`)
  removeDir(dir)
  return {
    bytes,
    regions: regions.length,
    changedBytes,
    pedNew,
    pedNewPct: (100 * pedNew) / bytes,
    storage,
    pedCommitMs: { v1: c1.ms, v2: c2.ms },
    gitObj,
    gitPct: (100 * gitObj) / bytes,
    gitAddMs,
    gitForm,
    met: { pct: (100 * pedNew) / bytes <= 5 },
  }
}

// ---------------------------------------------------------------------------------
// Row 6: checkout

export async function ckptCheckoutRow({ bytes, runs, log }) {
  const { dir, data, file } = makeData('ckpt-checkout', bytes, log)
  const want = sha256File(file)
  const store = join(dir, 'store', '.pedigree')
  ped(['init', '--repo', store])
  ped(['commit', '--repo', store, '-m', 'checkpoint', 'model/weights.bin=' + file])
  const gdir = join(dir, 'git')
  run('mkdir', ['-p', gdir])
  git(gdir, ['init', '-q', '-b', 'main', '.'])
  copyFileSync(file, join(gdir, 'weights.bin'))
  git(gdir, ['-c', 'core.compression=0', 'add', 'weights.bin'])
  git(gdir, ['-c', 'user.name=bench', '-c', 'user.email=bench@example.org', 'commit', '-q', '-m', 'checkpoint'])
  const out = join(dir, 'out')
  const catOut = join(dir, 'cat.bin')
  const rssFiles = { ped: join(dir, 'ped.rss'), gitCheckout: join(dir, 'gco.rss'), gitCat: join(dir, 'gcat.rss') }
  const env = childEnv()
  const jobs = [
    withRss(
      { name: 'ped', cmd: process.execPath, args: [RUN_JS, 'checkout', '--repo', store, 'main', '-o', out], cwd: dir, env, pre: [['rm', ['-rf', out]]] },
      rssFiles.ped,
    ),
    withRss(gitJob('gitCheckout', gdir, ['checkout', '--', 'weights.bin'], { pre: [['rm', ['-f', join(gdir, 'weights.bin')]]] }), rssFiles.gitCheckout),
    withRss(
      { name: 'gitCat', cmd: 'sh', args: ['-c', `git cat-file blob HEAD:weights.bin > '${catOut}'`], cwd: gdir, env: gitEnv(), pre: [['rm', ['-f', catOut]]] },
      rssFiles.gitCat,
    ),
  ]
  const { times } = timeJobs(jobs, { runs, warmup: 1 })
  const got = {
    ped: sha256File(join(out, 'model', 'weights.bin')),
    gitCheckout: sha256File(join(gdir, 'weights.bin')),
    gitCat: sha256File(catOut),
  }
  for (const [k, h] of Object.entries(got)) if (h !== want) throw new Error(`${k}: checked-out bytes differ (sha256 ${h}, expected ${want})`)
  const rss = Object.fromEntries(Object.entries(rssFiles).map(([k, f]) => [k, readRss(f)]))
  for (const k of Object.keys(times)) log(`  ${k}: ${times[k].map((t) => t.toFixed(0)).join(', ')} ms; peak RSS ${Math.max(...rss[k]) / 1024 | 0} MiB`)
  removeDir(dir)
  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]))
  const peer = med.gitCheckout <= med.gitCat ? 'gitCheckout' : 'gitCat'
  const pedRate = MB(bytes, med.ped)
  return {
    bytes,
    sha256: want,
    pedMs: med.ped,
    gitMs: med[peer],
    peer,
    medians: med,
    pedRate,
    gitRate: MB(bytes, med[peer]),
    rssMiB: Object.fromEntries(Object.entries(rss).map(([k, v]) => [k, Math.max(...v) / 1024])),
    runs: times,
    met: { floor: pedRate >= 300 },
  }
}

// ---------------------------------------------------------------------------------
// Row 9: peak RSS of a large add and checkout (not run in --quick)

export async function ckptBigRow({ bytes, log }) {
  const { dir, data, file } = makeData('ckpt-big', bytes, log)
  const want = sha256File(file)
  const store = join(dir, 'store', '.pedigree')
  ped(['init', '--repo', store])
  const gdir = join(dir, 'git')
  run('mkdir', ['-p', gdir])
  git(gdir, ['init', '-q', '-b', 'main', '.'])
  const out = join(dir, 'out')
  const rssFile = (k) => join(dir, `${k}.rss`)
  const env = childEnv()
  const jobs = [
    withRss({ name: 'pedCommit', cmd: process.execPath, args: [RUN_JS, 'commit', '--repo', store, '-m', 'big', 'model/weights.bin=' + file], cwd: dir, env }, rssFile('pedCommit')),
    withRss(gitJob('gitAdd', gdir, ['--work-tree', data, '-c', 'core.compression=0', 'add', 'weights.bin']), rssFile('gitAdd')),
  ]
  const a = timeJobs(jobs, { runs: 1, warmup: 0 })
  git(gdir, ['-c', 'user.name=bench', '-c', 'user.email=bench@example.org', 'commit', '-q', '-m', 'big'])
  const catOut = join(dir, 'cat.bin')
  const jobs2 = [
    withRss({ name: 'pedCheckout', cmd: process.execPath, args: [RUN_JS, 'checkout', '--repo', store, 'main', '-o', out], cwd: dir, env }, rssFile('pedCheckout')),
    withRss({ name: 'gitCat', cmd: 'sh', args: ['-c', `git cat-file blob HEAD:weights.bin > '${catOut}'`], cwd: gdir, env: gitEnv() }, rssFile('gitCat')),
  ]
  const b = timeJobs(jobs2, { runs: 1, warmup: 0 })
  const times = { ...a.times, ...b.times }
  for (const [k, f] of [['pedCheckout', join(out, 'model', 'weights.bin')], ['gitCat', catOut]]) {
    const h = sha256File(f)
    if (h !== want) throw new Error(`${k}: checked-out bytes differ`)
  }
  const rssMiB = Object.fromEntries(Object.keys(times).map((k) => [k, Math.max(...readRss(rssFile(k))) / 1024]))
  for (const k of Object.keys(times)) log(`  ${k}: ${times[k][0].toFixed(0)} ms, peak RSS ${rssMiB[k].toFixed(0)} MiB`)
  removeDir(dir)
  return { bytes, ms: Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v[0]])), rssMiB }
}

// ---------------------------------------------------------------------------------
// Row 11: the same question for a safetensors checkpoint whose fine-tune rewrote whole tensors.
//
// Row 5 changes 100 KiB regions at random offsets of an opaque binary: every region dirties the
// ~256 KiB content-defined chunks around it, whatever the format. A fine-tune changes whole
// tensors (some layers trained, the rest frozen), and pedigree cuts safetensors files at tensor
// boundaries, so this row measures that case: ~2% of the bytes, in whole tensors scattered
// through the file.

/** The tensors of one transformer block of width `d`. */
const blockTensors = (d) => [
  ['attn.qkv.weight', [d, 3 * d]],
  ['attn.qkv.bias', [3 * d]],
  ['attn.out.weight', [d, d]],
  ['attn.out.bias', [d]],
  ['norm1.weight', [d]],
  ['mlp.fc1.weight', [d, 4 * d]],
  ['mlp.fc1.bias', [4 * d]],
  ['mlp.fc2.weight', [4 * d, d]],
  ['mlp.fc2.bias', [d]],
  ['norm2.weight', [d]],
]

/**
 * Tensor layout of a transformer-like model of about `bytes` bytes: [name, shape, byteLength][].
 * Width 1024 (a block is ~48 MiB) from 512 MiB up, 256 below, so that 2% of the bytes is
 * always several whole tensors.
 */
function tensorLayout(bytes) {
  const tensors = blockTensors(bytes >= 512 * 2 ** 20 ? 1024 : 256)
  const perBlock = tensors.reduce((n, [, shape]) => n + 4 * shape.reduce((a, b) => a * b, 1), 0)
  const blocks = Math.max(2, Math.round(bytes / perBlock))
  const out = []
  for (let b = 0; b < blocks; b++) for (const [name, shape] of tensors) out.push([`blocks.${b}.${name}`, shape, 4 * shape.reduce((a, c) => a * c, 1)])
  return out
}

/** Write a safetensors file (F32 tensors, in layout order); `fresh` names tensors to fill from another seed. */
function writeSafetensors(path, layout, { seed = 7, fresh = new Set(), freshSeed = 99 } = {}) {
  const header = {}
  let offset = 0
  for (const [name, shape, len] of layout) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + len] }
    offset += len
  }
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8)
  const fd = openSync(path, 'w')
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)))
  writeSync(fd, len)
  writeSync(fd, Buffer.from(json))
  const base = xorshift(seed)
  const other = xorshift(freshSeed)
  for (const [name, , bytesLen] of layout) {
    const buf = Buffer.alloc(bytesLen)
    const u32 = new Uint32Array(buf.buffer, buf.byteOffset, bytesLen / 4)
    // Both versions draw the base stream for every tensor, so frozen tensors are identical.
    fillFloats(u32, base)
    if (fresh.has(name)) fillFloats(u32, other)
    writeSync(fd, buf)
  }
  closeSync(fd)
  return offset
}

export async function ckptDeltaTensorsRow({ bytes, log }) {
  const dir = tempDir('ckpt-tensors')
  try {
    const layout = tensorLayout(bytes)
    // Fine-tune: whole tensors at seeded random places until ~2% of the bytes changed.
    const rand = prng(11)
    const fresh = new Set()
    let changed = 0
    const total = layout.reduce((n, t) => n + t[2], 0)
    for (let tries = 0; changed < 0.02 * total && tries < 100_000; tries++) {
      const [name, , len] = layout[Math.floor(rand() * layout.length)]
      if (fresh.has(name) || changed + len > 0.025 * total) continue
      fresh.add(name)
      changed += len
    }
    const v1 = join(dir, 'model-v1.safetensors')
    const v2 = join(dir, 'model-v2.safetensors')
    writeSafetensors(v1, layout)
    writeSafetensors(v2, layout, { fresh })
    const size = statSync(v1).size
    log(`  ${layout.length} tensors, ${(size / 2 ** 20).toFixed(0)} MiB; fine-tune rewrote ${fresh.size} tensors (${((100 * changed) / size).toFixed(2)}% of the bytes)`)
    const store = join(dir, 'store', '.pedigree')
    ped(['init', '--repo', store])
    const stored = () => JSON.parse(ped(['du', '--repo', store, '--json']).stdout.toString()).store.stored
    ped(['commit', '--repo', store, '-m', 'v1', 'model/model.safetensors=' + v1])
    const before = stored()
    ped(['commit', '--repo', store, '-m', 'v2', 'model/model.safetensors=' + v2])
    const pedNew = stored() - before
    const diff = JSON.parse(ped(['diff', '--repo', store, 'main~1', 'main', '--json']).stdout.toString())
    const item = diff.find((d) => d.path === 'model/model.safetensors') ?? {}
    // The model-aware diff must name exactly the rewritten tensors.
    const named = (item.tensors ?? []).filter((t) => t.change === 'changed').map((t) => t.name).sort()
    if (JSON.stringify(named) !== JSON.stringify([...fresh].sort())) throw new Error(`diff named ${named.length} changed tensors, expected the ${fresh.size} rewritten`)
    const tensorsChanged = named.length
    log(`  pedigree: store grew by ${pedNew} bytes (${((100 * pedNew) / size).toFixed(2)}%); diff storage ${JSON.stringify(item.storage ?? {})}`)
    // git: a whole new object for v2 (as in row 5).
    const gdir = join(dir, 'git')
    run('mkdir', ['-p', gdir])
    git(gdir, ['init', '-q', '-b', 'main', '.'])
    copyFileSync(v1, join(gdir, 'model.safetensors'))
    git(gdir, ['-c', 'core.compression=0', 'add', 'model.safetensors'])
    git(gdir, ['-c', 'user.name=bench', '-c', 'user.email=bench@example.org', 'commit', '-q', '-m', 'v1'])
    copyFileSync(v2, join(gdir, 'model.safetensors'))
    const objBytes = () => Number(run('du', ['-sb', join(gdir, '.git', 'objects')]).stdout.toString().split('\t')[0])
    const objBefore = objBytes()
    git(gdir, ['-c', 'core.compression=0', 'add', 'model.safetensors'])
    const gitObj = objBytes() - objBefore
    return {
      bytes: size,
      tensors: layout.length,
      freshTensors: fresh.size,
      changedBytes: changed,
      tensorsChanged,
      pedNew,
      pedNewPct: (100 * pedNew) / size,
      storage: item.storage ?? {},
      gitObj,
      gitPct: (100 * gitObj) / size,
      met: { pct: (100 * pedNew) / size <= 5 },
    }
  } finally {
    removeDir(dir)
  }
}
