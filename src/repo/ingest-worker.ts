import { parentPort, workerData } from 'node:worker_threads'
import { compileTemplate, encodeLines } from './ingest-line.js'

// Ingest's encoding worker (see ingest-encoder.ts): encodes the chunks of lines it is sent
// and sends each back with its buffers moved, not copied. A chunk it cannot encode (a bug:
// bad lines are results) comes back as failed, and the main thread encodes it itself.

const template = compileTemplate((workerData as { template: string }).template)
const port = parentPort!
port.on('message', ({ id, lines, firstLine }: { id: number; lines: string[]; firstLine: number }) => {
  let chunk
  try {
    chunk = encodeLines(lines, firstLine, template)
  } catch (e) {
    port.postMessage({ id, failed: String(e) })
    return
  }
  port.postMessage({ id, chunk }, [chunk.bytes, chunk.ends, chunk.cids, chunk.kinds].map((a) => a.buffer as ArrayBuffer))
})
