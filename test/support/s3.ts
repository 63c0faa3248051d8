import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3'
import { state as sdkWarnings } from '@aws-sdk/core/client'
import type { S3ConnectOptions } from '../../src/store/s3/bucket.js'

// The SDK's "needs Node 22 after January 2027" warning, once per test file, says nothing about the code under test.
sdkWarnings.warningEmitted = true

const run = promisify(execFile)

/** A real S3 server the tests can use: the one CI exported, or a Ceph RGW started here. */
export interface S3TestServer {
  endpoint: string
  /** The AWS_* variables a child process (the CLI) needs to reach it. */
  env: Record<string, string>
  /** The same, as options for openS3Store / Repository.open({ s3 }). */
  options: S3ConnectOptions
  /** A new, empty bucket (removed by `stop`, or earlier by `removeBucket`). */
  bucket(label: string): Promise<string>
  removeBucket(name: string): Promise<void>
  /** Remove the buckets made here, and stop the Ceph cluster if this process started it. */
  stop(): Promise<void>
}

export type S3Availability = { ok: true; server: S3TestServer } | { ok: false; reason: string }

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** s3-ceph-up.sh: beside the repository first (../shared/scripts), then /work/shared/scripts. */
function findScripts(): string | undefined {
  for (const dir of [join(REPO_ROOT, '..', 'shared', 'scripts'), '/work/shared/scripts']) {
    if (existsSync(join(dir, 's3-ceph-up.sh'))) return dir
  }
  return undefined
}

/** A TCP port nothing listens on now (RGW binds it; Ceph's own daemons take 6800–7300). */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer()
      srv.once('error', reject)
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port
        srv.close(() => resolve(p))
      })
    })
    if (port < 6800 || port > 7300) return port
  }
}

/*
 * Without AWS_ENDPOINT_URL, the test files of one run share one Ceph cluster: the first to need
 * it starts it, each registers its pid, and the last to leave stops it. A lock directory
 * (mkdir is atomic) guards the shared state; a lock or a user whose process died is ignored.
 */
