import { Agent, request, type IncomingMessage } from 'node:http'
import { readFile, realpath } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { cidToString, parseCid, type CID } from '../codec/cid.js'
import { encodeCidList } from '../codec/cid-list.js'
import { DAEMON_FILE } from './daemon-file.js'
import type { Block } from '../codec/block.js'
import {
  AmbiguousRevisionError,
  ConflictError,
  CorruptBlockError,
  InvalidInputError,
  InvalidRefNameError,
  NotFoundError,
  PedigreeError,
  RefusedError,
  StoreError,
  StoreLockedError,
  UnsafePathError,
} from '../errors.js'
import type { BlockSizes, Blockstore, BlockstoreSupports, PutOptions } from './blockstore.js'
import type { ConfigCells, IndexCells, RefCells, RefLogRecord } from './ref-cells.js'
import type { Store } from './store.js'
import { processAlive } from '../util/process-alive.js'

/*
 * A Store whose every call is answered by another process that holds the real store (a
 * `pedigree daemon` or `pedigree serve`), over HTTP on a unix socket (see
 * src/server/store-socket.ts for the other end, docs/daemon.md for the whole picture).
 *
 * The wire, shared by both ends:
 *   - every call is `POST /<area>/<method>`; arguments are JSON, except block lists;
 *   - a CID list (getMany, hasMany, storedSizes) is binary: per CID, u8 length then its bytes;
 *   - putMany's body is binary: per block, u8 CID length, the CID's bytes, u32 length, the bytes;
 *     `?compress=0` carries PutOptions.compress = false; `/blocks/putManyWithBases` carries
 *     PutOptions.deltaBase: after each CID, u8 length and the bytes of its delta base's CID
 *     (0: none);
 *   - getMany's answer is binary: per CID, u32 length then the bytes, or 0xffffffff if absent;
 *   - listings (cids, refs list/log/logged, config and index entries) stream newline-separated
 *     JSON lines `{"items":[…]}` and end with `{"end":true}` (or `{"error":…}`), so neither end
 *     holds a whole listing; a client that stops reading closes the connection, and the
 *     daemon stops its iterator;
 *   - a failed call answers a non-200 status and `{"error":{name, code, message, data}}`;
 *     the client throws the same error class with the same code, message and data.
 */

export { DAEMON_FILE }
/** Socket paths longer than this (bytes) do not fit a sockaddr_un on every OS (Linux 108, macOS 104). */
const MAX_SOCKET_PATH = 100
/** Absent block in a getMany answer. */
export const ABSENT = 0xffffffff
/** Items per line of a streamed listing. */
export const STREAM_BATCH = 256
/** Protocol version, checked by the client on connect (3: `/index/getMany`). */
export const DAEMON_PROTOCOL = 3

/** What the DAEMON file says. */
export interface DaemonInfo {
  pid: number
  host: string
  /** The unix socket the daemon listens on. */
  socket: string
  /** ISO 8601. */
  since: string
  /** Which command serves it (`pedigree daemon`, `pedigree serve`). */
  what: string
}

/** What `/hello` answers: enough to check that the socket serves this store. */
export interface DaemonHello {
  pedigree: 'store-daemon'
  protocol: number
  store: string
  pid: number
  supports: BlockstoreSupports
  storedSizes: boolean
  entriesMany: boolean
}

/**
 * Where the daemon of the store at `root` listens: `<root>/daemon.sock` when that path fits
 * the OS limit, else a name derived from a hash of the root in a per-user folder of the
 * temporary directory (created 0700 by the daemon).
 */
export function daemonSocketPath(root: string): string {
  const local = join(root, 'daemon.sock')
  if (Buffer.byteLength(local) <= MAX_SOCKET_PATH) return local
  const hash = createHash('sha256').update(root).digest('hex').slice(0, 24)
  return join(daemonSocketDir(), `${hash}.sock`)
}

/** The per-user folder for sockets whose store path is too long. */
export function daemonSocketDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user'
  return join(tmpdir(), `pedigree-${uid}`)
}

