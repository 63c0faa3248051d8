import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { RAW } from '../../src/codec/cid.js'
import type { CID } from '../../src/codec/cid.js'
import type { Repository } from '../../src/repo/repository.js'
import { clone } from '../../src/sync/clone.js'
import { fetch } from '../../src/sync/fetch.js'
import { carStream } from '../../src/sync/http-transport.js'
import { pull } from '../../src/sync/pull.js'
import { push } from '../../src/sync/push.js'
import { addRemote } from '../../src/sync/remote.js'
import { pseudoRandom } from '../helpers/random.js'
import { commitAt, record } from '../repo/fixture.js'
import { Servers } from '../server/helpers.js'
import { Stores, WHO, refsOf, rejectionOf } from './helpers.js'

/*
 * Peers that lie or are not there. The hostile servers here are hand-written (node:http and
 * @ipld/car's own CAR writer), speaking the protocol over a real store but changing what they
 * send; nothing they send may become reachable from a local ref.
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

async function facility(repo: Repository): Promise<void> {
  await commitAt(repo, 'main', 1, [record('runs/1.json', { loss: 0.5 }), record('config.json', { lr: 0.1 })])
  await commitAt(repo, 'main', 2, [{ type: 'bytes', path: 'model/weights.bin', bytes: pseudoRandom(42, 2 * 1024 * 1024 + 5) }])
}

/** A URL where nothing listens (a port that was just free). */
async function deadUrl(): Promise<string> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  await new Promise((r) => server.close(r))
  return `http://127.0.0.1:${port}`
}

describe('a server that sends a block whose bytes do not match its CID', () => {
  it('fails the fetch naming the CID; no local ref moves and the forged bytes are not stored', async () => {
    const remote = await s.init('r')
    await facility(remote)
    const target = (await remote.resolveEntry('main:config.json')).entry.cid
    const url = await servers.hostile(remote, { serve: (b) => (b.cid.equals(target) ? { cid: b.cid, bytes: new TextEncoder().encode('{"lr": 10}') } : b) })
    const local = await s.init('l')
    await addRemote(local, 'origin', url)
    const err = await rejectionOf(fetch(local, { who: WHO }))
    expect(err.code).toBe('ERR_CORRUPT')
    expect(err.data?.cid).toBe(target.toString())
    expect(err.message).toContain(target.toString())
    expect(await refsOf(local)).toEqual({})
    expect(await local.blocks.has(target)).toBe(false)
  })

  it('a forged commit fails a pull the same way', async () => {
    const remote = await s.init('r')
    await facility(remote)
    const head = (await remote.refs.get('main'))!
    const url = await servers.hostile(remote, { serve: (b) => (b.cid.equals(head) ? { cid: b.cid, bytes: b.bytes.slice(1) } : b) })
    const local = await s.init('l')
    await addRemote(local, 'origin', url)
    const err = await rejectionOf(pull(local, { who: WHO }))
    expect(err.code).toBe('ERR_CORRUPT')
    expect(err.data?.cid).toBe(head.toString())
    expect(await refsOf(local)).toEqual({})
    // And clone leaves nothing behind.
    const target = join(s.dir, 'copy', '.pedigree')
    expect((await rejectionOf(clone(url, target, { who: WHO }))).code).toBe('ERR_CORRUPT')
    expect(existsSync(join(s.dir, 'copy'))).toBe(false)
  })
})

