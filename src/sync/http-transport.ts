import { encodeDagCbor } from '../codec/dag-cbor-encode.js'
import { decodeCidList, encodeCidList } from '../codec/cid-list.js'
import type { Block } from '../codec/block.js'
import { CID, MAX_BLOCK_SIZE, cidFirst, cidToString, parseCid } from '../codec/cid.js'
import { decodeDagCbor } from '../codec/dag-cbor-decode.js'
import { InvalidInputError, PedigreeError } from '../errors.js'
import type { OpenTransportOptions } from './open-transport.js'
import { varint } from 'multiformats'
import { Agent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import type { PutBlocksResult, RemoteRef, RemoteRefResult, RemoteRefUpdate, Transport } from './transport.js'

/*
 * The sync protocol of `pedigree serve`, version 1: one HTTP request per Transport call.
 *
 *   GET  v1/refs          → {refs: [{name, cid}]}
 *   POST v1/sync/has      {cids}                → {have: [boolean]}
 *                         or binary CIDs (CID_LIST_MEDIA_TYPE) → one byte per CID, 1 = has it
 *   POST v1/sync/get      {cids} or binary CIDs → CAR stream of the blocks it has
 *   POST v1/sync/walk     {heads, have, limit}  → CAR stream of commit and tag nodes
 *   POST v1/sync/put      CAR stream            → {blocks, bytes}
 *   POST v1/sync/cas      {name, expected, next, who, message, force} → {name, old, new}
 *
 * CIDs travel as base32 text in JSON, in binary inside CARv1 streams (roots: none), and as
 * binary lists in the client's `has` and `get` requests (36 bytes a CID instead of ~65 of JSON,
 * and no base32 to encode and parse: a first push asks about every block it sends). Errors
 * are `{error: {code, message, data}}` with a fitting status; the client rebuilds the same
 * PedigreeError, so a command fails the same way (and with the same exit code) as it does
 * against a path remote. This module holds both ends' shared pieces (CAR framing) and the
 * client; src/server/ holds the server.
 */

/** Media type of a CAR stream. */
export const CAR_MEDIA_TYPE = 'application/vnd.ipld.car'
/** Media type of a binary list of CIDs: their binary forms, one after another. */
export const CID_LIST_MEDIA_TYPE = 'application/vnd.pedigree.cids'
/** Protocol routes, relative to the server's base URL. */
export const ROUTES = {
  refs: 'v1/refs',
  has: 'v1/sync/has',
  get: 'v1/sync/get',
  walk: 'v1/sync/walk',
  put: 'v1/sync/put',
  cas: 'v1/sync/cas',
} as const

/** Environment variable the CLI reads a bearer token from when the remote is http(s)://. */
export const TOKEN_ENV = 'PEDIGREE_TOKEN'

// ---------------------------------------------------------------------------------------
// CARv1 framing, streamed

/** Small blocks are framed into buffers of about this size (fewer, larger writes to the socket). */
const FRAME_BYTES = 256 * 1024
/** Blocks at least this big go out as their own chunk, without a copy. */
const LARGE_BLOCK = 64 * 1024

/** Write `n` as a varint (LEB128) at `at`; returns the offset after it. */
function writeVarint(n: number, into: Uint8Array, at: number): number {
  varint.encodeTo(n, into, at)
  return at + varint.encodingLength(n)
}

/** The header of a CARv1 stream: varint length, then dag-cbor `{roots, version: 1}`. */
export function carHeader(roots: readonly CID[] = []): Uint8Array {
  const { bytes: body } = encodeDagCbor({ roots: [...roots], version: 1 })
  const out = new Uint8Array(varint.encodingLength(body.length) + body.length)
  out.set(body, writeVarint(body.length, out, 0))
  return out
}

/**
 * A CARv1 stream of `blocks` (https://ipld.io/specs/transport/car/carv1/): the header, then each
 * block as varint(length) · CID · bytes. Small blocks are gathered into buffers of about
 * 256 KiB; large ones are passed through as they are. Memory stays bounded by one buffer plus
 * the block in hand.
 *
 * @example
 * for await (const chunk of carStream(blocks)) socket.write(chunk)
 */
export async function* carStream(blocks: AsyncIterable<Block> | Iterable<Block>, roots: readonly CID[] = []): AsyncGenerator<Uint8Array> {
  let buf = new Uint8Array(FRAME_BYTES)
  let at = 0
  const header = carHeader(roots)
  buf.set(header, 0)
  at = header.length
  for await (const { cid, bytes } of blocks) {
    const id = cid.bytes
    const length = id.length + bytes.length
    const head = varint.encodingLength(length) + id.length
    if (bytes.length >= LARGE_BLOCK) {
      const prefix = new Uint8Array(head)
      prefix.set(id, writeVarint(length, prefix, 0))
      if (at > 0) {
        yield buf.subarray(0, at)
        buf = new Uint8Array(FRAME_BYTES)
        at = 0
      }
      yield prefix
      yield bytes
      continue
    }
    if (at + head + bytes.length > buf.length) {
      yield buf.subarray(0, at)
      buf = new Uint8Array(FRAME_BYTES)
      at = 0
    }
    at = writeVarint(length, buf, at)
    buf.set(id, at)
    at += id.length
    buf.set(bytes, at)
    at += bytes.length
  }
  if (at > 0) yield buf.subarray(0, at)
}

/**
 * The blocks of a CAR stream, as they arrive. Not verified (the caller verifies each block
 * against its CID). A stream that ends mid-block, or is not a CAR, fails with ERR_CORRUPT
 * naming `source`; `data.truncated` says which. A section declaring more than a block can
 * hold is refused as soon as its length is read, before any of it is gathered.
 *
 * Parsed here rather than by @ipld/car's iterator, which awaits a promise for every field of
 * every section (about eight per block) and copies the unread rest of its buffer together
 * with each new chunk: for a push of 100k small blocks that was ~0.4 s of the receiver's main
 * thread and much of its garbage. Here a chunk is parsed synchronously block by block; a
 * block that lies within one chunk is a view of it, and one that spans chunks is gathered once
 * into memory of its own size.
 */
export async function* carBlocks(chunks: AsyncIterable<Uint8Array>, source: string): AsyncGenerator<Block> {
  const it = chunks[Symbol.asyncIterator]()
  let buf: Uint8Array = EMPTY
  let at = 0
  let done = false
  const next = async (): Promise<Uint8Array | undefined> => {
    if (done) return undefined
    let r: IteratorResult<Uint8Array>
    try {
      r = await it.next()
    } catch (e) {
      done = true
      throw badCar(source, e)
    }
    if (r.done) {
      done = true
      return undefined
    }
    return r.value
  }
  /** Make at least `n` unread bytes (or all that remain, if fewer) contiguous in `buf` at `at`. */
  const fill = async (n: number): Promise<boolean> => {
    while (buf.length - at < n) {
      const chunk = await next()
      if (!chunk) return false
      if (chunk.length === 0) continue
      if (at >= buf.length) buf = chunk
      else {
        const joined = new Uint8Array(buf.length - at + chunk.length)
        joined.set(buf.subarray(at), 0)
        joined.set(chunk, buf.length - at)
        buf = joined
      }
      at = 0
    }
    return true
  }
  /** A varint at `at` (LEB128, at most 8 bytes), or undefined once the stream has ended cleanly before it. */
  const readVarint = async (what: string): Promise<number | undefined> => {
    for (;;) {
      let value = 0
      let scale = 1
      for (let i = at; i < buf.length && i - at < 8; i++) {
        const b = buf[i]!
        value += (b & 0x7f) * scale
        scale *= 128
        if (b < 0x80) {
          at = i + 1
          return value
        }
      }
      if (buf.length - at >= 8) throw corrupt(source, `${what}: a varint longer than 8 bytes`, false)
      const had = buf.length - at
      if (!(await fill(had + 1))) {
        if (had === 0) return undefined
        throw corrupt(source, `unexpected end of data in ${what}`, true)
      }
    }
  }
  /** The next `n` bytes: a view of `buf` when they are in it, else gathered into their own memory. */
  const take = async (n: number, what: string): Promise<Uint8Array> => {
    if (buf.length - at >= n) {
      const out = buf.subarray(at, at + n)
      at += n
      return out
    }
    const out = new Uint8Array(n)
    let have = buf.length - at
    out.set(buf.subarray(at), 0)
    buf = EMPTY
    at = 0
    while (have < n) {
      const chunk = await next()
      if (!chunk) throw corrupt(source, `unexpected end of data in ${what} (${have} of ${n} bytes)`, true)
      const used = Math.min(chunk.length, n - have)
      out.set(used === chunk.length ? chunk : chunk.subarray(0, used), have)
      have += used
      if (used < chunk.length) {
        buf = chunk
        at = used
      }
    }
    return out
  }

  try {
    // The header: varint length, then dag-cbor {version: 1, roots: [CID…]}.
    const headerLength = await readVarint('the header')
    if (headerLength === undefined) throw corrupt(source, 'unexpected end of data: the stream is empty', true)
    if (headerLength === 0 || headerLength > MAX_HEADER) throw corrupt(source, `a header of ${headerLength} bytes`, false)
    const headerBytes = await take(headerLength, 'the header')
    let header: { version?: unknown; roots?: unknown }
    try {
      header = decodeDagCbor(headerBytes)
    } catch (e) {
      throw corrupt(source, `the header is not dag-cbor (${(e as Error).message})`, false)
    }
    if (header === null || typeof header !== 'object' || header.version !== 1 || !Array.isArray(header.roots) || !header.roots.every((r) => CID.asCID(r))) {
      throw corrupt(source, 'the header is not {version: 1, roots: [CID…]}', false)
    }
    // Sections: varint(length) · CID · bytes.
    for (;;) {
      const length = await readVarint('a section length')
      if (length === undefined) return
      if (length === 0) throw corrupt(source, 'a section of zero length', false)
      if (length > MAX_BLOCK_SIZE + MAX_SECTION_HEAD) {
        throw new PedigreeError('ERR_CORRUPT', `the CAR stream from ${source} holds a block over the ${MAX_BLOCK_SIZE}-byte limit`, { source, limit: MAX_BLOCK_SIZE, truncated: false })
      }
      const section = await take(length, 'a block')
      let cid: CID
      let bytes: Uint8Array
      try {
        ;[cid, bytes] = cidFirst(section)
      } catch (e) {
        throw corrupt(source, `a section does not start with a CID (${(e as Error).message})`, false)
      }
      yield { cid, bytes }
    }
  } finally {
    // Stopped early (a bad block, an error): let the source release what it holds.
    if (!done) await it.return?.().catch(() => {})
  }
}

const EMPTY = new Uint8Array(0)
/** Most bytes of a CAR header this reader accepts (a header lists roots: a few CIDs). */
const MAX_HEADER = 1024 * 1024

function corrupt(source: string, why: string, truncated: boolean): PedigreeError {
  return new PedigreeError('ERR_CORRUPT', `the CAR stream from ${source} is ${truncated ? 'truncated' : 'not valid CARv1'}: ${why}`, { source, reason: why, truncated })
}

/** Room for a section's length and CID before its bytes (a CID of a store is 36 bytes). */
const MAX_SECTION_HEAD = 1024

function badCar(source: string, e: unknown): PedigreeError {
  if (e instanceof PedigreeError) return e
  const message = (e as Error)?.message ?? String(e)
  const truncated = /unexpected end/i.test(message)
  return new PedigreeError('ERR_CORRUPT', `the CAR stream from ${source} is ${truncated ? 'truncated' : 'not valid CARv1'}: ${message}`, { source, reason: message, truncated }, { cause: e })
}

/** A web ReadableStream pulling from an async iterator (what fetch streams fastest as a request body). */
function webStream(source: AsyncIterator<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await source.next()
      if (next.done) controller.close()
      else controller.enqueue(next.value)
    },
    async cancel() {
      await source.return?.()
    },
  })
}