/**
 * The daemon that the DAEMON file in `root` names, if the file is there, was written on this
 * host and its process still lives; undefined otherwise (no daemon, or a stale file left by a
 * daemon that was killed). Whether its socket answers is for {@link openDaemonStore} to find.
 */
export async function readDaemonFile(root: string): Promise<DaemonInfo | undefined> {
  let text: string
  try {
    text = await readFile(join(root, DAEMON_FILE), 'utf8')
  } catch {
    return undefined
  }
  let info: DaemonInfo
  try {
    info = JSON.parse(text) as DaemonInfo
  } catch {
    return undefined // being written, or garbage: treat as absent; the lock still protects the store
  }
  if (!info || typeof info.socket !== 'string' || !Number.isSafeInteger(info.pid)) return undefined
  if (info.host !== hostname()) return undefined // a unix socket does not reach another machine
  if (!processAlive(info.pid)) return undefined
  return info
}


// ---------------------------------------------------------------------------------------------
// Errors on the wire

/** Every error class a store may throw, by name, so that the client rebuilds the same class. */
const ERROR_CLASSES: Record<string, new (...args: never[]) => PedigreeError> = {
  PedigreeError,
  NotFoundError,
  InvalidInputError,
  InvalidRefNameError,
  AmbiguousRevisionError,
  ConflictError,
  CorruptBlockError,
  UnsafePathError,
  StoreLockedError,
  RefusedError,
  StoreError,
}

export interface WireError {
  name: string
  code?: string
  message: string
  data?: Record<string, unknown>
}

/** An error as it travels: its class name, code, message and data. */
export function errorToWire(e: unknown): WireError {
  if (e instanceof PedigreeError) return { name: e.name, code: e.code, message: e.message, data: e.data }
  const err = e as Error
  return { name: err?.name ?? 'Error', message: err?.message ?? String(e) }
}

/** The error that travelled, rebuilt as the same class (a PedigreeError subclass, or a plain Error). */
export function errorFromWire(w: WireError): Error {
  if (typeof w.code === 'string') {
    const Class = ERROR_CLASSES[w.name] ?? PedigreeError
    // Constructed as a PedigreeError with the code, message and data that travelled, but as an
    // instance of the class it was: subclass constructors build their message from parts.
    return Reflect.construct(PedigreeError, [w.code, w.message, w.data ?? {}], Class) as PedigreeError
  }
  const e = new Error(w.message)
  if (w.name && w.name !== 'Error') e.name = w.name
  return e
}

// ---------------------------------------------------------------------------------------------
// Binary framing

/** Reads exact byte counts from a stream of chunks, copying them out (no view keeps a chunk alive). */
export class ByteReader {
  private chunks: Buffer[] = []
  private head = 0
  private available = 0
  private readonly it: AsyncIterator<Buffer>

  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]()
  }

  /** `n` bytes, or undefined at a clean end of the stream (when `n` bytes were never begun). */
  async read(n: number): Promise<Uint8Array | undefined> {
    if (n === 0) return new Uint8Array(0)
    while (this.available < n) {
      const next = await this.it.next()
      if (next.done) {
        if (this.available === 0) return undefined
        throw new StoreError(`truncated message from the store daemon: wanted ${n} bytes, ${this.available} left`)
      }
      this.chunks.push(next.value)
      this.available += next.value.length
    }
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.chunks[0]!
      const take = Math.min(n - filled, chunk.length - this.head)
      out.set(chunk.subarray(this.head, this.head + take), filled)
      filled += take
      this.head += take
      if (this.head === chunk.length) {
        this.chunks.shift()
        this.head = 0
      }
    }
    this.available -= n
    return out
  }

  /** Exactly `n` bytes; the stream ending first is an error. */
  async exact(n: number): Promise<Uint8Array> {
    const b = await this.read(n)
    if (b === undefined) throw new StoreError(`truncated message from the store daemon: wanted ${n} bytes`)
    return b
  }

  async u8(): Promise<number | undefined> {
    const b = await this.read(1)
    return b === undefined ? undefined : b[0]!
  }

  async u32(): Promise<number> {
    const b = await this.exact(4)
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0
  }
}

