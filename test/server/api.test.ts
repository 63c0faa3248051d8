import { readFile as readFileFs } from 'node:fs/promises'
import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CID } from '../../src/codec/cid.js'
import { Repository } from '../../src/repo/repository.js'
import { buildServer, type RunningServer } from '../../src/server/server.js'
import { carStream, encodeCidList } from '../../src/sync/http-transport.js'
import { pseudoRandom } from '../helpers/random.js'
import { commitAt, record } from '../repo/fixture.js'
import { Stores, WHO } from '../sync/helpers.js'
import { Servers } from './helpers.js'

/*
 * The read API, limits and errors of `pedigree serve`, over real HTTP on an ephemeral port:
 * what a script calling it with curl would check.
 */

let s: Stores
let servers: Servers
let repo: Repository
let server: RunningServer
let weights: Uint8Array
let c1: CID
let c2: CID

beforeAll(async () => {
  s = await Stores.make()
  servers = new Servers()
  repo = await s.init('r')
  weights = pseudoRandom(3, 1_500_000)
  const cal = await commitAt(repo, 'main', 1, [record('cal/c1.json', { type: 'calibration', lr: 0.1 }), record('runs/1.json', { loss: 0.5 })])
  c1 = cal.cid
  const calCid = (await repo.resolveEntry('main:cal/c1.json')).entry.cid
  c2 = (
    await commitAt(repo, 'main', 2, [
      record('runs/1.json', { loss: 0.25 }),
      record('runs/2.json', { loss: 0.3, used: calCid }),
      { type: 'bytes', path: 'model/w.bin', bytes: weights },
    ])
  ).cid
  server = await servers.start(repo, { maxBody: 64 * 1024, maxCarBody: 256 * 1024, allowAnonymousWrite: true })
})

afterAll(async () => {
  await servers.closeAll()
  await s.cleanup()
})

async function get(path: string): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(server.url + path)
  const text = await res.text()
  return { status: res.status, json: JSON.parse(text), headers: res.headers }
}

async function post(path: string, body: string | Uint8Array, type = 'application/json'): Promise<{ status: number; json: any }> {
  const res = await fetch(server.url + path, { method: 'POST', body, headers: { 'content-type': type } })
  return { status: res.status, json: JSON.parse(await res.text()) }
}

