import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MessagePort, Worker } from 'node:worker_threads'

/**
 * Work of a long command (ingest's encoding) handed to a worker thread in
 * jobs, so that the main thread goes on with what only it can do (the store, the trees) and
 * the command uses both cores. The same work runs here, on the main thread, whenever a worker
 * would not pay or cannot be had, with the same results:
 *
 * - until the caller asks for the worker (a short input never pays the ~30 ms a worker costs
 *   to start);
 * - when the worker's module is not there: it is a file of the build (dist/), so running from
 *   the TypeScript sources has none;
 * - after the worker failed (its pending jobs are done here; a job the worker could not do
 *   fails here too, with the error itself).
 *
 * Results come back in the order jobs were given. Buffers named in a job's or a result's
 * transfer list are moved between threads, not copied.
 */

/** node:worker_threads is loaded with the first worker: most commands never start one (~0.6 ms of start-up). */
const loadBuiltin = createRequire(import.meta.url)

/** What a job's function returns: its result, and the buffers to move with it. */
export interface JobOutput<R> {
  result: R
  transfer?: ArrayBuffer[]
}

interface Pending<J, R> {
  job: J
  resolve: (result: R) => void
  reject: (e: unknown) => void
}

export class JobWorker<J, R> {
  private worker?: Worker
  private readonly module: URL | undefined
  /** False once the worker cannot be used (no module, or it failed): jobs are done here. */
  private usable: boolean
  private readonly pending = new Map<number, Pending<J, R>>()
  private nextId = 0

  /**
   * @param module the worker's module, as `new URL('./x-worker.js', import.meta.url)`: next to
   *   the caller's module in dist/ (the library), or in dist/chunks/ for the bundled CLI, whose
   *   code runs from dist/commands/ or dist/chunks/ (scripts/bundle-cli.mjs puts it there).
   * @param setup given to the worker (as `workerData`) once.
   * @param here the job's function on this thread (the worker's module runs the same one).
   */
  constructor(
    module: URL,
    private readonly setup: unknown,
    private readonly here: (job: J) => R,
    { enabled = true }: { enabled?: boolean } = {},
  ) {
    const candidates = [module, new URL(`../chunks/${basename(fileURLToPath(module))}`, module)]
    this.module = enabled ? candidates.find((url) => existsSync(fileURLToPath(url))) : undefined
    this.usable = this.module !== undefined
  }

  /** Whether jobs are going to a worker thread (one was started and has not failed). */
  get onWorkerThread(): boolean {
    return this.worker !== undefined
  }

  /**
   * Do `job`: on the worker once it runs, or when `startWorker` asks for it; here otherwise.
   * `transfer` lists buffers of the job to move to the worker (the caller must not use them after).
   */
  run(job: J, { startWorker = false, transfer = [] }: { startWorker?: boolean; transfer?: ArrayBuffer[] } = {}): Promise<R> {
    if (!this.usable || (!this.worker && !startWorker)) return this.runHere(job)
    let worker: Worker
    try {
      worker = this.start()
    } catch {
      this.usable = false
      return this.runHere(job)
    }
    const id = this.nextId++
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { job, resolve, reject })
      worker.postMessage({ id, job }, transfer)
    })
  }

  /** Stop the worker. Jobs still pending are dropped (their promises reject): call it once their results are not wanted. */
  async close(): Promise<void> {
    const worker = this.worker
    this.usable = false
    this.worker = undefined
    const pending = [...this.pending.values()]
    this.pending.clear()
    for (const p of pending) p.reject(new Error('the worker was closed'))
    await worker?.terminate()
  }

  private runHere(job: J): Promise<R> {
    try {
      return Promise.resolve(this.here(job))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const { Worker: WorkerThread } = loadBuiltin('node:worker_threads') as typeof import('node:worker_threads')
    const worker = new WorkerThread(this.module!, { workerData: this.setup })
    worker.on('message', (m: { id: number; result?: R; failed?: string }) => {
      const p = this.pending.get(m.id)
      if (!p) return
      this.pending.delete(m.id)
      if (m.failed === undefined) p.resolve(m.result as R)
      else this.runHere(p.job).then(p.resolve, p.reject)
    })
    worker.on('error', () => this.fail(worker))
    worker.on('exit', () => this.fail(worker))
    this.worker = worker
    return worker
  }

  /** The worker failed: its pending jobs, and all later ones, are done here. */
  private fail(worker: Worker): void {
    if (this.worker !== worker) return
    this.worker = undefined
    this.usable = false
    const pending = [...this.pending.values()]
    this.pending.clear()
    for (const p of pending) this.runHere(p.job).then(p.resolve, p.reject)
  }
}

/**
 * The worker side: answer each job posted by a {@link JobWorker} with `work(job)`. A job that
 * throws comes back as failed, and the main thread does it again, where it throws for real.
 * Call it from a worker module, with `parentPort` and `workerData` from node:worker_threads.
 */
export function serveJobs<S, J, R>(port: MessagePort, setup: S, makeWork: (setup: S) => (job: J) => JobOutput<R>): void {
  const work = makeWork(setup)
  port.on('message', ({ id, job }: { id: number; job: J }) => {
    let out: JobOutput<R>
    try {
      out = work(job)
    } catch (e) {
      port.postMessage({ id, failed: String(e) })
      return
    }
    port.postMessage({ id, result: out.result }, out.transfer ?? [])
  })
}
