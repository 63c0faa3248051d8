#!/usr/bin/env node
// S3 remote: push of N task records (default 100k) from a local store to an s3:// remote, and a
// clone from it, against a real S3 server (Ceph RGW). Reports records/s, seconds, bytes, and
// the objects the push wrote (packs keep it small: 2 per 16 MiB pack, plus the ref's entry).
//
//   node bench/s3.mjs [--quick] [--records=N]
//
// Uses AWS_ENDPOINT_URL (and the other AWS_* variables) when set; otherwise starts a throw-away
// Ceph RGW with ../shared/scripts/s3-ceph-up.sh (or /work/shared/scripts) and stops it after.
// Runs the library from dist/ in this process (refresh it with `npx tsc -p tsconfig.build.json`).
// Prints a JSON array of rows on stdout; progress on stderr. --quick: 5k records, < 20 s on an idle machine.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
const argv = process.argv.slice(2)
const quick = argv.includes('--quick')
const recordsArg = argv.find((a) => a.startsWith('--records='))
const N = recordsArg ? Number(recordsArg.slice('--records='.length)) : quick ? 5_000 : 100_000
const progress = (s) => process.stderr.write(`s3 bench: ${s}\n`)
const WHO = { name: 'bench', email: 'bench@example.org' }
const T0 = Date.UTC(2026, 10, 22, 12, 0, 0)

const dist = (p) => import(join(ROOT, 'dist', p))
const { Repository } = await dist('repo/repository.js')
const { push } = await dist('sync/push.js')
const { clone } = await dist('sync/clone.js')
const { addRemote } = await dist('sync/remote.js')
const sdk = await import('@aws-sdk/client-s3')
await import('@aws-sdk/core/client').then((m) => (m.state.warningEmitted = true)).catch(() => {})

async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = createServer()
      srv.once('error', reject)
      srv.listen(0, '127.0.0.1', () => {
        const p = srv.address().port
        srv.close(() => resolve(p))
      })
    })
    if (port < 6800 || port > 7300) return port
  }
}

/** The S3 server: the environment's, or a Ceph RGW started here (returns how to stop it). */
async function s3Server() {
  if (process.env.AWS_ENDPOINT_URL) return { env: process.env, stop: () => {} }
  const scripts = [join(ROOT, '..', 'shared', 'scripts'), '/work/shared/scripts'].find((d) => existsSync(join(d, 's3-ceph-up.sh')))
  if (!scripts) throw new Error('no AWS_ENDPOINT_URL and no s3-ceph-up.sh in ../shared/scripts or /work/shared/scripts')
  const dir = mkdtempSync(join(tmpdir(), 'pedigree-bench-rgw-'))
  const port = await freePort()
  progress(`starting Ceph RGW on 127.0.0.1:${port}`)
  const out = execFileSync(join(scripts, 's3-ceph-up.sh'), [dir, String(port)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const env = { ...process.env }
  for (const line of out.split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim())
    if (m) env[m[1]] = m[2]
  }
  return {
    env,
    stop: () => {
      execFileSync(join(scripts, 's3-ceph-down.sh'), [dir], { stdio: 'ignore' })
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A task record of about 300 bytes, the same for the same i on every run. */
function taskRecord(i) {
  const wf = `wf-${String(Math.floor(i / 1000)).padStart(4, '0')}`
  return {
    type: 'task',
    task_id: `task-${String(i).padStart(7, '0')}`,
    workflow_id: wf,
    campaign_id: 'bench-s3',
    agent: `worker-${i % 64}`,
    started_at: T0 + i * 37,
    ended_at: T0 + i * 37 + 1000 + (i % 997),
    status: i % 50 === 0 ? 'failed' : 'finished',
    metrics: { loss: Math.round(((i * 7919) % 10007) / 10007 * 1e6) / 1e6, epoch: i % 20 },
    host: `node${i % 128}.cluster`,
  }
}

const seconds = (t) => Number(process.hrtime.bigint() - t) / 1e9

async function countObjects(client, bucket, prefix) {
  let n = 0
  let bytes = 0
  let token
  do {
    const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }))
    for (const o of page.Contents ?? []) {
      n++
      bytes += o.Size ?? 0
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  return { objects: n, bytes }
}

async function emptyBucket(client, bucket) {
  for (;;) {
    const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket }))
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key }))
    if (keys.length === 0) break
    await client.send(new sdk.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }))
  }
  await client.send(new sdk.DeleteBucketCommand({ Bucket: bucket }))
}