export function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(n >>> 0)
  return b
}

// ---------------------------------------------------------------------------------------------
// The client

export interface DaemonStoreOptions {
  /** How long connecting and the first answer may take before the daemon counts as absent (ms, default 5 s). */
  connectTimeoutMs?: number
}

interface Call {
  route: string
  /** JSON-encodable arguments, or raw bytes (a list of buffers written in turn). */
  json?: unknown
  body?: readonly Uint8Array[]
}

/** Thrown when the socket cannot be reached at all (so a caller may fall back to opening the store itself). */
export class DaemonUnreachableError extends StoreError {}

/**
 * The Store of the daemon that listens on `socketPath`, for the store at `location` (the real
 * store's folder, used in messages and checked against what the daemon serves). Throws
 * DaemonUnreachableError if nothing answers there within `connectTimeoutMs`.
 *
 * @example
 * const info = await readDaemonFile('/data/.pedigree')
 * if (info) repo = new Repository(await openDaemonStore(info.socket, '/data/.pedigree'))
 */
export async function openDaemonStore(socketPath: string, location: string, { connectTimeoutMs = 5_000 }: DaemonStoreOptions = {}): Promise<DaemonStore> {
  const client = new DaemonClient(socketPath, location)
  let hello: DaemonHello
  try {
    hello = (await client.json({ route: '/hello' }, connectTimeoutMs)) as DaemonHello
  } catch (e) {
    client.close()
    if (e instanceof DaemonUnreachableError) throw e
    throw new DaemonUnreachableError(`the store daemon at ${socketPath} did not answer: ${(e as Error).message}`, { location, socket: socketPath }, { cause: e })
  }
  const same = await sameFolder(hello?.store, location)
  if (hello?.pedigree !== 'store-daemon' || hello.protocol !== DAEMON_PROTOCOL || !same) {
    client.close()
    throw new DaemonUnreachableError(`the socket ${socketPath} does not serve the store at ${location} (it answered ${JSON.stringify(hello).slice(0, 200)})`, {
      location,
      socket: socketPath,
    })
  }
  return new DaemonStore(client, location, hello)
}

async function sameFolder(a: unknown, b: string): Promise<boolean> {
  if (typeof a !== 'string') return false
  if (a === b) return true
  const [ra, rb] = await Promise.all([realpath(a).catch(() => a), realpath(b).catch(() => b)])
  return ra === rb
}

