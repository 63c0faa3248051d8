import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
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
 * set, as CI does after starting Ceph; otherwise starts a throw-away Ceph RGW with
 * s3-ceph-up.sh on a free port (stopped by `stop`). When neither works, `{ ok: false, reason }`:
 * the caller reports its tests as skipped with that reason.
 *
 * @example
 * const s3 = await useS3()  // top level of a test file
 */
export async function useS3(): Promise<S3Availability> {
  if (process.env.PEDIGREE_TEST_S3 === '0') return { ok: false, reason: 'PEDIGREE_TEST_S3=0' }
  let env: Record<string, string>
  let started: { scripts: string; dir: string } | undefined
  if (process.env.AWS_ENDPOINT_URL) {
    env = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('AWS_') && v !== undefined)) as Record<string, string>
  } else {
    const scripts = findScripts()
    if (!scripts) return { ok: false, reason: 'no AWS_ENDPOINT_URL and no s3-ceph-up.sh found in ../shared/scripts or /work/shared/scripts' }
    const dir = await mkdtemp(join(tmpdir(), 'pedigree-rgw-'))
    const port = await freePort()
    try {
      const { stdout } = await run(join(scripts, 's3-ceph-up.sh'), [dir, String(port)], { timeout: 240_000, maxBuffer: 1 << 20 })
      env = parseExports(stdout)
      if (!env.AWS_ENDPOINT_URL) throw new Error('s3-ceph-up.sh printed no AWS_ENDPOINT_URL')
    } catch (e) {
      await run(join(scripts, 's3-ceph-down.sh'), [dir]).catch(() => {})
      await rm(dir, { recursive: true, force: true })
      const detail = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n').slice(-2).join(' ')
      return { ok: false, reason: `no AWS_ENDPOINT_URL, and Ceph RGW could not be started: ${detail}` }
    }
    started = { scripts, dir }
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
    if (started) {
      await run(join(started.scripts, 's3-ceph-down.sh'), [started.dir]).catch(() => {})
      await rm(started.dir, { recursive: true, force: true })
    }
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
        if (started) {
          await run(join(started.scripts, 's3-ceph-down.sh'), [started.dir]).catch(() => {})
          await rm(started.dir, { recursive: true, force: true })
        }
      }
    },
  }
  return { ok: true, server }
}
