#!/usr/bin/env node
// The README's first command: a workflow's story told through the real CLI on the
// embedded store. Every step checks its result and the demo exits non-zero on any wrong one.
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'run.js')
const work = mkdtempSync(join(tmpdir(), 'pedigree-demo-'))
const env = { ...process.env, PEDIGREE_AUTHOR: 'beamline-7 workflow <flows@aps.example.org>', PEDIGREE_REPO: join(work, '.pedigree') }
delete env.NODE_EXTRA_CA_CERTS

const bold = (s) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s)
let failures = 0

function step(title) {
  console.log(`\n${bold(`== ${title}`)}`)
}

/** Run the CLI (at site A unless `site` says otherwise), echo the command and its output, return stdout. */
function pedigree(args, { show = true, input, site } = {}) {
  console.log(`${site ? `[${site.name}] ` : ''}$ pedigree ${args.map((a) => (/[\s"'{}]/.test(a) ? `'${a}'` : a)).join(' ')}`)
  try {
    const out = execFileSync(process.execPath, [bin, ...args], { cwd: site?.cwd ?? work, env: site?.env ?? env, input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 28 })
    if (show && out.length) console.log(out.toString('utf8').trimEnd().replace(/^/gm, '  '))
    return out
  } catch (e) {
    console.error(`  command failed (exit ${e.status ?? e.code}): ${e.stderr ?? e.message}`)
    failures++
    return Buffer.alloc(0)
  }
}

/** `pedigree serve` for site A on a free loopback port, until `stop()`. */
async function startServer(port = 0) {
  console.log(`$ pedigree serve --port ${port} --json &`)
  const child = spawn(process.execPath, [bin, 'serve', '--port', String(port), '--json'], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  process.on('exit', () => child.kill('SIGTERM')) // never leave a server behind, even when a step fails
  const url = await new Promise((resolve) => {
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line) resolve(JSON.parse(line).url)
    })
    child.once('exit', () => resolve(undefined))
  })
  if (!url) {
    console.error(`  pedigree serve did not start: ${stderr}`)
    process.exit(1)
  }
  console.log(`  serving site A at ${url}`)
  const stop = async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  }
  return { url, stop }
}

function check(ok, what) {
  console.log(ok ? `  ✓ ${what}` : `  ✗ ${what}`)
  if (!ok) failures++
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex')

/** Deterministic pseudo-random float32 "weights". */
function weights(count, seed) {
  const out = new Float32Array(count)
  let s = seed >>> 0
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = (s / 2 ** 32 - 0.5) * 0.1
  }
  return Buffer.from(out.buffer)
}

function write(path, content) {
  mkdirSync(dirname(join(work, path)), { recursive: true })
  writeFileSync(join(work, path), content)
}

// ---------------------------------------------------------------------------------
step('A store for the beamline workflow')
pedigree(['init', work])

step('Run 1: the workflow commits its config, task records and a model checkpoint')
write('inputs/train.json', JSON.stringify({ model: 'braggnn', lr: 0.001, batch_size: 256, epochs: 30, optimizer: { name: 'adam', betas: [0.9, 0.999] } }))
for (let i = 0; i < 5; i++) {
  write(
    `inputs/tasks/scan-${i}.json`,
    JSON.stringify({ type: 'task', task_id: `scan-${i}`, workflow_id: 'wf-2026-11-22', status: 'done', started_at: `2026-11-22T08:0${i}:00Z`, metrics: { peaks: 1200 + i * 17 } }),
  )
}
const weightsV1 = weights(2_000_000, 1) // 8 MB of float32
write('ckpt/weights.bin', weightsV1)
pedigree([
  'commit', '-b', 'main', '-m', 'run 1: train braggnn on scans 0-4',
  '--meta', 'site=aps', '--meta', 'workflow_id=wf-2026-11-22',
  '--record', 'config/train.json=inputs/train.json',
  'tasks=inputs/tasks', 'model/weights.bin=ckpt/weights.bin',
])

step('Run 2: a new learning rate, new metrics, and a fine-tuned checkpoint')
write('inputs/train.json', JSON.stringify({ model: 'braggnn', lr: 0.0005, batch_size: 256, epochs: 40, optimizer: { name: 'adam', betas: [0.9, 0.999] } }))
const weightsV2 = Buffer.from(weightsV1)
weightsV2.set(weights(50_000, 2), 3_000_000) // a fine-tune rewrites a slice of the tensor
write('ckpt/weights.bin', weightsV2)
pedigree(
  ['commit', '-b', 'main', '-m', 'run 2: lower lr, more epochs', '--meta', 'site=aps', '--record', 'config/train.json=inputs/train.json', '--record', 'metrics/run2.json=-', 'model/weights.bin=ckpt/weights.bin'],
  { input: JSON.stringify({ type: 'metrics', loss: 0.027, val_loss: 0.031 }) },
)

