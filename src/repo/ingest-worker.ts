import { parentPort, workerData } from 'node:worker_threads'
import { serveJobs } from '../util/job-worker.js'
import { encodeChunkJob } from './ingest-line.js'

// Ingest's encoding worker: see lineEncoder in ingest-line.ts.
serveJobs(parentPort!, workerData as string, encodeChunkJob)
