import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { realpathSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname } from 'node:path'
import { isS3Url } from '../store/s3/url.js'
import { PedigreeError } from '../errors.js'
import type { Repository } from '../repo/repository.js'
import { CAR_MEDIA_TYPE } from '../sync/http-transport.js'
import { asPedigreeError, errorBody, statusOf, withoutPaths } from './errors.js'
import { openApiDocument } from './openapi.js'
import { readRoutes } from './read-routes.js'
import { syncRoutes } from './sync-routes.js'
import { findToken, type TokenInfo } from './tokens.js'

// The store's unix socket for local processes, which `pedigree serve` runs beside HTTP.
export { startStoreSocket, type RunningStoreSocket, type StoreSocketOptions } from './store-socket.js'

export interface ServerOptions {
  /** Accept pushes without a token (default: writes need a token with write scope). */
  allowAnonymousWrite?: boolean
  /** Refuse reads without a token (default: anyone who can reach the server may read). */
  requireTokenForRead?: boolean
  /** Most bytes in a JSON request body (default 8 MiB: a negotiation round of 8192 CIDs is ~0.5 MiB). */
  maxBody?: number
  /** Most bytes in a CAR request body, one push (default 64 GiB). */
  maxCarBody?: number
}

export interface ListenOptions extends ServerOptions {
  /** Default 127.0.0.1: reachable from this machine only until you choose otherwise. */
  host?: string
  /** Default 0: any free port (the URL says which). */
  port?: number
}

export interface RunningServer {
  /** The base URL clients use as a remote (`http://127.0.0.1:8080`). */
  url: string
  host: string
  port: number
  /** Stop accepting requests, let the ones in flight finish, close idle connections. The repository stays open. */
  close(): Promise<void>
}

/** What a route needs: no credentials, a read or a write scope. */
export type Access = 'public' | 'read' | 'write'

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access
  }
  interface FastifyRequest {
    /** The token the request presented (after it was checked), if any. */
    token?: TokenInfo
  }
}

export const DEFAULT_MAX_BODY = 8 * 1024 * 1024
export const DEFAULT_MAX_CAR_BODY = 64 * 1024 ** 3

/**
 * Build the HTTP app over an open repository: the sync protocol (see http-transport.ts), the
 * read API and the OpenAPI document, bearer-token checks, and JSON errors. Nothing listens yet.
 * fastify is loaded here, on first use, so that commands other than `serve` never pay for it.
 */
export async function buildServer(repo: Repository, options: ServerOptions = {}): Promise<FastifyInstance> {
  const { default: Fastify } = await import('fastify')
  const maxBody = options.maxBody ?? DEFAULT_MAX_BODY
  const maxCarBody = options.maxCarBody ?? DEFAULT_MAX_CAR_BODY
  for (const [name, v] of [
    ['max body', maxBody],
    ['max CAR body', maxCarBody],
  ] as const) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new PedigreeError('ERR_INVALID_INPUT', `${name} must be a positive number of bytes, not ${v}`, { [name]: v })
  }
  // Requests that arrive while the server closes (on a connection kept alive: a push's next
  // request after SIGTERM) are answered 503 by the hook below, with a pedigree error body;
  // fastify's own 503 has none, and clients could only guess why.
  const app = Fastify({ bodyLimit: maxBody, logger: false, return503OnClosing: false })
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onRequest', async () => {
    if (closing) throw new PedigreeError('ERR_UNREACHABLE', 'the server is shutting down; retry once it is back', { reason: 'shutting-down' })
  })

  // A CAR body is handed to its route as the raw stream (never buffered); the route counts its bytes.
  app.addContentTypeParser(CAR_MEDIA_TYPE, (_req, payload, done) => done(null, payload))

  app.decorateRequest('token', undefined)
  app.addHook('onRequest', async (req) => {
    await authenticate(repo, req, options)
  })

  // Errors name the store as "the server's store", never by its folder on this machine.
  const hidden = privatePaths(repo)
  app.setErrorHandler((e, _req, reply) => replyError(reply, withoutPaths(asPedigreeError(e), hidden)))
  app.setNotFoundHandler((req, reply) =>
    replyError(reply, new PedigreeError('ERR_NOT_FOUND', `no such route: ${req.method} ${req.url.split('?')[0]} (see GET /openapi.json)`, { what: 'route', method: req.method, url: req.url })),
  )

  app.get('/openapi.json', { config: { access: 'public' } }, async () => openApiDocument())
  syncRoutes(app, repo, { maxCarBody })
  readRoutes(app, repo, { options, maxBody, maxCarBody })
  return app
}

