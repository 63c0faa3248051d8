import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { PedigreeError } from '../../src/errors.js'
import { withoutPaths } from '../../src/server/errors.js'
import { addToken } from '../../src/server/tokens.js'
import { fetch } from '../../src/sync/fetch.js'
import { cleanToken, openHttpTransport, timeoutFrom } from '../../src/sync/http-transport.js'
import { addRemote, listRemotes } from '../../src/sync/remote.js'
import { commitAt, record } from '../repo/fixture.js'
import { Servers } from '../server/helpers.js'
import { Stores, WHO, refsOf, rejectionOf } from './helpers.js'

/*
 * What a client says when an HTTP answer is not what it hoped for: a wrong URL, a server that
 * is shutting down or never answers, a token pasted with a newline; and what a server says
 * about itself (never its folders).
 */

let s: Stores
let servers: Servers
const raw: Server[] = []
beforeEach(async () => {
  s = await Stores.make()
  servers = new Servers()
})
afterEach(async () => {
  for (const r of raw.splice(0)) {
    r.closeAllConnections()
    await new Promise((done) => r.close(done))
  }
  await servers.closeAll()
  await s.cleanup()
})

/** A plain node:http server answering every request with `handler`. */
async function plainServer(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler)
  raw.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('a remote URL that is not the base URL of a server', () => {
  it('a path too many on a real server: ERR_UNREACHABLE naming the remote URL, with a hint to check it', async () => {
    const hub = await s.init('hub')
    await commitAt(hub, 'main', 1, [record('x.json', { v: 1 })])
    const server = await servers.start(hub)
    const local = await s.init('l')
    const url = `${server.url}/prefix`
    await addRemote(local, 'origin', url)
    const err = await rejectionOf(fetch(local, { who: WHO }))
    expect(err.code).toBe('ERR_UNREACHABLE')
    expect(err.message).toContain(`the remote ${url} is not the base URL of a \`pedigree serve\``)
    expect(err.message).toContain("check the remote's URL")
    expect(err.data).toMatchObject({ url, status: 404 })
    expect(await refsOf(local)).toEqual({})
  })
})

describe('a server that is shutting down', () => {
  it('answers a request that arrives while it closes with 503 and a pedigree error body', async () => {
    const hub = await s.init('hub')
    const server = await servers.start(hub, { allowAnonymousWrite: true })
    const { port } = server
    // One connection: a push body still being sent when the server is told to close, then a
    // second request pipelined behind it (what a push's compare-and-swap does after SIGTERM).
    const socket = connect(port, '127.0.0.1')
    await new Promise<void>((r) => socket.once('connect', () => r()))
    let received = ''
    socket.on('data', (d) => (received += d.toString('utf8')))
    const body = '{"cids": []}'
    socket.write(`POST /v1/sync/has HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 3)}`)
    await new Promise((r) => setTimeout(r, 100))
    const closed = server.close()
    await new Promise((r) => setTimeout(r, 100))
    socket.write(`${body.slice(3)}GET /v1/refs HTTP/1.1\r\nhost: x\r\n\r\n`)
    await new Promise<void>((r) => socket.once('close', () => r()))
    await closed
    const second = received.slice(received.indexOf('HTTP/1.1', 5))
    expect(second).toMatch(/^HTTP\/1\.1 503/)
    const json = JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4))
    expect(json.error).toMatchObject({ code: 'ERR_UNREACHABLE', message: expect.stringContaining('shutting down') })
  })

  it("the client's error says the remote is not taking requests and why, with or without a pedigree body", async () => {
    const withBody = await plainServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { code: 'ERR_UNREACHABLE', message: 'the server is shutting down; retry once it is back', data: {} } }))
    })
    const t1 = await openHttpTransport(withBody)
    const e1 = await rejectionOf(t1.listRefs())
    await t1.close()
    expect(e1.code).toBe('ERR_UNREACHABLE')
    expect(e1.message).toBe(`the remote ${withBody} is not taking requests: the server is shutting down; retry once it is back`)

    const bare = await plainServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' })
      res.end('Service Unavailable')
    })
    const t2 = await openHttpTransport(bare)
    const e2 = await rejectionOf(t2.listRefs())
    await t2.close()
    expect(e2.code).toBe('ERR_UNREACHABLE')
    expect(e2.message).toContain('HTTP 503')
    expect(e2.message).toContain('(shutting down or overloaded); retry later')
  })
})

describe('a server that never answers', () => {
  it('is given up on after the timeout (PEDIGREE_HTTP_TIMEOUT), naming the remote and the variable', async () => {
    const url = await plainServer(() => {}) // reads the request, never answers
    for (const t of [await openHttpTransport(url, { timeoutMs: 300 }), await openHttpTransport(url, { timeoutMs: 300, token: 'pdg_x' })]) {
      const started = Date.now()
      const err = await rejectionOf(t.listRefs())
      await t.close()
      expect(Date.now() - started).toBeLessThan(5_000)
      expect(err.code).toBe('ERR_UNREACHABLE')
      expect(err.message).toContain(`the remote ${url} did not answer`)
      expect(err.message).toContain('PEDIGREE_HTTP_TIMEOUT')
    }
    // A CAR answer (through fetch) that stops half-way is given up on too.
    const stalls = await plainServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car' })
      res.write(Buffer.from([0x0a]))
    })
    const t = await openHttpTransport(stalls, { timeoutMs: 300 })
    const hub = await s.init('hub')
    const head = (await commitAt(hub, 'main', 1, [record('x.json', { v: 1 })])).cid
    const err = await rejectionOf((async () => {
      for await (const _ of t.walkCommits([head], { limit: 10 })) void _
    })())
    await t.close()
    expect(err.code).toBe('ERR_UNREACHABLE')
    expect(err.message).toContain('did not answer')
  })

  it('PEDIGREE_HTTP_TIMEOUT is seconds above 0; anything else is refused naming it; unset is 300 s', () => {
    expect(timeoutFrom(undefined)).toBe(300_000)
    expect(timeoutFrom('2.5')).toBe(2_500)
    for (const bad of ['0', '-1', 'abc']) expect(() => timeoutFrom(bad)).toThrow(/PEDIGREE_HTTP_TIMEOUT must be a number of seconds/)
  })
})

