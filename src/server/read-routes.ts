import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Readable } from 'node:stream'
import { changeJson, commitJson, entryJson } from '../cli/format.js'
import { cidToString } from '../codec/cid.js'
import { diffJson } from '../cli/format.js'
import { InvalidInputError } from '../errors.js'
import { toDagJson } from '../model/record.js'
import type { Repository } from '../repo/repository.js'
import type { ServerOptions } from './server.js'
import { stringParam } from './sync-routes.js'

/** The version this server reports (the protocol's, not the package's). */
export const PROTOCOL_VERSION = 1

/**
 * The read API: JSON over the repository operations that the CLI's `log`, `show`, `ls`,
 * `diff` and `lineage` call, in the same JSON shapes as their `--json` output. Long lists are
 * streamed as a JSON array, item by item.
 */
export function readRoutes(app: FastifyInstance, repo: Repository, { options, maxBody, maxCarBody }: { options: ServerOptions; maxBody: number; maxCarBody: number }): void {
  app.get('/v1/info', { config: { access: 'public' } }, async () => ({
    server: 'pedigree',
    protocol: PROTOCOL_VERSION,
    auth: { anonymousRead: !options.requireTokenForRead, anonymousWrite: Boolean(options.allowAnonymousWrite) },
    limits: { jsonBody: maxBody, carBody: maxCarBody },
  }))

  app.get('/v1/log', { config: { access: 'read' } }, async (req, reply) => {
    const rev = stringParam(req, 'rev') ?? 'main'
    const n = intParam(req, 'n')
    const path = stringParam(req, 'path')
    return sendJsonArray(reply, repo.log({ from: rev, limit: n, path }), (e) => commitJson(e.cid, e.commit))
  })

  app.get('/v1/show', { config: { access: 'read' } }, async (req, reply) => {
    const rev = required(req, 'rev')
    const limit = intParam(req, 'limit') ?? 1000
    const format = stringParam(req, 'format') ?? 'raw'
    if (format !== 'raw' && format !== 'json') throw new InvalidInputError(`query parameter 'format' must be raw or json, not '${format}'`, { parameter: 'format' })
    const r = await repo.show(rev, { limit })
    if (r.type === 'commit') {
      return { type: 'commit', ...commitJson(r.cid, r.commit), counts: r.counts, changes: r.changes.map(changeJson), truncated: r.truncated }
    }
    // A record or file shown by its CID has no path or commit.
    const about = { type: r.type, path: r.path, cid: cidToString(r.cid), commit: r.commit && cidToString(r.commit), size: r.size, ...(r.tainted ? { tainted: r.tainted } : {}) }
    if (r.type === 'record') return { ...about, value: toDagJson(r.value) }
    if (format === 'json') return about
    // A file's exact bytes, streamed and verified chunk by chunk as the store reads them.
    reply.header('content-length', String(r.size)).header('x-pedigree-cid', about.cid)
    if (about.commit) reply.header('x-pedigree-commit', about.commit)
    return reply.type('application/octet-stream').send(Readable.from(r.content(), { objectMode: false }))
  })

  app.get('/v1/ls', { config: { access: 'read' } }, async (req, reply) => {
    const rev = stringParam(req, 'rev') ?? 'main'
    const prefix = stringParam(req, 'prefix') ?? ''
    return sendJsonArray(reply, repo.ls(rev, { prefix }), (e) => ({ path: e.path, kind: e.kind, size: e.size, cid: cidToString(e.cid) }))
  })

  app.get('/v1/diff', { config: { access: 'read' } }, async (req, reply) => {
    const from = required(req, 'from')
    const to = stringParam(req, 'to') ?? 'main'
    const path = stringParam(req, 'path')
    const stat = boolParam(req, 'stat')
    return sendJsonArray(reply, repo.diff(from, to, { path, stat }), diffJson)
  })

  app.get('/v1/lineage', { config: { access: 'read' } }, async (req) => {
    const node = required(req, 'node')
    const direction = stringParam(req, 'direction') ?? 'up'
    if (direction !== 'up' && direction !== 'down' && direction !== 'both') {
      throw new InvalidInputError(`query parameter 'direction' must be up, down or both, not '${direction}'`, { parameter: 'direction' })
    }
    return repo.lineage(node, { direction, depth: intParam(req, 'depth') ?? 50 })
  })

  // An entry as `ls -l` would print it, for one path (a small convenience over ls).
  app.get('/v1/entry', { config: { access: 'read' } }, async (req) => {
    const at = await repo.resolveEntry(required(req, 'spec'))
    return { commit: cidToString(at.cid), ...entryJson(at.path, at.entry) }
  })
}

/**
 * Answer with a JSON array written item by item. The first item is awaited before anything is
 * sent, so the usual failure (a revision that does not resolve) still gets a proper error answer;
 * a failure later cuts the stream (the client sees invalid JSON, never a silently short list).
 */
async function sendJsonArray<I>(reply: FastifyReply, items: AsyncIterable<I>, toJson: (item: I) => unknown): Promise<FastifyReply> {
  const it = items[Symbol.asyncIterator]()
  const first = await it.next()
  async function* text(): AsyncGenerator<string> {
    if (first.done) {
      yield '[]\n'
      return
    }
    let batch = '[\n' + JSON.stringify(toJson(first.value))
    for (let next = await it.next(); !next.done; next = await it.next()) {
      batch += ',\n' + JSON.stringify(toJson(next.value))
      if (batch.length >= 64 * 1024) {
        yield batch
        batch = ''
      }
    }
    yield batch + '\n]\n'
  }
  return reply.type('application/json').send(Readable.from(text(), { objectMode: false }))
}

function required(req: FastifyRequest, name: string): string {
  const v = stringParam(req, name)
  if (v === undefined || v === '') throw new InvalidInputError(`query parameter '${name}' is required`, { parameter: name })
  return v
}

function intParam(req: FastifyRequest, name: string): number | undefined {
  const v = stringParam(req, name)
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new InvalidInputError(`query parameter '${name}' must be a non-negative integer, not '${v}'`, { parameter: name })
  return Number(v)
}

function boolParam(req: FastifyRequest, name: string): boolean {
  const v = stringParam(req, name)
  if (v === undefined || v === 'false' || v === '0') return false
  if (v === '' || v === 'true' || v === '1') return true
  throw new InvalidInputError(`query parameter '${name}' must be true or false, not '${v}'`, { parameter: name })
}
