import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { CarWriter } from '@ipld/car/writer'
import type { Block } from '../../src/codec/block.js'
import { parseCid, type CID } from '../../src/codec/cid.js'
import type { Repository } from '../../src/repo/repository.js'
import { startServer, type ListenOptions, type RunningServer } from '../../src/server/server.js'
import { CID_LIST_MEDIA_TYPE, decodeCidList } from '../../src/sync/http-transport.js'
import { serveBlocks, serveCommits, serveRefs } from '../../src/sync/provide.js'

/** Servers started by a test, all closed by `closeAll`. */
export class Servers {
  private readonly running: { close(): Promise<void> }[] = []

  /** `pedigree serve` over `repo`, in this process, on an ephemeral 127.0.0.1 port. */
  async start(repo: Repository, options: ListenOptions = {}): Promise<RunningServer> {
    const s = await startServer(repo, { host: '127.0.0.1', port: 0, ...options })
    this.running.push(s)
    return s
  }

  /** A hand-written server that speaks the protocol over `repo` but misbehaves as `tamper` says. */
  async hostile(repo: Repository, tamper: Tamper): Promise<string> {
    const server = createServer((req, res) => {
      answer(repo, tamper, req, res).catch((e) => {
        res.statusCode = 500
        res.end(String(e))
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    this.running.push({ close: () => closeServer(server) })
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  async closeAll(): Promise<void> {
    for (const s of this.running.splice(0)) await s.close().catch(() => {})
  }
}

/** How a hostile server misbehaves: replace or drop (undefined) a block it serves. */
export interface Tamper {
  serve?: (block: Block) => Block | undefined
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

/** A request body: JSON, or a binary CID list (what the client sends for has/get) as `{cids}`. */
async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const parts: Buffer[] = []
  for await (const p of req) parts.push(p as Buffer)
  const body = Buffer.concat(parts)
  if (req.headers['content-type'] === CID_LIST_MEDIA_TYPE) return { cids: decodeCidList(body).map((c) => c.toString()) }
  return parts.length ? JSON.parse(body.toString('utf8')) : {}
}

const cids = (v: unknown): CID[] => ((v as string[] | undefined) ?? []).map((t) => parseCid(t))

/** Answer the read half of the sync protocol, building CARs with @ipld/car's own writer. */
async function answer(repo: Repository, tamper: Tamper, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x')
  if (req.method === 'GET' && url.pathname === '/v1/refs') {
    const refs = await serveRefs(repo)
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ refs: refs.map((r) => ({ name: r.name, cid: r.cid.toString() })) }))
    return
  }
  const body = await readBody(req)
  if (url.pathname === '/v1/sync/has') {
    const have = await repo.blocks.hasMany(cids(body.cids))
    res.setHeader('content-type', 'application/octet-stream')
    res.end(Buffer.from(have.map((h) => (h ? 1 : 0))))
    return
  }
  let blocks: AsyncIterable<Block>
  if (url.pathname === '/v1/sync/get') blocks = serveBlocks(repo, cids(body.cids))
  else if (url.pathname === '/v1/sync/walk') blocks = serveCommits(repo, cids(body.heads), { have: cids(body.have), limit: body.limit as number })
  else {
    res.statusCode = 404
    res.end('not here')
    return
  }
  const { writer, out } = CarWriter.create([])
  res.setHeader('content-type', 'application/vnd.ipld.car')
  const piped = new Promise<void>((resolve, reject) => Readable.from(out).pipe(res).on('finish', resolve).on('error', reject))
  for await (const b of blocks) {
    const sent = tamper.serve ? tamper.serve(b) : b
    if (sent) await writer.put(sent)
  }
  await writer.close()
  await piped
}
