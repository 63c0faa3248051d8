import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Repository } from '../../src/repo/repository.js'
import { PedigreeError } from '../../src/errors.js'
import { prng } from '../helpers/random.js'

const author = { name: 'test' }

function randomBytes(n: number, seed: number): Buffer {
  const rand = prng(seed)
  const out = Buffer.alloc(n)
  for (let i = 0; i < n; i += 4) out.writeUInt32LE((rand() * 2 ** 32) >>> 0, i)
  return out
}

describe('commit sources that misbehave', () => {
  let dir: string
  let repo: Repository
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pedigree-src-'))
    repo = await Repository.init(join(dir, '.pedigree'))
    await repo.commit({ ref: 'main', author, message: 'base', edits: [{ type: 'record', path: 'a.json', value: { a: 1 } }] })
  })
  afterEach(async () => {
    await repo.close()
    await rm(dir, { recursive: true, force: true })
  })

  async function refState(): Promise<string> {
    return JSON.stringify([(await repo.refs.get('main'))?.toString(), (await repo.reflog('main')).length])
  }

  it('a file that shrinks while it is read is refused and the ref does not move', async () => {
    const path = join(dir, 'big.bin')
    await writeFile(path, randomBytes(24 << 20, 1))
    const before = await refState()
    let shrunk = false
    const attempt = repo.commit({
      ref: 'main',
      author,
      edits: [{ type: 'file', path: 'big.bin', source: path }],
      onProgress: () => {
        if (!shrunk) truncateSync(path, 3 << 20)
        shrunk = true
      },
    })
    await expect(attempt).rejects.toThrow(/changed while it was read/)
    expect(await refState()).toBe(before)
  })

  it('a file that cannot be read is refused with its name and the ref does not move', async () => {
    const before = await refState()
    // /proc/self/mem is a regular file whose read at offset 0 fails (EIO), even for root.
    const attempt = repo.commit({ ref: 'main', author, edits: [{ type: 'file', path: 'mem', source: '/proc/self/mem' }] })
    await expect(attempt).rejects.toThrow(/\/proc\/self\/mem/)
    await expect(attempt).rejects.toBeInstanceOf(PedigreeError)
    expect(await refState()).toBe(before)
  })

  it('a source path that does not exist is refused before anything is written', async () => {
    const before = await refState()
    const attempt = repo.commit({
      ref: 'main',
      author,
      edits: [
        { type: 'record', path: 'ok.json', value: { ok: true } },
        { type: 'file', path: 'missing.bin', source: join(dir, 'no-such-file') },
      ],
    })
    await expect(attempt).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' })
    expect(await refState()).toBe(before)
  })
})