step('History')
const log = JSON.parse(pedigree(['log', '--json'], { show: false }).toString() || '[]')
pedigree(['log', '--oneline'])
check(log.length === 2 && log[0].message.startsWith('run 2') && log[1].message.startsWith('run 1'), 'two commits, newest first')

step('What changed between run 1 and run 2?')
const diffOut = pedigree(['diff', 'main~1', 'main']).toString()
check(/lr: 0\.001 → 0\.0005/.test(diffOut) && /epochs: 30 → 40/.test(diffOut), 'field-level diff of the config')
check(/A {2}metrics\/run2\.json/.test(diffOut) && /M {2}model\/weights\.bin/.test(diffOut), 'new metrics record and changed model listed')

step('How much new storage did the fine-tuned checkpoint take?')
const diffJson = JSON.parse(pedigree(['diff', 'main~1', 'main', '--path', 'model/weights.bin', '--json'], { show: false }).toString() || '[]')
const storage = diffJson[0]?.storage
if (storage) {
  console.log(`  ${storage.newChunks} of ${storage.chunks} chunks new: ${(storage.newBytes / 1e6).toFixed(2)} MB of an ${(weightsV2.length / 1e6).toFixed(1)} MB checkpoint`)
  console.log(`  stored as deltas against run 1's chunks: ${(storage.newStored / 1e6).toFixed(2)} MB for the ${(200_000 / 1e6).toFixed(2)} MB the fine-tune rewrote`)
}
check(storage && storage.newBytes < 0.1 * weightsV2.length, 'the second version has less than 10% new chunks (content-defined chunks shared with run 1)')
check(storage && storage.newStored < 0.05 * weightsV2.length && storage.newStored < storage.newBytes, 'and the store spent less than 5% of its size on them')
pedigree(['du', 'main'])

step('Which config trained the first model?')
const oldConfig = JSON.parse(pedigree(['show', 'main~1:config/train.json']).toString() || '{}')
check(oldConfig.lr === 0.001 && oldConfig.epochs === 30, 'the run-1 config, exactly as committed')

step('Give me the run-1 checkpoint back, byte-exact')
pedigree(['checkout', 'main~1', 'model/weights.bin', '-o', 'restored'])
let restored = Buffer.alloc(0)
try {
  restored = readFileSync(join(work, 'restored/model/weights.bin'))
} catch (e) {
  console.error(`  cannot read the restored file: ${e.message}`)
}
check(sha256(restored) === sha256(weightsV1), `sha256 of the restored checkpoint matches run 1 (${sha256(weightsV1).slice(0, 16)}…)`)
check(sha256(restored) !== sha256(weightsV2), 'and differs from run 2')

step('Name the good model, then check the whole store')
pedigree(['tag', 'braggnn-v1', 'main~1', '-m', 'first model deployed on the beamline'])
const tagged = JSON.parse(pedigree(['show', 'tags/braggnn-v1', '--json'], { show: false }).toString() || '{}')
check(tagged.cid === log[1].cid, 'tags/braggnn-v1 names the run-1 commit')
pedigree(['reflog', 'main'])
const fsck = pedigree(['fsck']).toString()
check(/\bok\b/.test(fsck), 'fsck: every block reachable from every ref verifies')

step('Provenance: three workflows at two sites (fixtures/) are ingested as JSON Lines')
const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures')
for (const [file, agent] of [
  ['1-acquisition.jsonl', 'hedm-daq <daq-1ide@aps.example.org>'],
  ['2-training.jsonl', 'flowcept <flowcept@polaris.example.org>'],
  ['3-evaluation.jsonl', 'flowcept <flowcept@polaris.example.org>'],
]) {
  pedigree(['ingest', '-b', 'main', '--path-template', '{type}/{workflow_id}/{id}.json', '--author', agent, join(fixtures, file)])
}

step('Which data and config trained the best model?')
const model = 'main:model/alcf-hpo-2024-03/braggnn-t05-best.json'
const up = JSON.parse(pedigree(['lineage', model, '--depth', '2', '--json'], { show: false }).toString() || '{"nodes":[]}')
pedigree(['lineage', model, '--depth', '1'])
const upPaths = up.nodes.flatMap((n) => n.paths)
check(upPaths.includes('calibration/aps-acq-2024-03/cal-2024-03-11a.json'), 'the model traces back to calibration run 11a')
check(upPaths.includes('config/alcf-hpo-2024-03/cfg-braggnn-base.json') && upPaths.filter((p) => p.startsWith('scan/')).length === 16, 'and to its base config and the 16 training scans')