describe('the read API', () => {
  it('refs', async () => {
    const r = await get('/v1/refs')
    expect(r.status).toBe(200)
    expect(r.json).toEqual({ refs: [{ name: 'main', cid: c2.toString() }] })
    expect((await get('/v1/refs?prefix=tags/')).json).toEqual({ refs: [] })
  })

  it('log, with n and a path filter', async () => {
    const all = await get('/v1/log')
    expect(all.status).toBe(200)
    expect(all.json.map((c: { cid: string }) => c.cid)).toEqual([c2.toString(), c1.toString()])
    expect(all.json[0]).toMatchObject({ message: 'commit 2', author: { name: 'ana' }, parents: [{ '/': c1.toString() }] })
    expect((await get('/v1/log?n=1')).json.map((c: { cid: string }) => c.cid)).toEqual([c2.toString()])
    expect((await get('/v1/log?path=cal/c1.json')).json.map((c: { cid: string }) => c.cid)).toEqual([c1.toString()])
    expect((await get(`/v1/log?rev=${c1.toString()}`)).json).toHaveLength(1)
  })

  it('show: a commit with its changes, a record as JSON, a file as its exact bytes', async () => {
    const commit = await get('/v1/show?rev=main')
    expect(commit.json).toMatchObject({ type: 'commit', cid: c2.toString(), counts: { added: 2, modified: 1, removed: 0 }, truncated: false })
    expect(commit.json.changes.map((c: { type: string; path: string }) => `${c.type} ${c.path}`)).toEqual(['added model/w.bin', 'modified runs/1.json', 'added runs/2.json'])

    const rec = await get('/v1/show?rev=' + encodeURIComponent('main~1:runs/1.json'))
    expect(rec.json).toMatchObject({ type: 'record', path: 'runs/1.json', commit: c1.toString(), value: { loss: 0.5 } })

    const res = await fetch(server.url + '/v1/show?rev=' + encodeURIComponent('main:model/w.bin'))
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/octet-stream')
    const fileCid = (await repo.resolveEntry('main:model/w.bin')).entry.cid.toString()
    expect(res.headers.get('x-pedigree-cid')).toBe(fileCid)
    expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), Buffer.from(weights))).toBe(0)
    const about = await get('/v1/show?format=json&rev=' + encodeURIComponent('main:model/w.bin'))
    expect(about.json).toEqual({ type: 'file', path: 'model/w.bin', cid: fileCid, commit: c2.toString(), size: weights.length })
  })

  it('ls, diff and lineage, in the shapes of the CLI --json output', async () => {
    const ls = await get('/v1/ls?prefix=runs/')
    expect(ls.json.map((e: { path: string; kind: string }) => `${e.kind} ${e.path}`)).toEqual(['record runs/1.json', 'record runs/2.json'])
    expect((await get(`/v1/ls?rev=${c1.toString()}`)).json).toHaveLength(2)

    const diff = await get('/v1/diff?from=main~1&to=main&path=runs/')
    expect(diff.json).toHaveLength(2)
    expect(diff.json[0]).toMatchObject({ type: 'modified', path: 'runs/1.json', kind: 'record', fields: [{ field: 'loss', before: 0.5, after: 0.25 }] })
    expect((await get('/v1/diff?from=main~1&stat=true')).json.map((d: { path: string }) => d.path)).toEqual(['model/w.bin', 'runs/1.json', 'runs/2.json'])

    const up = await get('/v1/lineage?node=' + encodeURIComponent('main:runs/2.json'))
    expect(up.status).toBe(200)
    const calCid = (await repo.resolveEntry('main:cal/c1.json')).entry.cid.toString()
    expect(up.json.edges).toEqual([expect.objectContaining({ to: calCid, relation: 'used' })])
    const down = await get('/v1/lineage?direction=down&node=' + encodeURIComponent('main:cal/c1.json'))
    expect(down.json.nodes.map((n: { cid: string }) => n.cid)).toContain((await repo.resolveEntry('main:runs/2.json')).entry.cid.toString())
  })

  it('answers bad input with JSON errors and fitting statuses', async () => {
    const missing = await get('/v1/show?rev=nope')
    expect(missing.status).toBe(404)
    expect(missing.json.error).toMatchObject({ code: 'ERR_NOT_FOUND', data: { what: 'revision', name: 'nope' } })
    expect(missing.json.error.message).toContain('nope')

    const noRev = await get('/v1/show')
    expect(noRev.status).toBe(400)
    expect(noRev.json.error).toMatchObject({ code: 'ERR_INVALID_INPUT', data: { parameter: 'rev' } })
    expect((await get('/v1/log?n=-1')).json.error.code).toBe('ERR_INVALID_INPUT')
    expect((await get('/v1/lineage?node=main:runs/1.json&direction=sideways')).status).toBe(400)
    const route = await get('/v1/nothing')
    expect(route.status).toBe(404)
    expect(route.json.error.code).toBe('ERR_NOT_FOUND')
    const badJson = await post('/v1/sync/has', '{"cids": [')
    expect(badJson.status).toBe(400)
    expect(badJson.json.error.code).toBe('ERR_INVALID_INPUT')
    const badBinary = await post('/v1/sync/has', new Uint8Array([1, 0x71, 0x12, 32, 1, 2]), 'application/vnd.pedigree.cids')
    expect(badBinary.status).toBe(400)
    expect(badBinary.json.error.code).toBe('ERR_INVALID_INPUT')
    const badCid = await post('/v1/sync/has', JSON.stringify({ cids: ['bafynotacid'] }))
    expect(badCid.status).toBe(400)
    expect(badCid.json.error).toMatchObject({ code: 'ERR_INVALID_INPUT', data: { cid: 'bafynotacid' } })
  })
})

describe('the sync routes, asked by hand', () => {
  it('has: JSON in, JSON out; a binary CID list in, one byte per CID out', async () => {
    const absent = (await import('../../src/codec/block.js')).rawBlock(new Uint8Array([1, 2, 3])).cid
    const asked = [c1, absent, c2]
    expect((await post('/v1/sync/has', JSON.stringify({ cids: asked.map(String) }))).json).toEqual({ have: [true, false, true] })
    const res = await fetch(server.url + '/v1/sync/has', { method: 'POST', body: encodeCidList(asked), headers: { 'content-type': 'application/vnd.pedigree.cids' } })
    expect(res.headers.get('content-type')).toBe('application/octet-stream')
    expect([...new Uint8Array(await res.arrayBuffer())]).toEqual([1, 0, 1])
  })

  it('get and walk answer CAR streams that @ipld/car reads', async () => {
    const { CarBlockIterator } = await import('@ipld/car/iterator')
    const read = async (res: Response) => {
      expect(res.headers.get('content-type')).toBe('application/vnd.ipld.car')
      const out: string[] = []
      for await (const b of await CarBlockIterator.fromIterable(res.body as unknown as AsyncIterable<Uint8Array>)) out.push(b.cid.toString())
      return out
    }
    const got = await fetch(server.url + '/v1/sync/get', { method: 'POST', body: JSON.stringify({ cids: [c1.toString()] }), headers: { 'content-type': 'application/json' } })
    expect(await read(got)).toEqual([c1.toString()])
    const walked = await fetch(server.url + '/v1/sync/walk', { method: 'POST', body: JSON.stringify({ heads: [c2.toString()], limit: 10 }), headers: { 'content-type': 'application/json' } })
    expect(await read(walked)).toEqual([c2.toString(), c1.toString()])
    const bad = await post('/v1/sync/walk', JSON.stringify({ heads: [c2.toString()], limit: 0 }))
    expect(bad.status).toBe(400)
  })
})