/** How far a push reads its local blocks ahead of the socket. */
const READ_AHEAD_BYTES = 16 * 1024 * 1024

/**
 * The items of `source`, read up to `maxBytes` ahead of the consumer: reading the local store
 * overlaps with sending (and with the server writing), instead of taking turns with them. An
 * error of the source reaches the consumer after the items read before it.
 */
export async function* readAhead(source: AsyncIterable<Block>, maxBytes: number): AsyncGenerator<Block> {
  const queue: Block[] = []
  let head = 0
  let queued = 0
  let done = false
  let failure: { e: unknown } | undefined
  let wake: (() => void) | undefined
  let space: (() => void) | undefined
  const signal = (): void => {
    wake?.()
    wake = undefined
  }
  const it = source[Symbol.asyncIterator]()
  let stopped = false
  let exhausted = false
  const pump = (async () => {
    try {
      for (;;) {
        while (queued >= maxBytes && !stopped) await new Promise<void>((r) => (space = r))
        if (stopped) return
        const next = await it.next()
        if (next.done) {
          exhausted = true
          return
        }
        queue.push(next.value)
        queued += next.value.bytes.length
        signal()
      }
    } catch (e) {
      failure = { e }
    } finally {
      done = true
      signal()
    }
  })()
  try {
    for (;;) {
      if (head < queue.length) {
        const b = queue[head]!
        // Let go of it here: the taken part stays in the array until the next splice below,
        // and a slot still holding its block kept every large block sent so far alive (a push
        // of a 512 MiB file held all of it).
        queue[head++] = undefined as unknown as Block
        // Array.shift is O(length) on a long queue (tens of thousands of small blocks fit in
        // maxBytes): take from a moving head instead, and drop the taken part now and then.
        if (head >= 4096 && head * 2 >= queue.length) {
          queue.splice(0, head)
          head = 0
        }
        queued -= b.bytes.length
        space?.()
        space = undefined
        yield b
        continue
      }
      if (done) break
      await new Promise<void>((r) => (wake = r))
    }
    if (failure) throw failure.e
  } finally {
    // The consumer stopped early: stop reading, and let the source clean up.
    stopped = true
    space?.()
    await pump
    if (!exhausted && !failure) await it.return?.()
  }
}

