import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CarWriter } from '@ipld/car/writer'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Block } from '../../src/codec/block.js'
import type { Repository } from '../../src/repo/repository.js'
import { addToken } from '../../src/server/tokens.js'
import { createBundle, importBundle, verifyBundle } from '../../src/sync/bundle.js'
import { push } from '../../src/sync/push.js'
import { addRemote } from '../../src/sync/remote.js'
import { Servers } from '../server/helpers.js'
import { forgeries, type Forgery } from './forged-trees.js'
import { Stores, WHO, refsOf, rejectionOf } from './helpers.js'

/*
 * Trees and file nodes that hash right but are not in their canonical form (unsafe, unsorted or
 * repeated paths, an entry that is also a folder, sizes that are not what they name, boundaries
 * and counts other than a build makes) are refused wherever blocks come in: an HTTP push, a push
 * to a path remote, a bundle import. The refusal names the block at fault and what is wrong, no
 * ref moves, and the receiving store stays clean for fsck. fsck names each in a store that holds
 * them.
 */

let s: Stores
let servers: Servers
let all: Forgery[]
beforeAll(async () => {
  s = await Stores.make()
  servers = new Servers()
  all = await forgeries()
})
afterAll(async () => {
  await servers.closeAll()
  await s.cleanup()
})

/** The refusal of `what` must be ERR_CORRUPT naming the forgery's bad block and saying what is wrong. */
function expectRefusal(f: Forgery, e: { code?: string; message?: string }): void {
  expect(e.code, `${f.name}: ${e.message}`).toBe('ERR_CORRUPT')
  expect(e.message, f.name).toContain(f.bad.toString())
  expect(e.message, f.name).toMatch(f.says)
}

async function car(blocks: Block[]): Promise<Uint8Array> {
  const { writer, out } = CarWriter.create([])
  const parts: Uint8Array[] = []
  const done = (async () => {
    for await (const p of out) parts.push(p)
  })()
  for (const b of blocks) await writer.put(b)
  await writer.close()
  await done
  return Buffer.concat(parts)
}

/** Put `blocks` on the server and ask it to create ref `name` at `next`, as any HTTP client can. */
async function httpPush(url: string, token: string, name: string, next: string, blocks: Block[]): Promise<{ status: number; json: any }> {
  const auth = { authorization: `Bearer ${token}` }
  const put = await fetch(`${url}/v1/sync/put`, { method: 'POST', headers: { ...auth, 'content-type': 'application/vnd.ipld.car' }, body: await car(blocks) })
  expect(put.status).toBe(200)
  await put.text()
  const cas = await fetch(`${url}/v1/sync/cas`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name, expected: null, next, who: { name: 'forger' }, message: 'forge' }),
  })
  return { status: cas.status, json: JSON.parse(await cas.text()) }
}

/** Store `blocks` as they are (a store takes what it is given) and point `name` at `commit`. */
async function plant(repo: Repository, name: string, commit: Forgery['commit'], blocks: Block[]): Promise<void> {
  await repo.blocks.putMany(blocks)
  await repo.refs.update(name, { next: commit, expect: null, who: WHO, message: 'planted' })
}

describe('forged trees and file nodes', () => {
  it('an HTTP push of each is refused naming the bad block; the server ref does not move and fsck of the server stays clean', { timeout: 60_000 }, async () => {
    const hub = await s.init('hub')
    const { token } = await addToken(hub, { scope: 'write', name: 'ci' })
    const server = await servers.start(hub)
    const bases = new Set<string>()
    for (const f of all) {
      if (f.base && !bases.has(f.base.commit.toString())) {
        bases.add(f.base.commit.toString())
        const ok = await httpPush(server.url, token, 'base', f.base.commit.toString(), f.base.blocks)
        expect(ok.status, JSON.stringify(ok.json)).toBe(200)
      }
      const r = await httpPush(server.url, token, `evil-${f.name}`, f.commit.toString(), f.blocks)
      expect(r.status, f.name).toBeGreaterThanOrEqual(400)
      expect(r.status, f.name).toBeLessThan(500)
      expectRefusal(f, r.json.error)
    }
    expect(Object.keys(await refsOf(hub))).toEqual(['base'])
    const check = await hub.fsck()
    expect(check.problems).toEqual([])
    expect(check.ok).toBe(true)
  })

  it('a push of each to a path remote is refused the same way; the remote ref does not move', { timeout: 60_000 }, async () => {
    const local = await s.init('forger')
    const remote = await s.initClosed('remote')
    await addRemote(local, 'origin', remote)
    for (const f of all) {
      if (f.base && !(await local.refs.get('base'))) {
        await plant(local, 'base', f.base.commit, f.base.blocks)
        expect((await push(local, { who: WHO, refs: ['base'] })).refs[0]!.status).toBe('created')
      }
      await plant(local, `evil-${f.name}`, f.commit, f.blocks)
      expectRefusal(f, await rejectionOf(push(local, { who: WHO, refs: [`evil-${f.name}`] })))
    }
    await s.with('remote', async (r) => {
      expect(Object.keys(await refsOf(r))).toEqual(['base'])
      expect((await r.fsck()).ok).toBe(true)
    })
  })

  it('a bundle of each fails verify and import; no ref moves in the importing store', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pedigree-forged-'))
    try {
      const dst = await s.init('importer')
      for (const f of all) {
        const src = await s.init(`bundle-${f.name}`)
        if (f.base) await plant(src, 'base', f.base.commit, f.base.blocks)
        await plant(src, `evil-${f.name}`, f.commit, f.blocks)
        const file = join(dir, `${f.name}.car`)
        await createBundle(src, file, { refs: [`evil-${f.name}`, ...(f.base ? ['base'] : [])] })
        expectRefusal(f, await rejectionOf(verifyBundle(file)))
        expectRefusal(f, await rejectionOf(importBundle(dst, file, { who: WHO })))
      }
      expect(await refsOf(dst)).toEqual({})
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('fsck names each in a store that holds them', { timeout: 60_000 }, async () => {
    const repo = await s.init('holder')
    for (const f of all) {
      if (f.base && !(await repo.refs.get('base'))) await plant(repo, 'base', f.base.commit, f.base.blocks)
      await plant(repo, `evil-${f.name}`, f.commit, f.blocks)
    }
    const r = await repo.fsck()
    expect(r.ok).toBe(false)
    for (const f of all) {
      const found = r.problems.filter((p) => p.refs.includes(`evil-${f.name}`))
      expect(found.length, `${f.name}: ${JSON.stringify(r.problems)}`).toBeGreaterThan(0)
      expect(
        // fsck names the node at fault (for a size: the leaf holding the entry, where a push names the root).
        found.some((p) => (p.cid === f.bad.toString() || p.problem.includes(f.bad.toString()) || f.blocks.some((b) => b.cid.toString() === p.cid)) && f.says.test(p.problem)),
        `${f.name}: ${JSON.stringify(found)}`,
      ).toBe(true)
    }
    // The canonical base is not blamed.
    expect(r.problems.filter((p) => p.refs.includes('base') && p.refs.length === 1)).toEqual([])
  })
})
