import { createRequire } from 'node:module'
import type { Worker } from 'node:worker_threads'
import { sha256 } from './cid.js'

/**
 * sha2-256 of large blocks on a second thread, so that streaming a file uses two cores: this
 * thread cuts chunks (or hands verified ones on) while the worker hashes the previous ones.
 *
 * Why a worker rather than WebCrypto's `subtle.digest` (which also hashes in libuv's pool):
 * digest copies its input into freshly allocated memory on the calling thread, and fresh
 * memory costs a page fault per 4 KiB on first touch; measured here (Node 20, 2 cores) the
 * calling thread spent ~0.65 s per GiB on that, as long as hashing the bytes itself. The
 * worker reads the caller's bytes in place when they live in a SharedArrayBuffer (the
 * chunker's windows do), and otherwise from a reused staging buffer (a copy into memory that
 * is already mapped runs at ~8 GB/s).
 *
 * The worker is started on first use, kept for the life of the process, and holds the
 * process open only while a hash is pending. When it has {@link MAX_QUEUED_BYTES} to do
 * already, or staging is full, the caller hashes the block itself: both cores stay busy and
 * memory stays bounded whoever is slower.
 */

/** Below this, posting to the worker costs more than hashing here. */
const MIN_WORKER_BYTES = 64 * 1024
/** Bytes queued for the worker beyond which callers hash on their own thread. */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024
/** Reused memory that non-shared bytes are copied into for the worker to read. */
const STAGING_BYTES = 2 * MAX_QUEUED_BYTES

/** node:worker_threads is loaded with the first worker: most commands never start one (~0.6 ms of start-up). */
const loadBuiltin = createRequire(import.meta.url)

// CommonJS, evaluated in the worker: no file to locate whether pedigree runs from dist/ or src/.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createHash } = require('node:crypto')
parentPort.on('message', (jobs) => {
  parentPort.postMessage(jobs.map(({ id, buffer, start, end }) => ({ id, digest: createHash('sha256').update(new Uint8Array(buffer, start, end - start)).digest() })))
})
`

interface Job {
  resolve: (digest: Uint8Array) => void
  /** The caller's bytes (unchanged until the job settles): hashed here if the worker dies. */
  bytes: Uint8Array
  /** Where the bytes were staged, freed when the job is done (jobs finish in order). */
  staged?: { start: number; end: number }
}

class HashWorker {
  private worker?: Worker
  private readonly jobs = new Map<number, Job>()
  private nextId = 0
  private queued = 0
  private staging?: Uint8Array
  /** Staged regions of pending jobs, oldest first; they are contiguous in ring order. */
  private readonly staged: Array<{ start: number; end: number }> = []
  private writeAt = 0
  private outbox: Array<{ id: number; buffer: SharedArrayBuffer; start: number; end: number }> = []

  digest(bytes: Uint8Array): Promise<Uint8Array> {
    if (bytes.length < MIN_WORKER_BYTES || this.queued + bytes.length > MAX_QUEUED_BYTES) return Promise.resolve(sha256(bytes))
    let worker: Worker
    try {
      worker = this.start()
    } catch {
      // No worker threads here (a restricted runtime): hashing on this thread is still correct.
      return Promise.resolve(sha256(bytes))
    }
    let buffer: SharedArrayBuffer
    let start: number
    let staged: Job['staged']
    if (bytes.buffer instanceof SharedArrayBuffer) {
      buffer = bytes.buffer
      start = bytes.byteOffset
    } else {
      const at = this.stage(bytes.length)
      if (at === undefined) return Promise.resolve(sha256(bytes))
      this.staging!.set(bytes, at)
      buffer = this.staging!.buffer as SharedArrayBuffer
      start = at
      staged = { start: at, end: at + bytes.length }
      this.staged.push(staged)
    }
    const id = this.nextId++
    this.queued += bytes.length
    if (this.jobs.size === 0) worker.ref()
    return new Promise<Uint8Array>((resolve) => {
      this.jobs.set(id, { resolve, bytes, staged })
      this.outbox.push({ id, buffer, start, end: start + bytes.length })
      // Jobs go in one message per turn of the event loop (a piece read from a file is a few
      // chunks): fewer messages, fewer times the worker is woken.
      if (this.outbox.length === 1) setImmediate(() => this.post())
    })
  }

  private post(): void {
    const jobs = this.outbox
    this.outbox = []
    if (jobs.length > 0) this.worker?.postMessage(jobs)
  }

  /** A free region of `n` bytes in the staging ring, or undefined if it is full. */
  private stage(n: number): number | undefined {
    this.staging ??= new Uint8Array(new SharedArrayBuffer(STAGING_BYTES))
    const size = this.staging.length
    if (n > size) return undefined
    if (this.staged.length === 0) this.writeAt = 0
    const oldest = this.staged[0]?.start
    let at: number | undefined
    if (oldest === undefined || this.writeAt > oldest) {
      // Free: from writeAt to the end, then from the start up to the oldest live region.
      if (this.writeAt + n <= size) at = this.writeAt
      else if (oldest === undefined || n <= oldest) at = 0
    } else if (this.writeAt + n <= oldest) {
      at = this.writeAt
    }
    if (at !== undefined) this.writeAt = at + n
    return at
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const { Worker: WorkerThread } = loadBuiltin('node:worker_threads') as typeof import('node:worker_threads')
    const worker = new WorkerThread(WORKER_SOURCE, { eval: true })
    worker.unref()
    worker.on('message', (results: Array<{ id: number; digest: Uint8Array }>) => {
      for (const { id, digest } of results) this.done(id, digest)
    })
    // A worker that fails (it should not) costs speed, not correctness: what it had is hashed
    // here, and the next large block starts a new one.
    const fail = (): void => {
      if (this.worker !== worker) return
      this.worker = undefined
      const jobs = [...this.jobs.values()]
      this.jobs.clear()
      this.staged.length = 0
      this.queued = 0
      this.outbox = []
      for (const job of jobs) job.resolve(sha256(job.bytes))
    }
    worker.on('error', fail)
    worker.on('exit', fail)
    this.worker = worker
    return worker
  }

  private done(id: number, digest: Uint8Array): void {
    const job = this.jobs.get(id)
    if (!job) return
    this.jobs.delete(id)
    this.queued -= job.bytes.length
    if (job.staged) this.staged.shift()
    if (this.jobs.size === 0) this.worker?.unref()
    job.resolve(new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength))
  }
}

const shared = new HashWorker()

/**
 * sha2-256 of `bytes`, on the hashing worker when that pays (large blocks, worker not behind),
 * on this thread otherwise. The bytes must not change until the promise settles.
 *
 * @example
 *   const digest = await sha256Async(chunk)
 */
export function sha256Async(bytes: Uint8Array): Promise<Uint8Array> {
  return shared.digest(bytes)
}
