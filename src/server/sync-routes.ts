import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Readable } from 'node:stream'
import { cidToString } from '../codec/cid.js'
import { InvalidInputError, PedigreeError } from '../errors.js'
import { parsePerson, type Person } from '../model/commit.js'
import type { Repository } from '../repo/repository.js'
import { CAR_MEDIA_TYPE, CID_LIST_MEDIA_TYPE, carBlocks, carStream, cidsFromJson, decodeCidList } from '../sync/http-transport.js'
import { serveBlocks, serveCommits, serveRefs } from '../sync/provide.js'
import { receiveBlocks, receiveRefUpdate } from '../sync/receive.js'
import { MAX_BATCH } from '../sync/negotiate.js'
import { parseCid, type CID } from '../codec/cid.js'

/** Most CIDs in one `has` or `get` request, and most commits in one `walk` answer. */
export const MAX_CIDS = 4 * MAX_BATCH
export const MAX_WALK = 64 * 1024

/**
 * The sync protocol (see src/sync/http-transport.ts for the client): one route per Transport
 * method, each answered by the same serving and receiving code a path remote uses
 * (provide.ts, receive.ts), so both verify exactly the same things.
 */
export function syncRoutes(app: FastifyInstance, repo: Repository, { maxCarBody }: { maxCarBody: number }): void {
  // A push is answered once its ref has moved; the new commits are indexed for lineage after
  // that, one push at a time, and the server waits for the queue before it closes the store.
  let indexing: Promise<unknown> = Promise.resolve()
  const deferIndex = (index: () => Promise<unknown>): void => {
    indexing = indexing.then(index).catch((e: unknown) => app.log.warn({ err: e }, 'indexing pushed commits failed; lineage will catch up'))
  }
  app.addHook('onClose', async () => {
    await indexing
  })
  app.get('/v1/refs', { config: { access: 'read' } }, async (req) => {
    const prefix = stringParam(req, 'prefix') ?? ''
    const refs = (await serveRefs(repo)).filter((r) => r.name.startsWith(prefix))
    return { refs: refs.map((r) => ({ name: r.name, cid: cidToString(r.cid) })) }
  })

  // A binary CID list is parsed as a Buffer, under the same size limit as JSON.
  app.addContentTypeParser(CID_LIST_MEDIA_TYPE, { parseAs: 'buffer' }, (_req, body, done) => done(null, body))

  app.post('/v1/sync/has', { config: { access: 'read' } }, async (req, reply) => {
    const cids = requestCids(req)
    const have = await repo.blocks.hasMany(cids)
    if (!(req.body instanceof Uint8Array)) return { have }
    // Asked in binary: answered in binary, one byte per CID.
    return reply.type('application/octet-stream').send(Buffer.from(have.map((h) => (h ? 1 : 0))))
  })

  app.post('/v1/sync/get', { config: { access: 'read' } }, async (req, reply) => {
    return sendCar(reply, carStream(serveBlocks(repo, requestCids(req))))
  })

  app.post('/v1/sync/walk', { config: { access: 'read' } }, async (req, reply) => {
    const body = jsonBody(req)
    const heads = cidList(body, 'heads')
    const have = body.have === undefined ? [] : cidsFromJson(body.have, 'have')
    const limit = body.limit
    if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_WALK) {
      throw new InvalidInputError(`'limit' must be an integer from 1 to ${MAX_WALK}`, { field: 'limit' })
    }
    return sendCar(reply, carStream(serveCommits(repo, heads, { have, limit: limit as number })))
  })

  app.post('/v1/sync/put', { config: { access: 'write' } }, async (req, reply) => {
    if (!(req.headers['content-type'] ?? '').startsWith(CAR_MEDIA_TYPE)) {
      throw new PedigreeError('ERR_UNSUPPORTED_MEDIA_TYPE', `a push body must be a CAR stream (Content-Type: ${CAR_MEDIA_TYPE})`, { expected: CAR_MEDIA_TYPE })
    }
    const declared = Number(req.headers['content-length'])
    if (Number.isFinite(declared) && declared > maxCarBody) {
      // Do not read what will be refused: answer and drop the connection.
      reply.header('connection', 'close')
      throw tooLarge(maxCarBody, declared)
    }
    const body = req.body as Readable | undefined
    if (!body || typeof (body as Partial<Readable>)[Symbol.asyncIterator] !== 'function') {
      throw new InvalidInputError('a push body must be a CAR stream; this request has none', {})
    }
    try {
      return await receiveBlocks(repo.blocks, carBlocks(limited(body, maxCarBody), 'the request body'))
    } catch (e) {
      // The rest of the body (maybe gigabytes) is not worth reading: close after the answer.
      reply.header('connection', 'close')
      throw e
    }
  })

  app.post('/v1/sync/cas', { config: { access: 'write' } }, async (req) => {
    const body = jsonBody(req)
    const name = body.name
    if (typeof name !== 'string') throw new InvalidInputError("'name' must be a ref name", { field: 'name' })
    const expected = body.expected === null || body.expected === undefined ? null : cidText(body.expected, 'expected')
    const next = cidText(body.next, 'next')
    const who = person(body.who)
    const message = typeof body.message === 'string' ? body.message : 'push'
    const via = req.token ? `token '${req.token.name}'` : 'no token'
    const r = await receiveRefUpdate(repo, { name, expected, next, who, message: `${message} (over HTTP, ${via})`, force: body.force === true }, { deferIndex })
    return { name: r.name, old: r.old ? cidToString(r.old) : null, new: cidToString(r.new) }
  })
}

