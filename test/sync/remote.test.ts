import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { commitAt, record } from '../repo/fixture.js'
import { openTransport } from '../../src/sync/open-transport.js'
import { push } from '../../src/sync/push.js'
import { addRemote, getRemote, listRemotes, removeRemote, showRemote } from '../../src/sync/remote.js'
import { Stores, WHO, refsOf, rejectionOf } from './helpers.js'

let s: Stores
beforeEach(async () => {
  s = await Stores.make()
})
afterEach(async () => {
  await s.cleanup()
})

describe('remotes', () => {
  it('are kept in the config, paths made absolute, and removing one deletes its tracking refs', async () => {
    const a = await s.init('a')
    expect(await addRemote(a, 'hub', '../hub', { base: join(s.dir, 'a') })).toEqual({ name: 'hub', url: join(s.dir, 'hub') })
    expect(await addRemote(a, 'file', pathToFileURL(join(s.dir, 'f')).href)).toEqual({ name: 'file', url: join(s.dir, 'f') })
    expect((await listRemotes(a)).map((r) => r.name)).toEqual(['file', 'hub'])
    expect((await rejectionOf(addRemote(a, 'hub', '/x'))).code).toBe('ERR_EXISTS')
    for (const bad of ['', 'a/b', '.x', 'x.lock', 'a b', '-x']) expect((await rejectionOf(addRemote(a, bad, '/x'))).code).toBe('ERR_INVALID_INPUT')
    expect((await rejectionOf(getRemote(a, 'nope'))).code).toBe('ERR_NOT_FOUND')

    await s.initClosed('hub')
    const c = await commitAt(a, 'main', 1, [record('x.json', { v: 1 })])
    await push(a, { who: WHO, remote: 'hub' })
    expect((await showRemote(a, 'hub')).refs.map((r) => [r.ref, r.tracking, r.cid.toString()])).toEqual([['main', 'remotes/hub/main', c.cid.toString()]])
    const removed = await removeRemote(a, 'hub', { who: WHO })
    expect(removed.removedRefs).toEqual(['remotes/hub/main'])
    expect(await refsOf(a)).toEqual({ main: c.cid.toString() })
    // What it pointed at stays findable in the reflog.
    expect((await a.reflog('remotes/hub/main'))[1]!.new?.equals(c.cid)).toBe(true)
    expect((await listRemotes(a)).map((r) => r.name)).toEqual(['file'])
  })

  it('refuses URLs it cannot serve yet, and a remote that is the store itself', async () => {
    const a = await s.init('a')
    expect((await rejectionOf(openTransport('https://user:secret@example.org/store'))).code).toBe('ERR_INVALID_INPUT')
    expect((await rejectionOf(openTransport('s3://Not_A_Bucket/prefix'))).code).toBe('ERR_INVALID_INPUT')
    expect((await rejectionOf(openTransport('/tmp/x.car'))).message).toContain('bundle import')
    expect((await rejectionOf(openTransport('ftp://host/x'))).code).toBe('ERR_INVALID_INPUT')
    for (const self of [s.root('a'), join(s.dir, 'a')]) {
      expect((await rejectionOf(openTransport(self, { local: a.location }))).message).toContain('is this store itself')
    }
  })
})
