import { spawn } from 'node:child_process'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { expect } from 'vitest'
import { S3Bucket, type S3ConnectOptions } from '../../src/store/s3/bucket.js'
import { parseS3Url } from '../../src/store/s3/url.js'
import { shuffle } from '../helpers/random.js'
import { AUTHOR, BIN, runJson, type CliResult } from '../cli/run-cli.js'
import type { Killed } from './harness.js'

/**
 * What test/crash/harness.ts does for stores on disk, for stores in S3. A store in a bucket
 * has no `holder.json` to say when a process opened it, so here the kill clock starts when the
 * process first connects to the S3 server: every command's first request is the GET of the
 * store's format marker (a push opens its local store first, then the remote). The CLI
 * reaches the server through a {@link Tap}, a plain TCP relay that notes that moment.
 */

/**
 * `n` kill points in [from, to) ms, one uniform in each of n equal slices of the span, in a
 * random order: as random as n uniform draws, but never all in one part of the command (on S3
 * the writes that matter, the packs and the ref entry, come in the last third or so of it).
 */
export function killPoints(rand: () => number, n: number, from: number, to: number): number[] {
  const width = (to - from) / n
  const points = Array.from({ length: n }, (_, i) => Math.round(from + (i + rand()) * width))
  return shuffle(points, rand)
}

/** A TCP relay in front of the S3 server that tells when the next connection arrives. */
export interface Tap {
  /** `http://127.0.0.1:<port>`: the endpoint for the processes being timed. */
  endpoint: string
  /** Resolves at the next connection through the tap (one waiter at a time). */
  nextConnection(): Promise<void>
  close(): Promise<void>
}