const SHARED = join(tmpdir(), `pedigree-rgw-shared-${process.getuid?.() ?? 0}`)
const LOCK = `${SHARED}.lock`
/** This test file's name among the users: its process, and a token (files may share a process). */
const ME = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 300_000
  for (;;) {
    try {
      await mkdir(LOCK)
      break
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      const holder = Number(await readFile(join(LOCK, 'pid'), 'utf8').catch(() => '0'))
      const age = Date.now() - ((await stat(LOCK).catch(() => undefined))?.mtimeMs ?? Date.now())
      if ((holder && !alive(holder)) || (!holder && age > 10_000)) {
        await rm(LOCK, { recursive: true, force: true })
        continue
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${LOCK}`)
      await sleep(100)
    }
  }
  await writeFile(join(LOCK, 'pid'), String(process.pid))
  try {
    return await fn()
  } finally {
    await rm(LOCK, { recursive: true, force: true })
  }
}

/** The live users of the shared cluster (those whose process died are forgotten). */
async function liveUsers(): Promise<string[]> {
  const users = join(SHARED, 'users')
  const out: string[] = []
  for (const name of await readdir(users).catch(() => [] as string[])) {
    if (alive(Number(name.split('-')[0]))) out.push(name)
    else await rm(join(users, name), { force: true })
  }
  return out
}

async function answers(endpoint: string): Promise<boolean> {
  try {
    return (await fetch(endpoint, { signal: AbortSignal.timeout(2000) })).ok
  } catch {
    return false
  }
}

/** The shared cluster's AWS_* variables, starting it if no live one is there. */
async function joinShared(scripts: string): Promise<Record<string, string>> {
  return withLock(async () => {
    const envFile = join(SHARED, 'env')
    let env = parseExports(await readFile(envFile, 'utf8').catch(() => ''))
    if (!env.AWS_ENDPOINT_URL || !(await answers(env.AWS_ENDPOINT_URL))) {
      await run(join(scripts, 's3-ceph-down.sh'), [join(SHARED, 'cluster')]).catch(() => {})
      await rm(SHARED, { recursive: true, force: true })
      await mkdir(join(SHARED, 'users'), { recursive: true })
      const { stdout } = await run(join(scripts, 's3-ceph-up.sh'), [join(SHARED, 'cluster'), String(await freePort())], { timeout: 240_000, maxBuffer: 1 << 20 })
      env = parseExports(stdout)
      if (!env.AWS_ENDPOINT_URL) throw new Error('s3-ceph-up.sh printed no AWS_ENDPOINT_URL')
      await writeFile(envFile, stdout)
    }
    await writeFile(join(SHARED, 'users', ME), '')
    return env
  })
}

/** Leave the shared cluster; the last live user stops it. */
async function leaveShared(scripts: string): Promise<void> {
  await withLock(async () => {
    await rm(join(SHARED, 'users', ME), { force: true })
    if ((await liveUsers()).length > 0) return
    await run(join(scripts, 's3-ceph-down.sh'), [join(SHARED, 'cluster')]).catch(() => {})
    await rm(SHARED, { recursive: true, force: true })
  })
}

function parseExports(text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z_]+)=(.*)$/.exec(line.trim())
    if (m) env[m[1]!] = m[2]!
  }
  return env
}

/**
 * The S3 server for one test file. Uses AWS_ENDPOINT_URL (and the other AWS_* variables) when
 * set, as CI does after starting Ceph; otherwise uses a throw-away Ceph RGW started with
 * s3-ceph-up.sh on a free port, shared by the test files running at the same time and stopped
 * by the last one's `stop`. When neither works, `{ ok: false, reason }`:
 * the caller reports its tests as skipped with that reason.
 *
 * @example
 * const s3 = await useS3()  // top level of a test file
 */
export async function useS3(): Promise<S3Availability> {
  if (process.env.PEDIGREE_TEST_S3 === '0') return { ok: false, reason: 'PEDIGREE_TEST_S3=0' }
  let env: Record<string, string>
  let started: { scripts: string } | undefined
  if (process.env.AWS_ENDPOINT_URL) {
    env = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('AWS_') && v !== undefined)) as Record<string, string>
  } else {
    const scripts = findScripts()
    if (!scripts) return { ok: false, reason: 'no AWS_ENDPOINT_URL and no s3-ceph-up.sh found in ../shared/scripts or /work/shared/scripts' }
    try {
      env = await joinShared(scripts)
    } catch (e) {
      const detail = ((e as { stderr?: string }).stderr || (e as Error).message).trim().split('\n').slice(-2).join(' ')
      return { ok: false, reason: `no AWS_ENDPOINT_URL, and Ceph RGW could not be started: ${detail}` }
    }
    started = { scripts }
  }
  const options: S3ConnectOptions = {
    endpoint: env.AWS_ENDPOINT_URL!,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? '', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? '' },
    env: {},
  }
  const client = new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: true,
    credentials: options.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  try {
    await client.send(new ListObjectsV2Command({ Bucket: 'pedigree-probe-that-does-not-exist', MaxKeys: 1 })).catch((e: { name?: string }) => {
      if (e.name !== 'NoSuchBucket') throw e
    })
  } catch (e) {
    client.destroy()
    if (started) await leaveShared(started.scripts).catch(() => {})
    return { ok: false, reason: `the S3 server at ${options.endpoint} does not answer: ${(e as Error).message}` }
  }
  const buckets = new Set<string>()
  const removeBucket = async (name: string): Promise<void> => {
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: name, MaxKeys: 1000 })).catch((e: { name?: string }) => {
        if (e.name === 'NoSuchBucket') return undefined
        throw e
      })
      if (!page) break
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }))
      if (keys.length === 0) {
        await client.send(new DeleteBucketCommand({ Bucket: name }))
        break
      }
      await client.send(new DeleteObjectsCommand({ Bucket: name, Delete: { Objects: keys, Quiet: true } }))
    }
    buckets.delete(name)
  }
  const server: S3TestServer = {
    endpoint: options.endpoint!,
    env: {
      AWS_ENDPOINT_URL: options.endpoint!,
      AWS_REGION: options.region!,
      AWS_ACCESS_KEY_ID: options.credentials!.accessKeyId,
      AWS_SECRET_ACCESS_KEY: options.credentials!.secretAccessKey,
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    },
    options,
    async bucket(label) {
      const name = `pedigree-${label}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`.toLowerCase().slice(0, 63)
      await client.send(new CreateBucketCommand({ Bucket: name }))
      buckets.add(name)
      return name
    },
    removeBucket,
    async stop() {
      try {
        for (const name of [...buckets]) await removeBucket(name).catch(() => {})
      } finally {
        client.destroy()
        if (started) await leaveShared(started.scripts)
      }
    },
  }
  return { ok: true, server }
}