/** HTTP on the unix socket, with a keep-alive pool; turns answers and failures into values and errors. */
class DaemonClient {
  // A bounded pool: a burst of calls (500 concurrent puts) queues here rather than overflowing the
  // socket's listen backlog. Listings hold a connection while their consumer reads, so the
  // bound is generous enough for listings nested inside listings.
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 })

  constructor(
    readonly socketPath: string,
    readonly location: string,
  ) {}

  close(): void {
    this.agent.destroy()
  }

  /** Send a call and wait for the head of its answer; a failed call is thrown as the error it was. */
  private async send({ route, json, body }: Call, timeoutMs?: number): Promise<IncomingMessage> {
    const parts: readonly Uint8Array[] = body ?? (json === undefined ? [] : [Buffer.from(JSON.stringify(json), 'utf8')])
    let length = 0
    for (const p of parts) length += p.length
    const started = Date.now()
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.attempt(route, parts, length, body !== undefined, timeoutMs)
      } catch (e) {
        // EAGAIN: the daemon's listen backlog is full (many processes connecting at once).
        // Nothing was sent, so trying again is safe.
        const code = (e as StoreError).data?.reason
        if (code !== 'EAGAIN' || Date.now() - started > (timeoutMs ?? 30_000)) throw e
        await new Promise((r) => setTimeout(r, Math.min(100, 2 ** attempt) + Math.random() * 10))
      }
    }
  }

  private async attempt(route: string, parts: readonly Uint8Array[], length: number, binary: boolean, timeoutMs?: number): Promise<IncomingMessage> {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          agent: this.agent,
          method: 'POST',
          path: route,
          headers: { 'content-type': binary ? 'application/octet-stream' : 'application/json', 'content-length': length },
        },
        resolve,
      )
      let timer: NodeJS.Timeout | undefined
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
        req.once('response', () => clearTimeout(timer))
      }
      req.once('error', (e) => {
        clearTimeout(timer)
        reject(this.unreachable(route, e))
      })
      for (const p of parts) req.write(p)
      req.end()
    })
    if (res.statusCode !== 200) throw await this.errorOf(res, route)
    return res
  }

  async json(call: Call, timeoutMs?: number): Promise<unknown> {
    const res = await this.send(call, timeoutMs)
    return JSON.parse((await this.readAll(res, call.route)).toString('utf8'))
  }

  /** A call whose answer is binary: the whole answer, read from `res` by `read`. */
  async binary<T>(call: Call, read: (reader: ByteReader) => Promise<T>): Promise<T> {
    const res = await this.send(call)
    try {
      return await read(new ByteReader(this.guard(res, call.route)))
    } finally {
      if (!res.complete) res.destroy()
    }
  }

  /** A streamed listing: items as they arrive; stopping early closes the connection. */
  async *stream<T>(call: Call): AsyncGenerator<T> {
    const res = await this.send(call)
    let ended = false
    try {
      let rest = ''
      for await (const chunk of this.guard(res, call.route)) {
        rest += (chunk as Buffer).toString('utf8')
        let nl: number
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl)
          rest = rest.slice(nl + 1)
          const msg = JSON.parse(line) as { items?: T[]; end?: boolean; error?: WireError }
          if (msg.error) {
            ended = true
            throw errorFromWire(msg.error)
          }
          if (msg.end) {
            ended = true
            return
          }
          for (const item of msg.items ?? []) yield item
        }
      }
      throw this.stopped(call.route, 'the listing ended early')
    } finally {
      if (!ended || !res.complete) res.destroy()
    }
  }

  /** The answer's chunks, with a dropped connection turned into a clear error. */
  private async *guard(res: IncomingMessage, route: string): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of res) yield chunk as Buffer
    } catch (e) {
      throw this.stopped(route, (e as Error).message)
    }
    if (!res.complete) throw this.stopped(route, 'the answer was cut off')
  }

  private async readAll(res: IncomingMessage, route: string): Promise<Buffer> {
    const chunks: Buffer[] = []
    for await (const c of this.guard(res, route)) chunks.push(c)
    return Buffer.concat(chunks)
  }

  private async errorOf(res: IncomingMessage, route: string): Promise<Error> {
    let text = ''
    try {
      text = (await this.readAll(res, route)).toString('utf8')
      const w = (JSON.parse(text) as { error?: WireError }).error
      if (w && typeof w.message === 'string') return errorFromWire(w)
    } catch {
      // fall through
    }
    return new StoreError(`the store daemon at ${this.socketPath} answered ${route} with HTTP ${res.statusCode}: ${text.slice(0, 200)}`, {
      location: this.location,
      socket: this.socketPath,
      status: res.statusCode,
    })
  }

  private unreachable(route: string, e: unknown): StoreError {
    const code = (e as NodeJS.ErrnoException)?.code
    const why = code === 'ECONNREFUSED' || code === 'ENOENT' ? 'nothing listens there (the daemon stopped?)' : (e as Error)?.message ?? String(e)
    return new DaemonUnreachableError(`cannot reach the store daemon of ${this.location} at ${this.socketPath} (${route}): ${why}`, {
      location: this.location,
      socket: this.socketPath,
      route,
      reason: code ?? why,
    }, { cause: e })
  }

  private stopped(route: string, why: string): StoreError {
    return new StoreError(`the store daemon of ${this.location} at ${this.socketPath} stopped answering (${route}): ${why}`, {
      location: this.location,
      socket: this.socketPath,
      route,
    })
  }
}

