import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Repository } from '../../src/repo/repository.js'
import { addToken, listTokens, removeToken } from '../../src/server/tokens.js'
import { fetch as pedigreeFetch } from '../../src/sync/fetch.js'
import { openHttpTransport } from '../../src/sync/http-transport.js'
import { push } from '../../src/sync/push.js'
import { addRemote } from '../../src/sync/remote.js'
import { commitAt, record } from '../repo/fixture.js'
import { Stores, WHO, refsOf, rejectionOf } from '../sync/helpers.js'
import { Servers } from './helpers.js'

/*
 * Bearer tokens: kept hashed in the store's config; without a token reads are open and writes
 * refused (401) unless --allow-anonymous-write; a read token writing gets 403; a wrong token 401.
 * Every refused push leaves the server's refs as they were.
 */

let s: Stores
let servers: Servers
beforeEach(async () => {
  s = await Stores.make()
  servers = new Servers()
})
afterEach(async () => {
  await servers.closeAll()
  await s.cleanup()
})

/** A hub with one commit, a read and a write token; and a workspace with a commit on top of it. */
async function setup(options: Parameters<Servers['start']>[1] = {}) {
  const hub = await s.init('hub')
  const base = await commitAt(hub, 'main', 1, [record('x.json', { v: 1 })])
  const read = await addToken(hub, { scope: 'read', name: 'reader' })
  const write = await addToken(hub, { scope: 'write', name: 'aps-pipeline' })
  const server = await servers.start(hub, options)
  const ws = await s.init('ws')
  await addRemote(ws, 'origin', server.url)
  await pedigreeFetch(ws, { who: WHO, transport: await openHttpTransport(server.url, { token: read.token }) })
  await ws.refs.update('main', { next: base.cid, expect: null, who: WHO, message: 'start' })
  const next = await commitAt(ws, 'main', 2, [record('x.json', { v: 2 })])
  return { hub, server, base, next, ws, read: read.token, write: write.token }
}

async function status(url: string, token?: string, init: RequestInit = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers as Record<string, string>) } })
  return { status: res.status, json: JSON.parse(await res.text()), headers: res.headers }
}

describe('tokens in the store', () => {
  it('are shown once, listed without the secret, kept only as a hash, and removable', async () => {
    const repo: Repository = await s.init('r')
    const t = await addToken(repo, { scope: 'write', name: 'ci' })
    expect(t.token).toMatch(/^pdg_[A-Za-z0-9_-]{43}$/)
    const auto = await addToken(repo, { scope: 'read' })
    expect(auto.name).toBe('read-1')
    expect(await listTokens(repo)).toEqual([
      { name: 'ci', scope: 'write', created: t.created },
      { name: 'read-1', scope: 'read', created: auto.created },
    ])
    // Nothing in the config holds the token text.
    const config: string[] = []
    for await (const [k, v] of repo.store.config.entries('')) config.push(k + JSON.stringify(v))
    expect(config.join('\n')).not.toContain(t.token.slice(4))
    expect(config.join('\n')).not.toContain(auto.token.slice(4))

    expect((await rejectionOf(addToken(repo, { scope: 'write', name: 'ci' }))).code).toBe('ERR_EXISTS')
    expect((await rejectionOf(addToken(repo, { scope: 'admin' }))).code).toBe('ERR_INVALID_INPUT')
    expect((await rejectionOf(addToken(repo, { scope: 'read', name: 'no spaces' }))).code).toBe('ERR_INVALID_INPUT')
    expect(await removeToken(repo, 'ci')).toMatchObject({ name: 'ci', scope: 'write' })
    expect((await rejectionOf(removeToken(repo, 'ci'))).code).toBe('ERR_NOT_FOUND')
    expect((await listTokens(repo)).map((x) => x.name)).toEqual(['read-1'])
  })
})