describe('PEDIGREE_TOKEN as people set it', () => {
  it('surrounding whitespace and a leading "Bearer " are dropped; inner whitespace or control characters are refused naming the variable', () => {
    expect(cleanToken('pdg_abc\n')).toBe('pdg_abc')
    expect(cleanToken('  pdg_abc  ')).toBe('pdg_abc')
    expect(cleanToken('Bearer pdg_abc')).toBe('pdg_abc')
    expect(cleanToken('bearer  pdg_abc\r\n')).toBe('pdg_abc')
    expect(cleanToken('')).toBeUndefined()
    expect(cleanToken('\n')).toBeUndefined()
    for (const bad of ['pdg abc', 'pdg_a\nb', 'pdg_\u0007x', 'pdg_é']) {
      let err: unknown
      try {
        cleanToken(bad)
      } catch (e) {
        err = e
      }
      expect((err as PedigreeError).code).toBe('ERR_INVALID_INPUT')
      expect((err as PedigreeError).message).toContain('PEDIGREE_TOKEN')
    }
  })

  it('a token with a trailing newline authenticates (it used to fail every request with ERR_INTERNAL)', async () => {
    const hub = await s.init('hub')
    await commitAt(hub, 'main', 1, [record('x.json', { v: 1 })])
    const { token } = await addToken(hub, { name: 'ci', scope: 'read' })
    const server = await servers.start(hub, { requireTokenForRead: true })
    for (const given of [`${token}\n`, `Bearer ${token}`]) {
      const t = await openHttpTransport(server.url, { token: given })
      expect((await t.listRefs()).map((r) => r.name)).toEqual(['main'])
      await t.close()
    }
  })
})

describe('credentials in a remote URL', () => {
  it('are refused by remote add before anything is stored, and the error does not repeat them', async () => {
    const local = await s.init('l')
    for (const url of ['http://u:p@127.0.0.1:1/', 'https://tok@example.org/x', 's3://key:secret@bucket/prefix']) {
      const err = await rejectionOf(addRemote(local, 'r1', url))
      expect(err.code).toBe('ERR_INVALID_INPUT')
      expect(err.message).toContain('put no credentials in a remote URL')
      expect(err.message).not.toMatch(/u:p|tok@|secret/)
    }
    expect(await listRemotes(local)).toEqual([])
  })

  it('a URL given where a remote name goes gets a hint to add it first', async () => {
    const local = await s.init('l')
    const err = await rejectionOf(fetch(local, { remote: 'http://127.0.0.1:1/', who: WHO }))
    expect(err.code).toBe('ERR_INVALID_INPUT')
    expect(err.message).toContain("invalid remote name 'http://127.0.0.1:1/': that is a URL or a path")
    expect(err.message).toContain('pedigree remote add <name> http://127.0.0.1:1/), then use the name')
  })
})

describe('errors a server sends name no local path', () => {
  it("the store's folder, the folder around it and files under it become \"the server's store\"; data holding them is left out", () => {
    const loc = '/srv/lab/.pedigree'
    const e = withoutPaths(
      new PedigreeError('ERR_INCOMPLETE', `the store at ${loc} cannot move 'main' to bafy…: block bafy… is missing`, { cid: 'bafy…', location: loc }),
      [loc, '/srv/lab'],
    )
    expect(e.message).toBe("the server's store cannot move 'main' to bafy…: block bafy… is missing")
    expect(e.data).toEqual({ cid: 'bafy…' })
    const d = withoutPaths(new PedigreeError('ERR_STORE', `cannot reach the store daemon of ${loc} at ${loc}/daemon.sock (/refs/get): gone`), [loc, '/srv/lab'])
    expect(d.message).not.toContain('/srv')
    const same = new PedigreeError('ERR_NOT_FOUND', 'revision not found: v9', { name: 'v9' })
    expect(withoutPaths(same, [loc])).toBe(same)
  })

  it('over HTTP: a push whose blocks are missing is refused without naming where the server keeps its store', async () => {
    const hub = await s.init('hub')
    const server = await servers.start(hub, { allowAnonymousWrite: true })
    const local = await s.init('l')
    const head = (await commitAt(local, 'main', 1, [record('x.json', { v: 1 })])).cid
    const t = await openHttpTransport(server.url)
    const err = await rejectionOf(t.compareAndSwapRef({ name: 'main', expected: null, next: head, who: WHO, message: 'm' }))
    await t.close()
    expect(err.code).toBe('ERR_INCOMPLETE')
    expect(err.message).toContain("the server's store cannot move 'main'")
    expect(JSON.stringify({ m: err.message, d: err.data })).not.toContain(s.dir)
  })
})