class DaemonBlockstore implements Blockstore {
  readonly storedSizes?: (cids: readonly CID[]) => Promise<(BlockSizes | undefined)[]>

  constructor(
    private readonly client: DaemonClient,
    readonly supports: BlockstoreSupports,
    hasStoredSizes: boolean,
  ) {
    if (hasStoredSizes) {
      this.storedSizes = async (cids) => {
        if (cids.length === 0) return []
        const sizes = (await client.json({ route: '/blocks/storedSizes', body: [encodeCidList(cids)] })) as (BlockSizes | null)[]
        return sizes.map((s) => s ?? undefined)
      }
    }
  }

  async get(cid: CID): Promise<Uint8Array> {
    const bytes = await this.tryGet(cid)
    if (!bytes) throw new NotFoundError('block', cidToString(cid))
    return bytes
  }
  async tryGet(cid: CID): Promise<Uint8Array | undefined> {
    return (await this.getMany([cid]))[0]
  }
  async getMany(cids: readonly CID[]): Promise<(Uint8Array | undefined)[]> {
    if (cids.length === 0) return []
    return this.client.binary({ route: '/blocks/getMany', body: [encodeCidList(cids)] }, async (r) => {
      const out: (Uint8Array | undefined)[] = []
      for (let i = 0; i < cids.length; i++) {
        const n = await r.u32()
        out.push(n === ABSENT ? undefined : await r.exact(n))
      }
      return out
    })
  }
  async has(cid: CID): Promise<boolean> {
    return (await this.hasMany([cid]))[0]!
  }
  async hasMany(cids: readonly CID[]): Promise<boolean[]> {
    if (cids.length === 0) return []
    return this.client.binary({ route: '/blocks/hasMany', body: [encodeCidList(cids)] }, async (r) => {
      const flags = await r.exact(cids.length)
      return [...flags].map((f) => f === 1)
    })
  }
  async put(block: Block): Promise<void> {
    await this.putMany([block])
  }
  async putMany(blocks: readonly Block[], options: PutOptions = {}): Promise<void> {
    if (blocks.length === 0) return
    // Delta bases matter only where the daemon may compress.
    const deltaBase = options.compress === false ? undefined : options.deltaBase
    // The block bytes go as they are: no copy, no base64.
    const parts: Uint8Array[] = []
    for (const b of blocks) {
      const base = deltaBase ? (deltaBase(b)?.bytes ?? new Uint8Array(0)) : undefined
      const head = Buffer.allocUnsafe(1 + b.cid.bytes.length + (base ? 1 + base.length : 0) + 4)
      let at = 0
      head[at++] = b.cid.bytes.length
      head.set(b.cid.bytes, at)
      at += b.cid.bytes.length
      if (base) {
        head[at++] = base.length
        head.set(base, at)
        at += base.length
      }
      head.writeUInt32BE(b.bytes.length, at)
      parts.push(head, b.bytes)
    }
    const route = deltaBase ? '/blocks/putManyWithBases' : options.compress === false ? '/blocks/putMany?compress=0' : '/blocks/putMany'
    await this.client.json({ route, body: parts })
  }
  async *cids({ prefix = '' }: { prefix?: string } = {}): AsyncIterable<CID> {
    for await (const text of this.client.stream<string>({ route: '/blocks/cids', json: { prefix } })) yield parseCid(text)
  }
}