describe('a server with the default access', () => {
  it('lets anyone read; refuses a push without a token (401), with a read token (403), with a wrong token (401); the hub is unchanged', async () => {
    const { hub, server, base, next, ws, read, write } = await setup()
    const hubBefore = await refsOf(hub)

    expect((await status(`${server.url}/v1/refs`)).status).toBe(200)
    expect((await status(`${server.url}/v1/log`, read)).status).toBe(200)

    const anonymous = await rejectionOf(push(ws, { who: WHO }))
    expect(anonymous.code).toBe('ERR_UNAUTHORIZED')
    expect(anonymous.message).toContain('write token')

    const readOnly = await rejectionOf(push(ws, { who: WHO, transport: await openHttpTransport(server.url, { token: read }) }))
    expect(readOnly.code).toBe('ERR_FORBIDDEN')
    expect(readOnly.data).toMatchObject({ token: 'reader', scope: 'read', needed: 'write' })

    const wrong = await rejectionOf(push(ws, { who: WHO, transport: await openHttpTransport(server.url, { token: 'pdg_not-a-token' }) }))
    expect(wrong.code).toBe('ERR_UNAUTHORIZED')
    // A wrong token is refused on reads too (it is a mistake worth hearing about).
    const wrongRead = await status(`${server.url}/v1/refs`, 'pdg_not-a-token')
    expect(wrongRead.status).toBe(401)
    expect(wrongRead.headers.get('www-authenticate')).toMatch(/^Bearer/)
    expect(wrongRead.json.error.code).toBe('ERR_UNAUTHORIZED')
    expect((await status(`${server.url}/v1/refs`, undefined, { headers: { authorization: 'Basic YTpi' } })).status).toBe(401)

    expect(await refsOf(hub)).toEqual(hubBefore)
    expect((await hub.refs.get('main'))?.equals(base.cid)).toBe(true)
    // Refused before anything was stored: the hub has none of the new blocks.
    expect(await hub.blocks.has(next.cid)).toBe(false)
    expect((await ws.refs.get('remotes/origin/main'))?.equals(base.cid)).toBe(true)

    // With the write token, the push goes through; the hub's reflog names the token.
    const ok = await push(ws, { who: WHO, transport: await openHttpTransport(server.url, { token: write }) })
    expect(ok.refs[0]!.status).toBe('fast-forward')
    expect((await hub.refs.get('main'))?.equals(next.cid)).toBe(true)
    expect((await hub.reflog('main'))[0]!.message).toContain("token 'aps-pipeline'")
  })

  it('takes the token from PEDIGREE_TOKEN when none is given', async () => {
    const { hub, next, ws, write } = await setup()
    const saved = process.env.PEDIGREE_TOKEN
    process.env.PEDIGREE_TOKEN = write
    try {
      await push(ws, { who: WHO })
    } finally {
      if (saved === undefined) delete process.env.PEDIGREE_TOKEN
      else process.env.PEDIGREE_TOKEN = saved
    }
    expect((await hub.refs.get('main'))?.equals(next.cid)).toBe(true)
  })

  it('refuses a removed token', async () => {
    const hub = await s.init('hub')
    const t = await addToken(hub, { scope: 'read', name: 'temp' })
    const server = await servers.start(hub, { requireTokenForRead: true })
    expect((await status(`${server.url}/v1/refs`, t.token)).status).toBe(200)
    await removeToken(hub, 'temp')
    expect((await status(`${server.url}/v1/refs`, t.token)).status).toBe(401)
  })
})

describe('server options', () => {
  it('--require-token-for-read: reads need a token; the OpenAPI document and /v1/info stay public', async () => {
    const { server, read } = await setup({ requireTokenForRead: true })
    const anon = await status(`${server.url}/v1/refs`)
    expect(anon.status).toBe(401)
    expect(anon.json.error).toMatchObject({ code: 'ERR_UNAUTHORIZED', data: { needed: 'read' } })
    expect((await status(`${server.url}/v1/refs`, read)).status).toBe(200)
    expect((await status(`${server.url}/openapi.json`)).status).toBe(200)
    expect((await status(`${server.url}/v1/info`)).json.auth).toEqual({ anonymousRead: false, anonymousWrite: false })
    const local = await s.init('l')
    await addRemote(local, 'hub', server.url)
    expect((await rejectionOf(pedigreeFetch(local, { who: WHO, remote: 'hub' }))).code).toBe('ERR_UNAUTHORIZED')
    expect(await refsOf(local)).toEqual({})
    const f = await pedigreeFetch(local, { who: WHO, remote: 'hub', transport: await openHttpTransport(server.url, { token: read }) })
    expect(f.refs[0]!.status).toBe('new')
  })

  it('--allow-anonymous-write: a push without a token goes through; a read token still may not write', async () => {
    const { hub, server, next, ws, read } = await setup({ allowAnonymousWrite: true })
    expect((await rejectionOf(push(ws, { who: WHO, transport: await openHttpTransport(server.url, { token: read }) }))).code).toBe('ERR_FORBIDDEN')
    await push(ws, { who: WHO })
    expect((await hub.refs.get('main'))?.equals(next.cid)).toBe(true)
    expect((await hub.reflog('main'))[0]!.message).toContain('no token')
  })
})