describe('limits', () => {
  it('a JSON body over --max-body gets 413 with a JSON error', async () => {
    const cids = Array.from({ length: 2000 }, () => c1.toString())
    const r = await post('/v1/sync/has', JSON.stringify({ cids }))
    expect(r.status).toBe(413)
    expect(r.json.error.code).toBe('ERR_TOO_LARGE')
    // Under the limit, the same request works.
    expect((await post('/v1/sync/has', JSON.stringify({ cids: cids.slice(0, 100) }))).json.have).toHaveLength(100)
  })

  it('a CAR body over --max-car-body gets 413, declared or streamed; nothing of it becomes reachable', async () => {
    const big = pseudoRandom(9, 300 * 1024)
    const { rawBlock } = await import('../../src/codec/block.js')
    const block = rawBlock(big)
    const parts: Uint8Array[] = []
    for await (const p of carStream([block])) parts.push(p)
    const car = Buffer.concat(parts)
    // With a Content-Length: refused before the body is read.
    const declared = await post('/v1/sync/put', car, 'application/vnd.ipld.car')
    expect(declared.status).toBe(413)
    expect(declared.json.error).toMatchObject({ code: 'ERR_TOO_LARGE', data: { limit: 256 * 1024 } })
    // Streamed (chunked, no length): refused once the limit is passed.
    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      let answered = false
      const req = request(server.url + '/v1/sync/put', { method: 'POST', headers: { 'content-type': 'application/vnd.ipld.car', 'transfer-encoding': 'chunked' } }, (res) => {
        answered = true
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      // The server may close while the rest is still being written: the answer is what counts.
      req.on('error', (e) => {
        if (!answered) reject(e)
      })
      for (let i = 0; i < car.length; i += 16 * 1024) req.write(car.subarray(i, i + 16 * 1024))
      req.end()
    })
    expect(streamed.status).toBe(413)
    expect(JSON.parse(streamed.body).error.code).toBe('ERR_TOO_LARGE')
    expect(await repo.blocks.has(block.cid)).toBe(false)
  })

  it('a truncated CAR body is refused (422, truncated); no ref can be moved onto what it carried', async () => {
    const other = await s.init('other')
    const c = await commitAt(other, 'main', 7, [record('x.json', { v: 7 })])
    const blocks = [
      { cid: c.commit.tree, bytes: await other.blocks.get(c.commit.tree) },
      { cid: c.cid, bytes: await other.blocks.get(c.cid) },
    ]
    const parts: Uint8Array[] = []
    for await (const p of carStream(blocks)) parts.push(p)
    const car = Buffer.concat(parts)
    const r = await post('/v1/sync/put', car.subarray(0, car.length - 5), 'application/vnd.ipld.car')
    expect(r.status).toBe(422)
    expect(r.json.error).toMatchObject({ code: 'ERR_CORRUPT', data: { truncated: true } })
    expect(await repo.blocks.has(c.cid)).toBe(false)
    const before = (await repo.refs.get('main'))!.toString()
    const cas = await post('/v1/sync/cas', JSON.stringify({ name: 'other', expected: null, next: c.cid.toString(), who: WHO, message: 'try' }))
    expect(cas.status).toBe(422)
    expect(cas.json.error.code).toBe('ERR_INCOMPLETE')
    expect(await repo.refs.get('other')).toBeUndefined()
    expect((await repo.refs.get('main'))!.toString()).toBe(before)
  })

  it('a push body that is not a CAR stream gets 415; an empty one 400 or 422, never a 500', async () => {
    const r = await post('/v1/sync/put', JSON.stringify({ blocks: [] }))
    expect(r.status).toBe(415)
    expect(r.json.error.code).toBe('ERR_UNSUPPORTED_MEDIA_TYPE')
    const empty = await post('/v1/sync/put', new Uint8Array(0), 'application/vnd.ipld.car')
    expect([400, 422]).toContain(empty.status)
    expect(['ERR_INVALID_INPUT', 'ERR_CORRUPT']).toContain(empty.json.error.code)
  })
})

describe('the OpenAPI document', () => {
  it('is served at /openapi.json, equals docs/openapi.json, and describes every route the server has', async () => {
    const served = await get('/openapi.json')
    expect(served.status).toBe(200)
    const file = JSON.parse(await readFileFs(new URL('../../docs/openapi.json', import.meta.url), 'utf8'))
    expect(served.json).toEqual(file)
    expect(served.json.openapi).toMatch(/^3\./)

    const app = await buildServer(Repository.memory())
    await app.ready()
    const routes = app
      .printRoutes({ commonPrefix: false })
      .split('\n')
      .map((l) => /(\/\S*) \(([A-Z, ]+)\)/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .flatMap((m) => m[2]!.split(', ').filter((v) => v !== 'HEAD').map((method) => `${method.toLowerCase()} ${m[1]}`))
    await app.close()
    const documented = Object.entries(served.json.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`))
    expect(routes.length).toBeGreaterThan(10)
    expect(documented.sort()).toEqual(routes.sort())
    // Every $ref points at something defined.
    const text = JSON.stringify(served.json)
    for (const [, kind, name] of text.matchAll(/"#\/components\/(schemas|responses)\/([^"]+)"/g)) {
      expect(served.json.components[kind!][name!], `${kind}/${name}`).toBeDefined()
    }
  })
})