class DaemonRefCells implements RefCells {
  constructor(private readonly client: DaemonClient) {}
  async get(name: string): Promise<string | undefined> {
    return ((await this.client.json({ route: '/refs/get', json: { name } })) as { value?: string }).value
  }
  list(prefix = ''): AsyncIterable<[string, string]> {
    return this.client.stream<[string, string]>({ route: '/refs/list', json: { prefix } })
  }
  async compareAndSwap(name: string, record: RefLogRecord): Promise<boolean> {
    return ((await this.client.json({ route: '/refs/compareAndSwap', json: { name, record } })) as { swapped: boolean }).swapped
  }
  log(name: string): AsyncIterable<RefLogRecord> {
    return this.client.stream<RefLogRecord>({ route: '/refs/log', json: { name } })
  }
  logged(): AsyncIterable<string> {
    return this.client.stream<string>({ route: '/refs/logged', json: {} })
  }
}

class DaemonConfigCells implements ConfigCells {
  constructor(private readonly client: DaemonClient) {}
  async get<T = unknown>(key: string): Promise<T | undefined> {
    const answer = (await this.client.json({ route: '/config/get', json: { key } })) as { found: boolean; value?: T }
    return answer.found ? answer.value : undefined
  }
  async set(key: string, value: unknown): Promise<void> {
    // What the store would refuse, refused here: a value with no JSON form would arrive as nothing.
    if ((JSON.stringify(value) as string | undefined) === undefined) throw new InvalidInputError(`config value for '${key}' is not JSON (got ${typeof value})`, { key })
    await this.client.json({ route: '/config/set', json: { key, value } })
  }
  async delete(key: string): Promise<void> {
    await this.client.json({ route: '/config/delete', json: { key } })
  }
  entries(prefix = ''): AsyncIterable<[string, unknown]> {
    return this.client.stream<[string, unknown]>({ route: '/config/entries', json: { prefix } })
  }
}

class DaemonIndexCells implements IndexCells {
  readonly entriesMany?: (prefixes: readonly string[], options: { limit: number }) => Promise<[string, string][][]>

  constructor(
    private readonly client: DaemonClient,
    hasEntriesMany: boolean,
  ) {
    if (hasEntriesMany) {
      this.entriesMany = async (prefixes, { limit }) =>
        prefixes.length === 0 ? [] : ((await client.json({ route: '/index/entriesMany', json: { prefixes, limit } })) as [string, string][][])
    }
  }
  async get(key: string): Promise<string | undefined> {
    return ((await this.client.json({ route: '/index/get', json: { key } })) as { value?: string }).value
  }
  async getMany(keys: readonly string[]): Promise<(string | undefined)[]> {
    if (keys.length === 0) return []
    const { values } = (await this.client.json({ route: '/index/getMany', json: { keys } })) as { values: (string | null)[] }
    return values.map((v) => v ?? undefined)
  }
  async putMany(entries: readonly [string, string][]): Promise<void> {
    if (entries.length === 0) return
    await this.client.json({ route: '/index/putMany', json: { entries } })
  }
  entries(prefix: string, { limit }: { limit?: number } = {}): AsyncIterable<[string, string]> {
    return this.client.stream<[string, string]>({ route: '/index/entries', json: { prefix, limit: limit === undefined || limit === Infinity ? null : limit } })
  }
  async clear(prefix: string): Promise<void> {
    await this.client.json({ route: '/index/clear', json: { prefix } })
  }
}

/**
 * A Store served by a daemon process (see {@link openDaemonStore}). Closing it closes only the
 * connections; the daemon and its store stay up.
 */
export class DaemonStore implements Store {
  readonly blocks: Blockstore
  readonly refs: RefCells
  readonly config: ConfigCells
  readonly index: IndexCells
  /** The daemon's process id, for messages. */
  readonly pid: number

  constructor(
    private readonly client: DaemonClient,
    readonly location: string,
    hello: DaemonHello,
  ) {
    this.pid = hello.pid
    this.blocks = new DaemonBlockstore(client, hello.supports, hello.storedSizes)
    this.refs = new DaemonRefCells(client)
    this.config = new DaemonConfigCells(client)
    this.index = new DaemonIndexCells(client, hello.entriesMany)
  }

  /** The socket this store is reached through. */
  get socketPath(): string {
    return this.client.socketPath
  }

  async close(): Promise<void> {
    this.client.close()
  }
}