export async function tap(target: string): Promise<Tap> {
  const { hostname, port } = new URL(target)
  const sockets = new Set<Socket>()
  let waiter: (() => void) | undefined
  const server: Server = createServer((client) => {
    const w = waiter
    waiter = undefined
    w?.()
    const remote = connect(Number(port), hostname)
    sockets.add(client)
    sockets.add(remote)
    client.pipe(remote)
    remote.pipe(client)
    // A killed client ends its connection as the kernel closes it: so does the relay, at once.
    const drop = (): void => {
      client.destroy()
      remote.destroy()
      sockets.delete(client)
      sockets.delete(remote)
    }
    for (const s of [client, remote]) {
      s.on('close', drop)
      s.on('error', drop)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port: local } = server.address() as { port: number }
  return {
    endpoint: `http://127.0.0.1:${local}`,
    nextConnection: () => new Promise<void>((resolve) => (waiter = resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/**
 * Run `pedigree <args>` with `env` (its AWS_ENDPOINT_URL set to the tap's) and SIGKILL it
 * `afterMs` ms after its first connection to the S3 server. No cleanup runs in the process:
 * its connections are cut wherever its requests were, as the kernel closes them.
 */
export function runAndKillS3(args: string[], cwd: string, env: Record<string, string>, via: Tap, afterMs: number): Promise<Killed> {
  let opened: number | undefined
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env, AWS_ENDPOINT_URL: via.endpoint, PEDIGREE_AUTHOR: AUTHOR, NO_COLOR: '1' }
  for (const k of ['NODE_ENV', 'PEDIGREE_REPO', 'PEDIGREE_LOCK_TIMEOUT', 'PEDIGREE_DEBUG', 'FORCE_COLOR', 'AWS_ENDPOINT_URL_S3']) delete childEnv[k]
  const connected = via.nextConnection()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: childEnv as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    let killed = false
    let timer: NodeJS.Timeout | undefined
    let ended = false
    const kill = (): void => {
      if (ended || child.exitCode !== null || child.signalCode !== null) return
      killed = true
      child.kill('SIGKILL')
    }
    // A process that never reaches the server is killed after two minutes.
    const deadline = setTimeout(kill, 120_000)
    void connected.then(() => {
      if (ended) return
      opened = Date.now()
      if (Number.isFinite(afterMs)) timer = setTimeout(kill, afterMs)
    })
    child.on('error', (e) => {
      ended = true
      clearTimeout(deadline)
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code) => {
      ended = true
      clearTimeout(deadline)
      clearTimeout(timer)
      const stdoutBytes = Buffer.concat(out)
      const openedMs = opened === undefined ? undefined : Date.now() - opened
      resolve({ code, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes, killed: killed && code === null, afterMs, openedMs })
    })
  })
}

/** Run a command to its end through the tap, timing it from its first connection to S3. */
export async function timeAfterConnect(args: string[], cwd: string, env: Record<string, string>, via: Tap): Promise<{ result: CliResult; ms: number }> {
  const r = await runAndKillS3(args, cwd, env, via, Infinity)
  expect(r.openedMs, `pedigree ${args.join(' ')} never connected to S3: ${r.stderr}`).toBeDefined()
  return { result: r, ms: r.openedMs! }
}

/**
 * harness.ts's `expectIntact` for the store at an s3:// URL: `fsck --repo <url>` exits 0 with
 * no problems (every block reachable from every ref and every reflog entry is in a pack whose
 * index exists, verifies against its CID and has the shape its parent says). Returns the refs.
 */
export async function expectIntactS3(url: string, cwd: string, env: Record<string, string>, context: string): Promise<Record<string, string>> {
  const fsck = await runJson<{ ok: boolean; problems: unknown[] }>(['fsck', '--repo', url], { cwd, env, timeoutMs: 60_000 })
  expect(fsck.code, `${context}: fsck of ${url} failed: ${JSON.stringify(fsck.json)}\n${fsck.stderr}`).toBe(0)
  expect(fsck.json.ok, context).toBe(true)
  expect(fsck.json.problems, context).toEqual([])
  const refs = await runJson<{ name: string; cid: string }[]>(['ref', 'list', '--repo', url], { cwd, env })
  expect(refs.code, `${context}: ${refs.stderr}`).toBe(0)
  return Object.fromEntries(refs.json.map((r) => [r.name, r.cid]))
}

/** The commits of `rev` in the store at `url`, newest first (an empty list if the ref does not exist). */
export async function historyS3(url: string, rev: string, cwd: string, env: Record<string, string>): Promise<{ cid: string; message: string }[]> {
  const r = await runJson<{ cid: string; message: string }[] | { error: { code: string } }>(['log', rev, '--repo', url], { cwd, env })
  if (!Array.isArray(r.json)) {
    expect(r.json.error.code, `log ${rev}: ${r.stderr}`).toBe('ERR_NOT_FOUND')
    return []
  }
  expect(r.code).toBe(0)
  return r.json
}

/** A ref's values in the store at `url`, oldest first, from its reflog (the log of its entries). */
export async function movesS3(url: string, ref: string, cwd: string, env: Record<string, string>): Promise<string[]> {
  const r = await runJson<{ new: string | null }[]>(['reflog', ref, '--repo', url], { cwd, env })
  expect(r.code, r.stderr).toBe(0)
  return r.json.map((l) => l.new!).reverse()
}

/** The packs of the store at `url`: how many CARs, and which of them have no index (orphans, never read). */
export async function packsS3(url: string, options: S3ConnectOptions): Promise<{ cars: number; orphans: number }> {
  const bucket = await S3Bucket.connect(parseS3Url(url), options)
  try {
    const cars = new Set<string>()
    const indexes = new Set<string>()
    for await (const page of bucket.list('packs/')) {
      for (const k of page.keys) {
        if (k.endsWith('.car')) cars.add(k.slice(0, -4))
        else if (k.endsWith('.idx')) indexes.add(k.slice(0, -4))
      }
    }
    return { cars: cars.size, orphans: [...cars].filter((c) => !indexes.has(c)).length }
  } finally {
    bucket.close()
  }
}

/**
 * Where the kills of one test landed, by what the bucket shows after each: before the process
 * wrote any pack; after it wrote packs (`orphan`: a CAR whose index it never wrote) but before
 * the ref moved; after the ref moved (the process had its cleanup still to do); or never
 * (it finished first).
 */
export class KillTally {
  readonly counts = { beforePacks: 0, packsNotRef: 0, orphan: 0, afterRef: 0, finished: 0 }

  add(k: Killed, packsBefore: { cars: number; orphans: number }, packsAfter: { cars: number; orphans: number }, refMoved: boolean): void {
    if (!k.killed) this.counts.finished++
    else if (refMoved) this.counts.afterRef++
    else if (packsAfter.cars > packsBefore.cars) {
      this.counts.packsNotRef++
      if (packsAfter.orphans > packsBefore.orphans) this.counts.orphan++
    } else this.counts.beforePacks++
  }

  /** Kills that landed while the command was at work against S3 (before it finished). */
  get inside(): number {
    return this.counts.beforePacks + this.counts.packsNotRef + this.counts.afterRef
  }

  toString(): string {
    const c = this.counts
    return `${c.beforePacks} before any pack, ${c.packsNotRef} after packs but before the ref moved (${c.orphan} leaving a CAR without its index), ${c.afterRef} after the ref moved, ${c.finished} after it finished`
  }
}