// ---------------------------------------------------------------------------------------
// Binary CID lists

export { encodeCidList, decodeCidList }

// ---------------------------------------------------------------------------------------
// JSON forms of the protocol's messages

export const cidsToJson = (cids: readonly CID[]): string[] => cids.map((c) => cidToString(c))

/** Parse a list of CIDs from a request or answer; `field` names it in the error. */
export function cidsFromJson(value: unknown, field: string): CID[] {
  if (!Array.isArray(value)) throw new InvalidInputError(`'${field}' must be an array of CID strings`, { field })
  return value.map((v) => {
    if (typeof v !== 'string') throw new InvalidInputError(`'${field}' must be an array of CID strings`, { field })
    return parseCid(v)
  })
}

/** A RemoteRefUpdate as JSON. */
export function updateToJson(u: RemoteRefUpdate): Record<string, unknown> {
  return {
    name: u.name,
    expected: u.expected ? cidToString(u.expected) : null,
    next: cidToString(u.next),
    who: u.who,
    message: u.message,
    force: u.force ?? false,
  }
}

// ---------------------------------------------------------------------------------------
// The client

export interface HttpTransportOptions extends OpenTransportOptions {
  /**
   * Bearer token sent with every request. Default: the environment variable PEDIGREE_TOKEN
   * (read here, like a cloud SDK reads its credentials), or none. Surrounding whitespace (a
   * trailing newline from `$(cat file)`) and a leading `Bearer ` are dropped.
   */
  token?: string
  /**
   * How long a request waits for the server to say anything, in ms. Default: the environment
   * variable PEDIGREE_HTTP_TIMEOUT (seconds), else 300 s.
   */
  timeoutMs?: number
}