step('Calibration 11a was wrong: invalidate it (append-only) and ask what is tainted')
const mainOf = () => JSON.parse(pedigree(['ref', 'list', '--json'], { show: false }).toString() || '[]').find((r) => r.name === 'main')?.cid
const mainBefore = mainOf()
pedigree(['invalidate', 'main:calibration/aps-acq-2024-03/cal-2024-03-11a.json', '--reason', 'beam centre off by 2.6 px: detector moved after calibration'])
const tainted = JSON.parse(pedigree(['tainted', '--json'], { show: false }).toString() || '[]')
const taintedPaths = tainted.map((t) => t.path)
console.log(`  ${tainted.length} entries tainted, e.g. ${taintedPaths.filter((p) => p.startsWith('model/')).join(', ')}`)
check(taintedPaths.includes('model/alcf-hpo-2024-03/braggnn-t05-best.json'), 'the best model is tainted, with the reason and root cause')
check(!taintedPaths.some((p) => p.includes('cal-2024-03-12b')) && !taintedPaths.includes('scan/aps-acq-2024-03/scan-0017.json'), 'calibration 12b and the test scans it calibrated are not')
check(mainBefore !== undefined && mainOf() === mainBefore, 'main itself did not move (the invalidation is a record on the invalidations ref)')

step('A second site: the HPC centre clones the beamline store over HTTP, adds its results, and pushes them back')
// Site A (the beamline store above) serves itself over HTTP; site B is a clone at the HPC centre.
const hpcToken = JSON.parse(pedigree(['token', 'add', '--scope', 'write', '--name', 'hpc-polaris', '--json'], { show: false }).toString() || '{}').token
check(typeof hpcToken === 'string' && hpcToken.length >= 32, 'site A issued a write token for the HPC workflow (stored hashed; shown once)')
let server = await startServer()
const siteB = {
  name: 'site B',
  cwd: join(work, 'hpc'),
  env: { ...env, PEDIGREE_REPO: join(work, 'hpc', '.pedigree'), PEDIGREE_AUTHOR: 'polaris workflow <flows@alcf.example.org>', PEDIGREE_TOKEN: hpcToken },
}
mkdirSync(siteB.cwd)
const cloned = JSON.parse(pedigree(['clone', server.url, join(siteB.cwd, '.pedigree'), '--json'], { site: siteB, show: false }).toString() || '{}')
check(cloned.blocks > 0, `the clone received ${cloned.blocks} blocks over HTTP, every one verified against its CID`)
const bWeights = pedigree(['show', 'tags/braggnn-v1:model/weights.bin'], { show: false, site: siteB })
check(sha256(bWeights) === sha256(weightsV1), 'site B reads the tagged checkpoint byte-exact')
pedigree(['commit', '-b', 'main', '-m', 'HPC evaluation of braggnn-v1', '--record', 'eval/polaris/braggnn-v1.json=-'], {
  site: siteB,
  input: JSON.stringify({ type: 'evaluation', model: 'braggnn-v1', site: 'polaris', mean_px_error: 0.41 }),
})
const pushed = JSON.parse(pedigree(['push', 'origin', 'main', '--json'], { site: siteB, show: false }).toString() || '{}')
console.log(`  pushed ${pushed.blocks} blocks (${pushed.bytes} bytes) in ${pushed.roundTrips} round trips`)
check(pushed.blocks > 0 && pushed.blocks < 10, 'only the new commit, the changed tree nodes and the record travelled')
const served = await (await fetch(`${server.url}/v1/refs`)).json().catch(() => undefined)
const head = (site) => JSON.parse(pedigree(['ref', 'list', '--json'], { show: false, site }).toString() || '[]').find((r) => r.name === 'main')?.cid
const servedMain = (Array.isArray(served) ? served : served?.refs ?? []).find((r) => r.name === 'main')?.cid
check(servedMain !== undefined && servedMain === head(siteB), "site A's server now answers main with site B's commit")
await server.stop()

step('Site B goes on working; site A pulls from it')
pedigree(['commit', '-b', 'main', '-m', 'HPC evaluation, second detector', '--record', 'eval/polaris/braggnn-v1-det2.json=-'], {
  site: siteB,
  input: JSON.stringify({ type: 'evaluation', model: 'braggnn-v1', site: 'polaris', detector: 2, mean_px_error: 0.44 }),
})
pedigree(['remote', 'add', 'hpc', join(siteB.cwd, '.pedigree')])
const pulled = JSON.parse(pedigree(['pull', 'hpc', 'main', '--json'], { show: false }).toString() || '{}')
check(pulled.status === 'fast-forward' && head() === head(siteB), "site A fast-forwarded to site B's main")
server = await startServer(new URL(server.url).port) // the same address site B cloned from
const noop = JSON.parse(pedigree(['push', 'origin', 'main', '--json'], { site: siteB, show: false }).toString() || '{}')
check(noop.blocks === 0 && noop.bytes === 0, `a push with nothing new sends nothing (${noop.blocks} blocks, ${noop.roundTrips} round trip${noop.roundTrips === 1 ? '' : 's'})`)
await server.stop()

console.log(`\nstore: ${join(work, '.pedigree')} (explore it with PEDIGREE_REPO=${join(work, '.pedigree')} pedigree log)`)
if (failures > 0) {
  console.error(`\ndemo FAILED: ${failures} check(s) did not hold`)
  process.exit(1)
}
console.log('\ndemo passed: every check held')
