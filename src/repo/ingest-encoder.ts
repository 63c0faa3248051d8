import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { Worker } from 'node:worker_threads'
import { compileTemplate, encodeLines, type EncodedChunk, type PathTemplate } from './ingest-line.js'

/**
 * Ingest's line encoder: parses, encodes and hashes chunks of JSON Lines on a worker thread
 * while the main thread builds trees and writes to the store, so that ingest uses both cores.
 * Measured on 100k task records: parsing, encoding and hashing are about a third of the main
 * thread's time when done there (bench/perf/NOTES.md, session 6).
 *
 * A short input never starts the worker (starting one costs ~30 ms): chunks are encoded here
 * until one is full. Without a worker (its module not found next to this one, as when running
 * from TypeScript sources, or worker threads unavailable), or if it fails, chunks are encoded
 * here: the results are the same, only slower.
 */

/** Lines per chunk: enough that posting a chunk (~0.1 ms) is small beside encoding it (~15 ms). */
export const CHUNK_LINES = 512
/** Characters at which a chunk of long lines is full before {@link CHUNK_LINES}: what it holds stays a few MiB. */
export const CHUNK_CHARS = 4 * 1024 * 1024

/** node:worker_threads is loaded with the first worker: most ingests of a few lines never start one. */
const loadBuiltin = createRequire(import.meta.url)

/**
 * The worker's module: next to this one in dist/ (tsc's output, the library), or in dist/chunks/
 * for the bundled CLI, whose code runs from dist/commands/ or dist/chunks/ (scripts/bundle-cli.mjs).
 * From the TypeScript sources there is none.
 */
function workerModule(): URL | undefined {
  return [new URL('./ingest-worker.js', import.meta.url), new URL('../chunks/ingest-worker.js', import.meta.url)].find((url) => existsSync(fileURLToPath(url)))
}

interface Job {
  lines: string[]
  firstLine: number
  resolve: (chunk: EncodedChunk) => void
  reject: (e: unknown) => void
}

export class LineEncoder {
  private readonly template: PathTemplate
  private worker?: Worker
  private readonly module: URL | undefined
  /** False once the worker cannot be used (none here, or it failed): chunks are encoded on this thread. */
  private useWorker: boolean
  private readonly jobs = new Map<number, Job>()
  private nextId = 0

  /** @param onWorker whether to encode full chunks on a worker thread (when its module is here). */
  constructor(
    private readonly pathTemplate: string,
    { onWorker = true }: { onWorker?: boolean } = {},
  ) {
    this.template = compileTemplate(pathTemplate)
    this.module = onWorker ? workerModule() : undefined
    this.useWorker = this.module !== undefined
  }

  /** Whether chunks are going to a worker thread (one has been started and has not failed). */
  get onWorkerThread(): boolean {
    return this.worker !== undefined
  }

  /**
   * Encode the lines of a chunk (line numbers from `firstLine`). The first `full` chunk starts
   * the worker; a short input (its one chunk not full) is encoded here.
   */
  encode(lines: string[], firstLine: number, { full = true }: { full?: boolean } = {}): Promise<EncodedChunk> {
    if (!this.useWorker || (!this.worker && !full)) return this.here(lines, firstLine)
    let worker: Worker
    try {
      worker = this.start()
    } catch {
      this.useWorker = false
      return this.here(lines, firstLine)
    }
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.jobs.set(id, { lines, firstLine, resolve, reject })
      worker.postMessage({ id, lines, firstLine })
    })
  }

  /** Stop the worker. Chunks still pending are dropped (their promises reject): call it when ingest is done with them. */
  async close(): Promise<void> {
    const worker = this.worker
    this.useWorker = false
    this.worker = undefined
    const jobs = [...this.jobs.values()]
    this.jobs.clear()
    for (const job of jobs) job.reject(new Error('ingest: the line encoder was closed'))
    await worker?.terminate()
  }

  private here(lines: string[], firstLine: number): Promise<EncodedChunk> {
    try {
      return Promise.resolve(encodeLines(lines, firstLine, this.template))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const { Worker: WorkerThread } = loadBuiltin('node:worker_threads') as typeof import('node:worker_threads')
    const worker = new WorkerThread(this.module!, { workerData: { template: this.pathTemplate } })
    worker.on('message', (m: { id: number; chunk?: EncodedChunk; failed?: string }) => {
      const job = this.jobs.get(m.id)
      if (!job) return
      this.jobs.delete(m.id)
      // A chunk the worker could not encode (a bug, not a bad line: those come back as results)
      // is encoded here, which throws the error itself.
      if (m.chunk) job.resolve(m.chunk)
      else this.here(job.lines, job.firstLine).then(job.resolve, job.reject)
    })
    worker.on('error', () => this.fail(worker))
    worker.on('exit', () => this.fail(worker))
    this.worker = worker
    return worker
  }

  /** The worker failed or is stopping: its pending chunks, and all later ones, are encoded here. */
  private fail(worker: Worker): void {
    if (this.worker !== worker) return
    this.worker = undefined
    this.useWorker = false
    const jobs = [...this.jobs.values()]
    this.jobs.clear()
    for (const job of jobs) this.here(job.lines, job.firstLine).then(job.resolve, job.reject)
  }
}