/** Environment variable with the seconds a request waits for the server to answer. */
export const TIMEOUT_ENV = 'PEDIGREE_HTTP_TIMEOUT'
/** How long a request waits for the server to say anything, unless told otherwise (as fetch does). */
export const DEFAULT_TIMEOUT_MS = 300_000

/**
 * The token to send, from `value` (named `source` in errors): trimmed, without a leading
 * `Bearer ` (people paste the whole header value), and refused if what is left has whitespace
 * or control characters in it, which no token has and no HTTP header may carry.
 */
export function cleanToken(value: string | undefined, source = TOKEN_ENV): string | undefined {
  if (value === undefined) return undefined
  const token = value.trim().replace(/^Bearer\s+/i, '')
  if (token === '') return undefined
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(token)) {
    throw new InvalidInputError(`${source} holds whitespace or control characters inside the token; set it to the token alone (pdg_…)`, { source })
  }
  // eslint-disable-next-line no-control-regex
  if (/[^\x21-\x7e]/.test(token)) throw new InvalidInputError(`${source} holds characters no token has (only printable ASCII); set it to the token alone (pdg_…)`, { source })
  return token
}

/** The request timeout in ms from the value of PEDIGREE_HTTP_TIMEOUT (seconds; > 0), or the default. */
export function timeoutFrom(value: string | undefined): number {
  if (value === undefined || value.trim() === '') return DEFAULT_TIMEOUT_MS
  const seconds = Number(value)
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new InvalidInputError(`${TIMEOUT_ENV} must be a number of seconds above 0, not '${value}'`, { value })
  }
  return Math.round(seconds * 1000)
}