function sendCar(reply: FastifyReply, chunks: AsyncIterable<Uint8Array>): FastifyReply {
  return reply.type(CAR_MEDIA_TYPE).send(Readable.from(chunks, { objectMode: false }))
}

/** The chunks of a request body, failing with ERR_TOO_LARGE once more than `max` bytes came. */
async function* limited(body: AsyncIterable<Uint8Array>, max: number): AsyncGenerator<Uint8Array> {
  let n = 0
  for await (const chunk of body) {
    n += chunk.length
    if (n > max) throw tooLarge(max, n)
    yield chunk
  }
}

function tooLarge(max: number, got: number): PedigreeError {
  return new PedigreeError('ERR_TOO_LARGE', `the CAR body is over this server's limit of ${max} bytes (serve --max-car-body)`, { limit: max, size: got })
}

export function jsonBody(req: FastifyRequest): Record<string, unknown> {
  const body = req.body
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidInputError('the request body must be a JSON object (Content-Type: application/json)', {})
  }
  return body as Record<string, unknown>
}

/** The `cids` of a has/get request: a binary CID list, or JSON `{cids: [...]}`. */
function requestCids(req: FastifyRequest): CID[] {
  const cids = req.body instanceof Uint8Array ? decodeCidList(req.body) : cidsFromJson(jsonBody(req).cids, 'cids')
  return limitCids(cids, 'cids')
}

function cidList(body: Record<string, unknown>, field: string): CID[] {
  return limitCids(cidsFromJson(body[field], field), field)
}

function limitCids(cids: CID[], field: string): CID[] {
  if (cids.length > MAX_CIDS) throw new PedigreeError('ERR_TOO_LARGE', `'${field}' lists ${cids.length} CIDs; at most ${MAX_CIDS} per request`, { field, limit: MAX_CIDS })
  return cids
}

function cidText(value: unknown, field: string) {
  if (typeof value !== 'string') throw new InvalidInputError(`'${field}' must be a CID string`, { field })
  return parseCid(value)
}

function person(value: unknown): Person {
  if (typeof value === 'string') return parsePerson(value)
  const v = value as { name?: unknown; email?: unknown } | null
  if (!v || typeof v !== 'object' || typeof v.name !== 'string' || v.name.trim() === '' || (v.email !== undefined && typeof v.email !== 'string')) {
    throw new InvalidInputError("'who' must be {name, email?}", { field: 'who' })
  }
  return v.email === undefined ? { name: v.name } : { name: v.name, email: v.email }
}

export function stringParam(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Record<string, unknown> | undefined)?.[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw new InvalidInputError(`query parameter '${name}' must be given once`, { parameter: name })
  return v
}