/**
 * Listen on `host:port` (default 127.0.0.1, any free port) and answer requests over `repo`
 * until `close`.
 *
 * @example
 * const server = await startServer(repo, { port: 0 })
 * console.log(`serving ${repo.location} at ${server.url}`)
 * await server.close()
 */
export async function startServer(repo: Repository, { host = '127.0.0.1', port = 0, ...options }: ListenOptions = {}): Promise<RunningServer> {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new PedigreeError('ERR_INVALID_INPUT', `invalid port ${port}: use 0 (any free port) to 65535`, { port })
  const app = await buildServer(repo, options)
  try {
    await app.listen({ host, port })
  } catch (e) {
    await app.close().catch(() => {})
    const code = (e as { code?: string }).code
    if (code === 'EADDRINUSE') throw new PedigreeError('ERR_EXISTS', `cannot listen on ${host}:${port}: the port is in use`, { host, port }, { cause: e })
    throw new PedigreeError('ERR_INVALID_INPUT', `cannot listen on ${host}:${port}: ${(e as Error).message}`, { host, port, reason: code }, { cause: e })
  }
  const address = app.server.address() as AddressInfo
  const shown = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address
  return { url: `http://${shown}:${address.port}`, host: address.address, port: address.port, close: () => app.close() }
}

/** The local paths an answer must not show: the store's folder, the folder it is in, its daemon's socket. */
function privatePaths(repo: Repository): string[] {
  const location = repo.location
  if (isS3Url(location) || location.startsWith('memory:')) return []
  const paths = [location, dirname(location)]
  try {
    paths.push(realpathSync(location))
  } catch {
    // not there (a test's store); its name is enough
  }
  const socket = (repo.store as { socketPath?: unknown }).socketPath
  if (typeof socket === 'string') paths.push(socket, dirname(socket))
  return paths.filter((p) => p !== '/' && p !== tmpdir())
}

function replyError(reply: FastifyReply, e: PedigreeError): FastifyReply {
  const status = statusOf(e.code)
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="pedigree"')
  return reply.status(status).type('application/json').send(errorBody(e))
}

/**
 * Check the request's token, if it has one (a wrong one is refused even where none is needed),
 * then whether the route's access allows the request: reads are open unless
 * `requireTokenForRead`; writes need a write token unless `allowAnonymousWrite`.
 */
async function authenticate(repo: Repository, req: FastifyRequest, options: ServerOptions): Promise<void> {
  const header = req.headers.authorization
  if (header !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (!m) throw new PedigreeError('ERR_UNAUTHORIZED', 'the Authorization header must be "Bearer <token>"', {})
    const token = await findToken(repo, m[1]!)
    if (!token) throw new PedigreeError('ERR_UNAUTHORIZED', 'the token is not valid on this server (unknown or removed; see `pedigree token list` there)', {})
    req.token = token
  }
  const access = req.routeOptions.config?.access ?? 'read'
  if (access === 'public') return
  if (access === 'write') {
    if (req.token) {
      if (req.token.scope !== 'write') {
        throw new PedigreeError('ERR_FORBIDDEN', `the token '${req.token.name}' has read scope; this needs a token with write scope (pedigree token add --scope write)`, { token: req.token.name, scope: req.token.scope, needed: 'write' })
      }
      return
    }
    if (options.allowAnonymousWrite) return
    throw new PedigreeError('ERR_UNAUTHORIZED', `this server accepts writes only with a write token: set PEDIGREE_TOKEN to one made by \`pedigree token add --scope write\` on the server`, { needed: 'write' })
  }
  if (!req.token && options.requireTokenForRead) {
    throw new PedigreeError('ERR_UNAUTHORIZED', 'this server requires a token for reads: set PEDIGREE_TOKEN to one made by `pedigree token add` on the server', { needed: 'read' })
  }
}