/**
 * The transport to a `pedigree serve` at an `http(s)://` URL (a path after the host is kept,
 * for a server behind a reverse proxy). Nothing is contacted until the first call. Nothing it
 * receives is trusted: blocks go to the caller unverified, and fetch/clone verify each one (and
 * the DAG's completeness) before any ref moves; the server verifies what a push sends.
 *
 * @example
 * const t = await openHttpTransport('http://127.0.0.1:8080', { token: process.env.PEDIGREE_TOKEN })
 * try { console.log(await t.listRefs()) } finally { await t.close() }
 */
export async function openHttpTransport(url: string, options: HttpTransportOptions = {}): Promise<Transport> {
  const token = options.token !== undefined ? cleanToken(options.token, 'the token') : cleanToken(process.env[TOKEN_ENV])
  return new HttpTransport(url, token, options.timeoutMs ?? timeoutFrom(process.env[TIMEOUT_ENV]))
}

type JsonBody = Record<string, unknown>

/** Most bytes of an answer read whole (a ref listing of a large store is a few MiB). */
const MAX_ANSWER = 256 * 1024 * 1024

export class HttpTransport implements Transport {
  private readonly base: URL
  private readonly inFlight = new Set<AbortController>()
  /** Answers being read (CAR streams): close() cancels them, so that no read waits on. */
  private readonly reading = new Set<ReadableStreamDefaultReader<Uint8Array>>()
  /** Connections kept for the JSON requests, which go through node:http (see jsonRequest). */
  private agent: Agent | undefined