const server = await s3Server()
const env = server.env
const s3 = {
  endpoint: env.AWS_ENDPOINT_URL,
  region: env.AWS_REGION ?? 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  env: {},
}
const client = new sdk.S3Client({ ...s3, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' })
const bucket = `pedigree-bench-${process.pid}-${Date.now().toString(36)}`
const dir = mkdtempSync(join(tmpdir(), 'pedigree-bench-s3-'))
const rows = []
try {
  await client.send(new sdk.CreateBucketCommand({ Bucket: bucket }))
  const url = `s3://${bucket}/bench`

  progress(`committing ${N} records to a local store`)
  const local = await Repository.init(join(dir, 'local', '.pedigree'))
  const edits = Array.from({ length: N }, (_, i) => ({ type: 'record', path: `tasks/${taskRecord(i).workflow_id}/${i}.json`, value: taskRecord(i) }))
  const committed = await local.commit({ ref: 'main', author: WHO, time: T0, message: `${N} task records`, edits })
  edits.length = 0
  await (await Repository.init(url, { s3 })).close()
  await addRemote(local, 'origin', url)
  const before = await countObjects(client, bucket, 'bench/')

  progress(`pushing to ${url}`)
  let t = process.hrtime.bigint()
  const pushed = await push(local, { who: WHO, open: { s3 } })
  const pushSeconds = seconds(t)
  await local.close()
  const after = await countObjects(client, bucket, 'bench/')
  rows.push({
    row: `s3 push of ${N} records (one commit) to an s3:// remote, Ceph RGW on 127.0.0.1, in-process`,
    records: N,
    seconds: Number(pushSeconds.toFixed(3)),
    recordsPerSec: Math.round(N / pushSeconds),
    blocks: pushed.blocks,
    bytes: pushed.bytes,
    objectsWritten: after.objects - before.objects,
    bucketBytes: after.bytes - before.bytes,
    roundTrips: pushed.roundTrips,
  })
  progress(`push: ${pushSeconds.toFixed(2)} s, ${after.objects - before.objects} objects for ${pushed.blocks} blocks`)

  progress(`cloning from ${url}`)
  t = process.hrtime.bigint()
  const cloned = await clone(url, join(dir, 'copy', '.pedigree'), { who: WHO, open: { s3 } })
  const cloneSeconds = seconds(t)
  const copy = await Repository.open(join(dir, 'copy', '.pedigree'))
  const same = (await copy.refs.get('main'))?.equals(committed.cid)
  await copy.close()
  if (!same) throw new Error('the clone does not have the pushed commit')
  rows.push({
    row: `s3 clone of ${N} records from an s3:// remote into a local store, Ceph RGW on 127.0.0.1, in-process`,
    records: N,
    seconds: Number(cloneSeconds.toFixed(3)),
    recordsPerSec: Math.round(N / cloneSeconds),
    blocks: cloned.blocks,
    bytes: cloned.bytes,
    roundTrips: cloned.roundTrips,
  })
  progress(`clone: ${cloneSeconds.toFixed(2)} s`)
} finally {
  await emptyBucket(client, bucket).catch((e) => progress(`could not remove bucket ${bucket}: ${e.message}`))
  client.destroy()
  rmSync(dir, { recursive: true, force: true })
  server.stop()
}
process.stdout.write(JSON.stringify(rows, null, 2) + '\n')