describe('a server that omits a block under the ref it advertises', () => {
  it('fails with ERR_INCOMPLETE naming it; no local ref moves; an honest server then completes the fetch', async () => {
    const remote = await s.init('r')
    await facility(remote)
    const file = (await remote.resolveEntry('main:model/weights.bin')).entry.cid
    const chunk = ((await remote.readNode(file)) as { chunks: [CID, number][] }).chunks[1]![0]
    expect(chunk.code).toBe(RAW)
    const url = await servers.hostile(remote, { serve: (b) => (b.cid.equals(chunk) ? undefined : b) })
    const local = await s.init('l')
    await addRemote(local, 'origin', url)
    const err = await rejectionOf(fetch(local, { who: WHO }))
    expect(err.code).toBe('ERR_INCOMPLETE')
    expect(err.data?.cid).toBe(chunk.toString())
    expect(err.message).toContain(chunk.toString())
    expect(await refsOf(local)).toEqual({})

    const honest = await servers.start(remote)
    await addRemote(local, 'honest', honest.url)
    const again = await fetch(local, { who: WHO, remote: 'honest' })
    // What verified before stayed: only the missing chunk travels.
    expect(again.blocks).toBe(1)
    expect((await local.fsck()).ok).toBe(true)
  })
})

describe('a server that cuts its CAR stream mid-block', () => {
  it('fails with ERR_CORRUPT (truncated); no local ref moves', async () => {
    const remote = await s.init('r')
    await facility(remote)
    const head = (await remote.refs.get('main'))!
    const headBytes = await remote.blocks.get(head)
    // Answers refs honestly, then sends a CAR that stops in the middle of the head commit.
    const server: Server = createServer(async (req, res) => {
      if (req.url === '/v1/refs') {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ refs: [{ name: 'main', cid: head.toString() }] }))
        return
      }
      for await (const _ of req);
      const parts: Uint8Array[] = []
      for await (const c of carStream([{ cid: head, bytes: headBytes }])) parts.push(c)
      const car = Buffer.concat(parts)
      res.setHeader('content-type', 'application/vnd.ipld.car')
      res.end(car.subarray(0, car.length - 10))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const local = await s.init('l')
    await addRemote(local, 'origin', `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    try {
      const err = await rejectionOf(fetch(local, { who: WHO }))
      expect(err.code).toBe('ERR_CORRUPT')
      expect(err.data?.truncated).toBe(true)
      expect(await refsOf(local)).toEqual({})
      expect(await local.blocks.has(head)).toBe(false)
    } finally {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  })
})

describe('an unreachable remote', () => {
  it('push, fetch and pull fail with ERR_UNREACHABLE naming the URL, changing nothing; clone creates nothing', async () => {
    const url = await deadUrl()
    const local = await s.init('l')
    await commitAt(local, 'main', 1, [record('x.json', { v: 1 })])
    await addRemote(local, 'origin', url)
    const before = await refsOf(local)
    for (const op of [() => push(local, { who: WHO }), () => fetch(local, { who: WHO }), () => pull(local, { who: WHO })]) {
      const err = await rejectionOf(op())
      expect(err.code).toBe('ERR_UNREACHABLE')
      expect(err.message).toContain(url)
      expect(err.data?.url).toBe(url)
    }
    expect(await refsOf(local)).toEqual(before)
    const target = join(s.dir, 'copy', '.pedigree')
    expect((await rejectionOf(clone(url, target, { who: WHO }))).code).toBe('ERR_UNREACHABLE')
    expect(existsSync(join(s.dir, 'copy'))).toBe(false)
  })

  it('a server that is not a pedigree server gets a clear error', async () => {
    const server = createServer((_req, res) => {
      res.statusCode = 404
      res.setHeader('content-type', 'text/html')
      res.end('<h1>Not Found</h1>')
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/some/prefix`
    try {
      const local = await s.init('l')
      await addRemote(local, 'origin', url)
      const err = await rejectionOf(fetch(local, { who: WHO }))
      // Not a pedigree server's answer: unreachable (exit 8), as docs/http-api.md says, with a hint.
      expect(err.code).toBe('ERR_UNREACHABLE')
      expect(err.message).toContain('HTTP 404')
      expect(err.message).toContain(`${url}/v1/refs`)
      expect(err.message).toContain("check the remote's URL")
      expect(await refsOf(local)).toEqual({})
    } finally {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  })
})