  constructor(
    readonly url: string,
    private readonly token?: string,
    /** How long a request waits for the server to say anything (ms). */
    private readonly timeoutMs: number = DEFAULT_TIMEOUT_MS,
  ) {
    let base: URL
    try {
      base = new URL(url)
    } catch (e) {
      throw new InvalidInputError(`not a valid URL: ${url}`, { url }, { cause: e })
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new InvalidInputError(`not an http(s):// URL: ${url}`, { url })
    if (base.username || base.password) throw new InvalidInputError(`put no credentials in a remote URL (${base.host}); use a token (${TOKEN_ENV})`, { url: base.origin })
    if (!base.pathname.endsWith('/')) base.pathname += '/'
    base.search = ''
    base.hash = ''
    this.base = base
  }

  async listRefs(): Promise<RemoteRef[]> {
    const body = (await this.json('GET', ROUTES.refs)) as { refs?: { name: string; cid: string }[] }
    if (!Array.isArray(body.refs)) throw this.protocolError('refs', 'no refs list')
    return body.refs.map((r) => ({ name: String(r.name), cid: parseCid(String(r.cid)) }))
  }

  async hasMany(cids: readonly CID[]): Promise<boolean[]> {
    if (cids.length === 0) return []
    const { status, statusText, body } = await this.plainRequest('POST', ROUTES.has, { body: encodeCidList(cids), type: CID_LIST_MEDIA_TYPE, accept: 'application/octet-stream' })
    if (status < 200 || status > 299) throw this.errorFrom(status, statusText, body.toString('utf8'), ROUTES.has)
    if (body.length !== cids.length) throw this.protocolError(ROUTES.has, `expected ${cids.length} answers, got ${body.length}`)
    const out = new Array<boolean>(body.length)
    for (let i = 0; i < body.length; i++) out[i] = body[i] === 1
    return out
  }

  getBlocks(cids: readonly CID[]): AsyncIterable<Block> {
    if (cids.length === 0) return (async function* () {})()
    return this.car(ROUTES.get, encodeCidList(cids), CID_LIST_MEDIA_TYPE)
  }

  walkCommits(heads: readonly CID[], { have = [], limit }: { have?: readonly CID[]; limit: number }): AsyncIterable<Block> {
    return this.car(ROUTES.walk, JSON.stringify({ heads: cidsToJson(heads), have: cidsToJson(have), limit }), 'application/json')
  }

  async putBlocks(blocks: AsyncIterable<Block>): Promise<PutBlocksResult> {
    // If the source fails (a local block gone, a cut in a test), the CAR still ends cleanly
    // after the last whole block: the server keeps what it verified (a retry sends only the
    // rest), and the source's error is what is reported, not an aborted request.
    let sourceError: { e: unknown } | undefined
    const guarded = (async function* () {
      try {
        yield* readAhead(blocks, READ_AHEAD_BYTES)
      } catch (e) {
        sourceError = { e }
      }
    })()
    let out: PutBlocksResult
    try {
      const chunks = carStream(guarded)
      let res: { status: number; statusText: string; body: Buffer }
      if (this.base.protocol === 'http:') res = await this.streamRequest(ROUTES.put, chunks, CAR_MEDIA_TYPE)
      else {
        // https: through fetch, handed a web stream (2x faster than an async iterable body there).
        const r = await this.request('POST', ROUTES.put, { body: webStream(chunks), type: CAR_MEDIA_TYPE, ok: 'any' })
        let answer: ArrayBuffer
        try {
          answer = await r.arrayBuffer()
        } catch (e) {
          throw this.unreachable(ROUTES.put, e)
        }
        res = { status: r.status, statusText: r.statusText, body: Buffer.from(answer) }
      }
      if (res.status < 200 || res.status > 299) throw this.errorFrom(res.status, res.statusText, res.body.toString('utf8'), ROUTES.put)
      try {
        out = JSON.parse(res.body.toString('utf8')) as PutBlocksResult
      } catch {
        throw this.protocolError(ROUTES.put, 'the answer is not JSON')
      }
    } catch (e) {
      if (sourceError) throw sourceError.e
      throw e
    }
    if (sourceError) throw sourceError.e
    return { blocks: Number(out.blocks), bytes: Number(out.bytes) }
  }

  async compareAndSwapRef(update: RemoteRefUpdate): Promise<RemoteRefResult> {
    const body = (await this.json('POST', ROUTES.cas, updateToJson(update))) as { name: string; old: string | null; new: string }
    return { name: body.name, old: body.old ? parseCid(body.old) : null, new: parseCid(body.new) }
  }

  async close(): Promise<void> {
    for (const c of this.inFlight) c.abort()
    this.inFlight.clear()
    for (const r of this.reading) void r.cancel().catch(() => {})
    this.reading.clear()
    this.agent?.destroy()
    this.agent = undefined
  }

  // -------------------------------------------------------------------------------------

  private async json(method: 'GET' | 'POST', route: string, body?: JsonBody): Promise<unknown> {
    const res = await this.plainRequest(method, route, body === undefined ? {} : { body: JSON.stringify(body), type: 'application/json' })
    const text = res.body.toString('utf8')
    if (res.status < 200 || res.status > 299) throw this.errorFrom(res.status, res.statusText, text, route)
    try {
      return JSON.parse(text)
    } catch {
      throw this.protocolError(route, 'the answer is not JSON')
    }
  }

  /**
   * A request with a small body (or none) whose answer is read whole: JSON, and the binary
   * answers of `has`. Through node:http rather than fetch: the first fetch of a process loads
   * undici (~25 ms of a short command such as a push with nothing to send), and a push needs
   * no other request. https goes through fetch.
   */
  private async plainRequest(
    method: 'GET' | 'POST',
    route: string,
    { body, type, accept = 'application/json' }: { body?: string | Uint8Array; type?: string; accept?: string },
  ): Promise<{ status: number; statusText: string; body: Buffer }> {
    if (this.base.protocol !== 'http:') {
      const res = await this.request(method, route, body === undefined ? { ok: 'any', accept } : { body, type, accept, ok: 'any' })
      try {
        return { status: res.status, statusText: res.statusText, body: Buffer.from(await res.arrayBuffer()) }
      } catch (e) {
        throw this.unreachable(route, e)
      }
    }
    return this.nodeRequest(method, route, type, accept, (req) => req.end(body), body === undefined ? undefined : typeof body === 'string' ? Buffer.byteLength(body) : body.length)
  }

  /**
   * POST a streamed body through node:http, writing each chunk only once the socket has taken
   * the previous ones (fetch buffered a whole 512 MiB push in memory when the server read
   * slower than the file was read). If the server answers before the body is all sent (a
   * refused token, a bad block: it closes the connection), the answer is what is reported.
   */
  private streamRequest(route: string, chunks: AsyncIterable<Uint8Array>, type: string): Promise<{ status: number; statusText: string; body: Buffer }> {
    return this.nodeRequest('POST', route, type, 'application/json', (req, answered) => {
      const it = chunks[Symbol.asyncIterator]()
      void (async () => {
        try {
          for (;;) {
            if (answered() || req.destroyed) break
            const next = await it.next()
            if (next.done) break
            if (answered() || req.destroyed) break
            if (!req.write(next.value)) {
              await new Promise<void>((resolve) => {
                const go = (): void => {
                  req.off('drain', go)
                  req.off('close', go)
                  resolve()
                }
                req.on('drain', go)
                req.on('close', go)
              })
            }
          }
          if (!answered() && !req.destroyed) req.end()
        } catch (e) {
          // The source failed: end nothing half-written; the caller reports the source's error.
          req.destroy(e as Error)
        } finally {
          await it.return?.(undefined).catch(() => {})
        }
      })()
    })
  }

  /** One request through node:http on the kept-alive agent; `send` writes the body. The answer is read whole (capped). */
  private async nodeRequest(
    method: 'GET' | 'POST',
    route: string,
    type: string | undefined,
    accept: string,
    send: (req: ClientRequest, answered: () => boolean) => void,
    length?: number,
  ): Promise<{ status: number; statusText: string; body: Buffer }> {
    const target = new URL(route, this.base)
    const headers: Record<string, string> = { accept }
    if (type) headers['content-type'] = type
    if (length !== undefined) headers['content-length'] = String(length)
    if (this.token) headers.authorization = `Bearer ${this.token}`
    const controller = new AbortController()
    this.inFlight.add(controller)
    this.agent ??= new Agent({ keepAlive: true })
    let answered = false
    try {
      return await new Promise((resolve, reject) => {
        const req = httpRequest(target, { method, headers, agent: this.agent, signal: controller.signal }, (res: IncomingMessage) => {
          answered = true
          const parts: Buffer[] = []
          let size = 0
          res.on('data', (chunk: Buffer) => {
            size += chunk.length
            // An answer no server of ours sends (a hostile or confused peer): stop reading it.
            if (size > MAX_ANSWER) res.destroy(this.protocolError(route, `the answer passed ${MAX_ANSWER} bytes`))
            else parts.push(chunk)
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', body: Buffer.concat(parts) }))
          res.on('error', (e) => reject(this.unreachable(route, e)))
        })
        // Give up on a server that stops answering (PEDIGREE_HTTP_TIMEOUT; 5 minutes, as fetch).
        req.setTimeout(this.timeoutMs, () => req.destroy(this.timedOut(route)))
        req.on('error', (e) => {
          // Writing failed after the server answered and closed: the answer says why.
          if (!answered) reject(this.unreachable(route, e))
        })
        send(req, () => answered)
      })
    } finally {
      this.inFlight.delete(controller)
    }
  }

  private async *car(route: string, body: string | Uint8Array, type: string): AsyncGenerator<Block> {
    const res = await this.request('POST', route, { body, type, accept: CAR_MEDIA_TYPE })
    const answered = res.headers.get('content-type') ?? ''
    if (!answered.startsWith(CAR_MEDIA_TYPE) || !res.body) {
      await res.body?.cancel().catch(() => {})
      throw this.protocolError(route, `expected ${CAR_MEDIA_TYPE}, got '${answered}'`)
    }
    const stream = res.body
    try {
      yield* carBlocks(this.chunks(stream, route), this.where(route))
    } finally {
      // The caller may stop early (a bad block): release the connection.
      await stream.cancel().catch(() => {})
    }
  }

  /** The response body's chunks, a failed read becoming ERR_UNREACHABLE (the server went away mid-stream). */
  private async *chunks(stream: ReadableStream<Uint8Array>, route: string): AsyncGenerator<Uint8Array> {
    const reader = stream.getReader()
    this.reading.add(reader)
    try {
      for (;;) {
        let r: Awaited<ReturnType<typeof reader.read>>
        let timer: NodeJS.Timeout | undefined
        try {
          r = await new Promise<Awaited<ReturnType<typeof reader.read>>>((resolve, reject) => {
            timer = setTimeout(() => {
              const e = this.timedOut(route)
              reject(e)
              void reader.cancel(e).catch(() => {})
            }, this.timeoutMs)
            reader.read().then(resolve, reject)
          })
        } catch (e) {
          throw this.unreachable(route, e)
        } finally {
          clearTimeout(timer)
        }
        if (r.done) return
        yield r.value
      }
    } finally {
      this.reading.delete(reader)
      reader.releaseLock()
    }
  }

  private async request(
    method: 'GET' | 'POST',
    route: string,
    { body, type, accept = 'application/json', ok = 'only' }: { body?: string | Uint8Array | ReadableStream<Uint8Array>; type?: string; accept?: string; ok?: 'only' | 'any' },
  ): Promise<Response> {
    const headers: Record<string, string> = { accept }
    if (type) headers['content-type'] = type
    if (this.token) headers.authorization = `Bearer ${this.token}`
    const controller = new AbortController()
    this.inFlight.add(controller)
    // Until the answer's head arrives; reading its body has its own timer (see chunks).
    const timer = setTimeout(() => controller.abort(this.timedOut(route)), this.timeoutMs)
    let res: Response
    try {
      res = await fetch(new URL(route, this.base), {
        method,
        headers,
        body: body as RequestInit['body'],
        signal: controller.signal,
        // A streamed request body (a push) needs half-duplex mode in Node's fetch.
        ...(body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array) ? { duplex: 'half' } : {}),
      } as RequestInit)
    } catch (e) {
      this.inFlight.delete(controller)
      throw this.unreachable(route, controller.signal.reason instanceof PedigreeError ? controller.signal.reason : e)
    } finally {
      clearTimeout(timer)
    }
    if (!res.ok && ok === 'only') {
      this.inFlight.delete(controller)
      throw this.errorFrom(res.status, res.statusText, await res.text().catch(() => ''), route)
    }
    // The controller stays until close() when the body is still to be read; that is harmless.
    this.inFlight.delete(controller)
    return res
  }

  /**
   * The PedigreeError a failed answer carries, rebuilt with the same code and data; a few get
   * context only the client has (this remote's URL). An answer without a pedigree error body
   * (a proxy, another server, a wrong path) is ERR_UNREACHABLE, except for the statuses whose
   * meaning does not depend on who sent them: 401 and 403 (credentials) and 413 (too large).
   */
  private errorFrom(status: number, statusText: string, text: string, route: string): PedigreeError {
    let parsed: { error?: { code?: unknown; message?: unknown; data?: unknown } } | undefined
    try {
      parsed = JSON.parse(text)
    } catch {
      parsed = undefined
    }
    const err = parsed?.error
    if (err && typeof err.code === 'string' && typeof err.message === 'string') {
      const data = err.data && typeof err.data === 'object' ? (err.data as Record<string, unknown>) : {}
      if (err.code === 'ERR_NOT_FOUND' && data.what === 'route') {
        // A pedigree server, but not at this URL: a path too many (or too few) in the remote's URL.
        return new PedigreeError('ERR_UNREACHABLE', `the remote ${this.url} is not the base URL of a \`pedigree serve\`: the server there has no route ${route} (${err.message}); check the remote's URL (pedigree remote list)`, {
          url: this.url,
          route,
          status,
        })
      }
      if (status === 503) return new PedigreeError(err.code, `the remote ${this.url} is not taking requests: ${err.message}`, { ...data, url: this.url, status })
      return new PedigreeError(err.code, err.message, data)
    }
    const code = status === 401 ? 'ERR_UNAUTHORIZED' : status === 403 ? 'ERR_FORBIDDEN' : status === 413 ? 'ERR_TOO_LARGE' : 'ERR_UNREACHABLE'
    const why =
      status === 404
        ? `; check the remote's URL (pedigree remote list): is ${this.url} the base URL of a \`pedigree serve\`?`
        : status === 503
          ? `: the server is unavailable (shutting down or overloaded); retry later`
          : `; is ${this.url} a \`pedigree serve\`?`
    return new PedigreeError(code, `${this.where(route)} answered HTTP ${status} ${statusText} without a pedigree error${why}`, { url: this.url, status })
  }

  private timedOut(route: string): PedigreeError {
    return new PedigreeError(
      'ERR_UNREACHABLE',
      `the remote ${this.url} did not answer (${route}) for ${this.timeoutMs / 1000} s; if it is just slow, raise ${TIMEOUT_ENV} (seconds)`,
      { url: this.url, route, reason: 'timeout', timeoutMs: this.timeoutMs },
    )
  }

  private unreachable(route: string, e: unknown): PedigreeError {
    if (e instanceof PedigreeError) return e
    // fetch wraps the socket's error as `cause`; node:http gives it as is.
    const cause = (e as { cause?: { code?: string; message?: string } })?.cause
    const reason = cause?.code ?? cause?.message ?? (e as { code?: string })?.code ?? (e as Error)?.message ?? String(e)
    const hint = reason === 'ECONNREFUSED' ? ': connection refused; is `pedigree serve` running there?' : reason === 'ENOTFOUND' ? ': no such host' : `: ${reason}`
    return new PedigreeError('ERR_UNREACHABLE', `cannot reach the remote ${this.url}${hint}`, { url: this.url, route, reason }, { cause: e })
  }

  private protocolError(route: string, why: string): PedigreeError {
    return new PedigreeError('ERR_UNREACHABLE', `${this.where(route)} did not answer as a pedigree server: ${why}`, { url: this.url, route })
  }

  private where(route: string): string {
    return new URL(route, this.base).toString()
  }
}
