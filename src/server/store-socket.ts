import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { chmod, lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'
import { cidToString, type CID } from '../codec/cid.js'
import type { Block } from '../codec/block.js'
import { InvalidInputError, PedigreeError } from '../errors.js'
import {
  ABSENT,
  ByteReader,
  DAEMON_FILE,
  DAEMON_PROTOCOL,
  DaemonStore,
  STREAM_BATCH,
  daemonSocketDir,
  daemonSocketPath,
  errorToWire,
  u32,
  type DaemonHello,
  type DaemonInfo,
} from '../store/daemon.js'
import { cidFromBytes } from '../codec/cid.js'
import { decodeCidList } from '../codec/cid-list.js'
import type { RefLogRecord } from '../store/ref-cells.js'
import type { Store } from '../store/store.js'
import { statusOf } from './errors.js'

/*
 * The daemon end of src/store/daemon.ts: answers every Store call, from any number of local
 * processes at once, over HTTP on a unix socket, on the one open store of this process. The
 * wire format is described there; docs/daemon.md describes discovery and the security model.
 */

export interface StoreSocketOptions {
  /** Where to listen (default: {@link daemonSocketPath} of the store's folder). */
  socketPath?: string
  /** Which command serves it, written in the DAEMON file (default `pedigree daemon`). */
  what?: string
  /** How long `close` lets listings in progress go on before it cuts their connections (ms, default 10 s). */
  closeGraceMs?: number
}

export interface RunningStoreSocket {
  socketPath: string
  /**
   * Stop: remove the DAEMON file (new processes open the store themselves from then on), stop
   * accepting connections, let calls in flight finish, close the connections and remove the
   * socket. The store stays open.
   */
  close(): Promise<void>
}

/**
 * Serve `store` (an open local store) on a unix socket, and announce it in `<store>/DAEMON`
 * so that `Repository.open` on this store routes through it.
 *
 * @example
 * const store = await openLevelStore('/data/.pedigree')
 * const daemon = await startStoreSocket(store)
 * // … other processes now open /data/.pedigree through daemon.socketPath …
 * await daemon.close()
 * await store.close()
 */
export async function startStoreSocket(store: Store, { socketPath, what = 'pedigree daemon', closeGraceMs = 10_000 }: StoreSocketOptions = {}): Promise<RunningStoreSocket> {
  if (store instanceof DaemonStore) {
    throw new PedigreeError('ERR_EXISTS', `the store at ${store.location} is already served by a daemon (pid ${store.pid}, socket ${store.socketPath})`, {
      location: store.location,
      pid: store.pid,
      socket: store.socketPath,
    })
  }
  const root = store.location
  const path = socketPath ?? daemonSocketPath(root)
  if (path.startsWith(daemonSocketDir())) await privateDir(dirname(path))
  await removeStaleSocket(path)

  let inflight = 0
  let closing = false
  let idle: (() => void) | undefined
  const server: Server = createServer((req, res) => {
    inflight++
    if (closing) res.setHeader('connection', 'close')
    answer(store, req, res)
      .catch((e) => sendError(res, e))
      .finally(() => {
        inflight--
        if (inflight === 0) idle?.()
      })
  })
  // Local, trusted peers that hold connections for as long as they run: no idle or request timeouts
  // (an idle cut races a client reusing the connection, and a large putMany may take a while).
  server.keepAliveTimeout = 0
  server.requestTimeout = 0
  server.headersTimeout = 0

  // Only the owner may connect, like the store's own files: the socket is created 0600 (a umask
  // of 0177 around the bind, which happens synchronously within listen(), restored at once), then
  // chmod'ed as well for where the umask cannot be changed.
  const old = restrictUmask()
  let listening: Promise<void>
  try {
    listening = new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } finally {
    if (old !== undefined) process.umask(old)
  }
  try {
    await listening
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    throw new PedigreeError('ERR_STORE', `cannot listen on ${path}: ${(e as Error).message}`, { socket: path, reason: code }, { cause: e })
  }

  const info: DaemonInfo = { pid: process.pid, host: hostname(), socket: path, since: new Date().toISOString(), what }
  const daemonFile = join(root, DAEMON_FILE)
  try {
    await chmod(path, 0o600)
    // Announced only once it listens, and atomically: a reader never sees half a file.
    const tmp = `${daemonFile}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify(info) + '\n', { mode: 0o600 })
    await rename(tmp, daemonFile)
  } catch (e) {
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await rm(path, { force: true })
    throw new PedigreeError('ERR_STORE', `cannot announce the daemon in ${daemonFile}: ${(e as Error).message}`, { location: root }, { cause: e })
  }

  let closed: Promise<void> | undefined
  return {
    socketPath: path,
    close() {
      closed ??= (async () => {
        // First the announcement, so that no new process comes here; only if it is still ours.
        try {
          const now = JSON.parse(await readFile(daemonFile, 'utf8')) as DaemonInfo
          if (now.pid === info.pid && now.socket === info.socket) await rm(daemonFile, { force: true })
        } catch {
          // already gone
        }
        closing = true
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeIdleConnections()
        if (inflight > 0) {
          const drained = new Promise<void>((resolve) => (idle = resolve))
          let timer: NodeJS.Timeout | undefined
          await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, closeGraceMs)))])
          clearTimeout(timer)
        }
        server.closeAllConnections()
        await stopped
        await rm(path, { force: true })
      })()
      return closed
    },
  }
}

/**
 * Set a umask of 0177 (sockets bound now are 0600) and return the old one; undefined where a
 * process may not change it (worker threads), and then the chmod after listening has to do.
 */
function restrictUmask(): number | undefined {
  try {
    return process.umask(0o177)
  } catch {
    return undefined
  }
}

/** The per-user socket folder: created 0700, and refused if someone else owns it or can enter it. */
async function privateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const st = await lstat(dir)
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new PedigreeError('ERR_STORE', `refusing to put the daemon's socket in ${dir}: it must be a folder owned by you with mode 0700`, { dir })
  }
}

/** A socket left by a daemon that was killed. The caller holds the store, so no live daemon uses it. */
async function removeStaleSocket(path: string): Promise<void> {
  let st
  try {
    st = await lstat(path)
  } catch {
    return
  }
  if (!st.isSocket()) throw new PedigreeError('ERR_EXISTS', `cannot listen on ${path}: a file that is not a socket is there`, { socket: path })
  await rm(path, { force: true })
}

// ---------------------------------------------------------------------------------------------

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

async function args(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = (await body(req)).toString('utf8')
  if (text === '') return {}
  try {
    const v = JSON.parse(text) as unknown
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>
  } catch {
    // below
  }
  throw new InvalidInputError('the store daemon expects a JSON object as arguments')
}

function str(a: Record<string, unknown>, name: string, optional = false): string {
  const v = a[name]
  if (optional && (v === undefined || v === null)) return ''
  if (typeof v !== 'string') throw new InvalidInputError(`the store daemon expects '${name}' to be a string`)
  return v
}

function sendJson(res: ServerResponse, value: unknown): void {
  const text = JSON.stringify(value)
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function sendError(res: ServerResponse, e: unknown): void {
  const wire = errorToWire(e)
  if (res.headersSent) {
    // A listing already under way: its last line says what went wrong.
    if (!res.destroyed) res.end(JSON.stringify({ error: wire }) + '\n')
    return
  }
  const text = JSON.stringify({ error: wire })
  res.writeHead(wire.code ? statusOf(wire.code) : 500, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** Write, waiting while the socket's buffer is full; false once the client has gone. */
async function write(res: ServerResponse, chunk: string | Uint8Array): Promise<boolean> {
  if (res.destroyed) return false
  if (!res.write(chunk)) await drainOrClose(res)
  return !res.destroyed
}

/**
 * Wait until `res` drains or closes, leaving no listener behind: a large getMany waits here
 * once per block, and listeners left by the wait that lost piled up on the response.
 */
function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

/** A listing as JSON lines of up to STREAM_BATCH items; stops (closing the store's iterator) if the client goes. */
async function stream<T>(res: ServerResponse, items: AsyncIterable<T>, toJson: (item: T) => unknown = (x) => x): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' })
  let batch: unknown[] = []
  for await (const item of items) {
    batch.push(toJson(item))
    if (batch.length >= STREAM_BATCH) {
      if (!(await write(res, JSON.stringify({ items: batch }) + '\n'))) return
      batch = []
    }
  }
  if (batch.length && !(await write(res, JSON.stringify({ items: batch }) + '\n'))) return
  res.end(JSON.stringify({ end: true }) + '\n')
}

/** putMany's body, block by block, as it arrives; `withBases`: each CID followed by its delta base's (or none). */
async function readBlocks(req: IncomingMessage, withBases = false): Promise<{ blocks: Block[]; bases: Map<Block, CID> }> {
  const r = new ByteReader(req as AsyncIterable<Buffer>)
  const blocks: Block[] = []
  const bases = new Map<Block, CID>()
  for (;;) {
    const n = await r.u8()
    if (n === undefined) return { blocks, bases }
    const cid = cidFromBytes(await r.exact(n))
    const baseLength = withBases ? await r.u8() : 0
    const base = baseLength ? cidFromBytes(await r.exact(baseLength)) : undefined
    const block = { cid, bytes: await r.exact(await r.u32()) }
    blocks.push(block)
    if (base) bases.set(block, base)
  }
}

async function answer(store: Store, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://daemon')
  switch (url.pathname) {
    case '/hello': {
      await body(req)
      const hello: DaemonHello = {
        pedigree: 'store-daemon',
        protocol: DAEMON_PROTOCOL,
        store: store.location,
        pid: process.pid,
        supports: store.blocks.supports,
        storedSizes: typeof store.blocks.storedSizes === 'function',
        entriesMany: typeof store.index.entriesMany === 'function',
      }
      return sendJson(res, hello)
    }

    // Blocks
    case '/blocks/getMany': {
      const cids = decodeCidList(await body(req))
      const blocks = await store.blocks.getMany(cids)
      let length = 0
      for (const b of blocks) length += 4 + (b?.length ?? 0)
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': length })
      for (const b of blocks) {
        if (!(await write(res, u32(b === undefined ? ABSENT : b.length)))) return
        if (b !== undefined && b.length > 0 && !(await write(res, b))) return
      }
      res.end()
      return
    }
    case '/blocks/hasMany': {
      const found = await store.blocks.hasMany(decodeCidList(await body(req)))
      const out = Buffer.from(found.map((f) => (f ? 1 : 0)))
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.length })
      res.end(out)
      return
    }
    case '/blocks/putMany': {
      const { blocks } = await readBlocks(req)
      await store.blocks.putMany(blocks, url.searchParams.get('compress') === '0' ? { compress: false } : {})
      return sendJson(res, {})
    }
    case '/blocks/putManyWithBases': {
      const { blocks, bases } = await readBlocks(req, true)
      await store.blocks.putMany(blocks, { deltaBase: (b) => bases.get(b) })
      return sendJson(res, {})
    }
    case '/blocks/storedSizes': {
      const cids = decodeCidList(await body(req))
      if (!store.blocks.storedSizes) throw new PedigreeError('ERR_UNSUPPORTED', 'this store does not report stored sizes')
      return sendJson(res, (await store.blocks.storedSizes(cids)).map((s) => s ?? null))
    }
    case '/blocks/cids': {
      const a = await args(req)
      return stream(res, store.blocks.cids({ prefix: str(a, 'prefix', true) }), (c: CID) => cidToString(c))
    }

    // Refs
    case '/refs/get': {
      const value = await store.refs.get(str(await args(req), 'name'))
      return sendJson(res, value === undefined ? {} : { value })
    }
    case '/refs/list':
      return stream(res, store.refs.list(str(await args(req), 'prefix', true)))
    case '/refs/compareAndSwap': {
      const a = await args(req)
      const record = a.record as RefLogRecord
      if (!record || typeof record !== 'object') throw new InvalidInputError("the store daemon expects 'record' to be a ref log record")
      return sendJson(res, { swapped: await store.refs.compareAndSwap(str(a, 'name'), record) })
    }
    case '/refs/log':
      return stream(res, store.refs.log(str(await args(req), 'name')))
    case '/refs/logged':
      await body(req)
      return stream(res, store.refs.logged())

    // Config
    case '/config/get': {
      const value = await store.config.get(str(await args(req), 'key'))
      return sendJson(res, value === undefined ? { found: false } : { found: true, value })
    }
    case '/config/set': {
      const a = await args(req)
      await store.config.set(str(a, 'key'), a.value)
      return sendJson(res, {})
    }
    case '/config/delete':
      await store.config.delete(str(await args(req), 'key'))
      return sendJson(res, {})
    case '/config/entries':
      return stream(res, store.config.entries(str(await args(req), 'prefix', true)))

    // Index
    case '/index/get': {
      const value = await store.index.get(str(await args(req), 'key'))
      return sendJson(res, value === undefined ? {} : { value })
    }
    case '/index/getMany': {
      const keys = (await args(req)).keys
      if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new InvalidInputError("the store daemon expects 'keys' to be a list of strings")
      return sendJson(res, { values: (await store.index.getMany(keys)).map((v) => v ?? null) })
    }
    case '/index/putMany': {
      const entries = (await args(req)).entries
      if (!Array.isArray(entries)) throw new InvalidInputError("the store daemon expects 'entries' to be a list")
      await store.index.putMany(entries as [string, string][])
      return sendJson(res, {})
    }
    case '/index/entries': {
      const a = await args(req)
      const limit = typeof a.limit === 'number' ? a.limit : undefined
      return stream(res, store.index.entries(str(a, 'prefix', true), limit === undefined ? {} : { limit }))
    }
    case '/index/entriesMany': {
      const a = await args(req)
      if (!Array.isArray(a.prefixes) || typeof a.limit !== 'number') throw new InvalidInputError("the store daemon expects 'prefixes' and 'limit'")
      const prefixes = a.prefixes as string[]
      if (store.index.entriesMany) return sendJson(res, await store.index.entriesMany(prefixes, { limit: a.limit }))
      const { entriesForPrefixes } = await import('../store/ref-cells.js')
      return sendJson(res, await entriesForPrefixes(store.index, prefixes, a.limit))
    }
    case '/index/clear':
      await store.index.clear(str(await args(req), 'prefix', true))
      return sendJson(res, {})

    default:
      await body(req)
      throw new PedigreeError('ERR_NOT_FOUND', `the store daemon has no call ${url.pathname}`, { route: url.pathname })
  }
}
