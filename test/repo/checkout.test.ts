import { createHash } from 'node:crypto'
import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { CID } from '../../src/codec/cid.js'
import { NotFoundError, RefusedError, UnsafePathError } from '../../src/errors.js'
import { parseRecordJson } from '../../src/model/record.js'
import { safeTarget } from '../../src/repo/checkout.js'
import type { Repository } from '../../src/repo/repository.js'
import { prng } from '../helpers/random.js'
import { AUTHOR, BACKENDS, T0, commitAt, record, text, type RepoFixture } from './fixture.js'
import { encodeNode } from '../../src/codec/block.js'
import { commitNode } from '../../src/model/commit.js'

const MiB = 1024 * 1024
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

function randomBytes(n: number, seed: number): Uint8Array {
  const rand = prng(seed)
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (rand() * 256) | 0
  return out
}

/** Every file under `dir`, relative, sorted. */
async function listTree(dir: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) await walk(p)
      else out.push(relative(dir, p))
    }
  }
  await walk(dir)
  return out.sort()
}

const FILES: [string, Uint8Array][] = [
  ['empty.bin', new Uint8Array(0)],
  ['one.bin', new Uint8Array([0x2a])],
  ['model/weights-1MiB+1.bin', randomBytes(MiB + 1, 1)],
  ['model/weights-3MiB.bin', randomBytes(3 * MiB, 2)],
]

describe.each(BACKENDS)('checkout ($name)', ({ open }) => {
  let fx: RepoFixture
  let repo: Repository
  let out: string
  let dataset: CID

  beforeEach(async () => {
    fx = await open()
    repo = fx.repo
    out = join(fx.dir, 'out')
    await commitAt(repo, 'main', 1, [text('inputs/dataset.txt', 'scan 17\n')])
    dataset = (await repo.resolveEntry('main:inputs/dataset.txt')).entry.cid
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  it('restores files byte for byte and records as JSON that parses back to the same value', async () => {
    const runValue = { loss: 0.31, steps: [1, 2, 3], nested: { ok: true, none: null }, used: dataset, name: 'ünïcødé' }
    await commitAt(repo, 'main', 2, [...FILES.map(([path, bytes]) => ({ type: 'bytes' as const, path, bytes })), record('runs/1.json', runValue)])

    const result = await repo.checkout('main', { outDir: out })
    expect(result.commit.equals((await repo.resolve('main')).cid)).toBe(true)
    expect(result.unchanged).toBe(0)
    expect(result.written.map((w) => w.path).sort()).toEqual([...FILES.map(([p]) => p), 'inputs/dataset.txt', 'runs/1.json'].sort())
    expect(await listTree(out)).toEqual([...FILES.map(([p]) => p), 'inputs/dataset.txt', 'runs/1.json'].sort())

    for (const [path, bytes] of FILES) {
      const written = await readFile(join(out, path))
      expect(written.length, path).toBe(bytes.length)
      expect(sha(written), path).toBe(sha(bytes))
    }
    const json = JSON.parse(await readFile(join(out, 'runs/1.json'), 'utf8'))
    expect(json).toEqual({ ...runValue, used: { '/': dataset.toString() } })
    const back = parseRecordJson(await readFile(join(out, 'runs/1.json'), 'utf8'))
    expect(String(back.used)).toBe(dataset.toString())
    expect({ ...back, used: null }).toEqual({ ...runValue, used: null })
  })

  it('restores an old version after a newer commit, refusing to overwrite a differing file without force', async () => {
    const v1 = randomBytes(200_000, 7)
    const v2 = randomBytes(200_000, 8)
    await commitAt(repo, 'main', 2, [{ type: 'bytes', path: 'model.pt', bytes: v1 }, record('cfg.json', { lr: 0.1 })])
    await commitAt(repo, 'main', 3, [{ type: 'bytes', path: 'model.pt', bytes: v2 }, record('cfg.json', { lr: 0.01 })])

    await repo.checkout('main~1', { outDir: out })
    expect(sha(await readFile(join(out, 'model.pt')))).toBe(sha(v1))
    expect(JSON.parse(await readFile(join(out, 'cfg.json'), 'utf8'))).toEqual({ lr: 0.1 })

    const err = await repo.checkout('main', { outDir: out }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RefusedError)
    expect((err as RefusedError).code).toBe('ERR_REFUSED')
    // Refused before anything was written: both files still hold v1.
    expect(sha(await readFile(join(out, 'model.pt')))).toBe(sha(v1))
    expect(JSON.parse(await readFile(join(out, 'cfg.json'), 'utf8'))).toEqual({ lr: 0.1 })
    expect(await listTree(out)).toEqual(['cfg.json', 'inputs/dataset.txt', 'model.pt'])

    const forced = await repo.checkout('main', { outDir: out, force: true })
    expect(sha(await readFile(join(out, 'model.pt')))).toBe(sha(v2))
    expect(JSON.parse(await readFile(join(out, 'cfg.json'), 'utf8'))).toEqual({ lr: 0.01 })
    expect(forced.written.map((w) => w.path).sort()).toEqual(['cfg.json', 'model.pt'])
    expect(forced.unchanged).toBe(1)
    expect(await listTree(out)).toEqual(['cfg.json', 'inputs/dataset.txt', 'model.pt'])

    // Identical files are left alone and counted.
    const again = await repo.checkout('main', { outDir: out })
    expect(again.written).toEqual([])
    expect(again.unchanged).toBe(3)
  })

  it('refuses a same-size file whose bytes differ', async () => {
    await mkdir(join(out, 'inputs'), { recursive: true })
    await writeFile(join(out, 'inputs/dataset.txt'), 'scan 18\n')
    await expect(repo.checkout('main', { outDir: out })).rejects.toBeInstanceOf(RefusedError)
    expect(await readFile(join(out, 'inputs/dataset.txt'), 'utf8')).toBe('scan 18\n')
  })

  it('writes only the selected subtree, and names an unknown path', async () => {
    await commitAt(repo, 'main', 2, [text('runs/1/log.txt', 'one'), text('runs/2/log.txt', 'two'), text('runs2/x.txt', 'x'), record('cfg.json', { a: 1 })])
    const r = await repo.checkout('main', { outDir: out, paths: ['runs'] })
    expect(r.written.map((w) => w.path)).toEqual(['runs/1/log.txt', 'runs/2/log.txt'])
    expect(await listTree(out)).toEqual(['runs/1/log.txt', 'runs/2/log.txt'])

    const out2 = join(fx.dir, 'out2')
    await repo.checkout('main', { outDir: out2, paths: ['runs/2/', 'cfg.json'] })
    expect(await listTree(out2)).toEqual(['cfg.json', 'runs/2/log.txt'])

    const out3 = join(fx.dir, 'out3')
    const err = await repo.checkout('main', { outDir: out3, paths: ['run'] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NotFoundError)
    expect((err as Error).message).toContain('run')
    expect(await stat(out3).then(() => listTree(out3), () => [])).toEqual([])
  })

  it('writes a path named twice, or inside a folder also named, once; ./ in front is accepted', async () => {
    await commitAt(repo, 'main', 2, [record('config/train.json', { lr: 0.1 }), text('config/notes.txt', 'n')])
    const r = await repo.checkout('main', { outDir: out, paths: ['config', 'config/train.json', 'config/', './config/notes.txt'] })
    expect(r.written.map((w) => w.path).sort()).toEqual(['config/notes.txt', 'config/train.json'])
  })

  it('refuses a symlinked directory in the output that leads outside it, writing nothing anywhere', async () => {
    const outside = join(fx.dir, 'outside')
    await mkdir(outside)
    await mkdir(out)
    await symlink(outside, join(out, 'model'))
    await commitAt(repo, 'main', 2, [text('a.txt', 'a'), text('model/evil.txt', 'pwned')])

    const err = await repo.checkout('main', { outDir: out }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UnsafePathError)
    expect((err as UnsafePathError).code).toBe('ERR_UNSAFE_PATH')
    expect((err as UnsafePathError).data.path).toBe('model/evil.txt')
    expect(await readdir(outside)).toEqual([])
    expect((await readdir(out)).sort()).toEqual(['model'])
  })

  it('refuses, before writing anything, a revision holding both a file and a directory of one name', async () => {
    // Commits refuse such a tree; an older pedigree or a remote could still deliver one.
    await commitAt(repo, 'fa', 2, [text('a', 'file a')])
    await commitAt(repo, 'fb', 2, [text('a/b', 'b')])
    const leaf = encodeNode({ kind: 'tree', level: 0, entries: [['a', (await repo.resolveEntry('fa:a')).entry], ['a/b', (await repo.resolveEntry('fb:a/b')).entry]] })
    const commit = encodeNode(commitNode({ tree: leaf.cid, parents: [], author: AUTHOR, time: T0, message: 'both' }))
    await repo.blocks.putMany([leaf, commit])
    await repo.refs.update('main', { next: commit.cid, expect: (await repo.refs.get('main')) ?? null, who: AUTHOR, message: 'both' })
    const err = await repo.checkout('main', { outDir: out }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RefusedError)
    expect((err as RefusedError).data).toMatchObject({ path: 'a/b', conflict: 'a' })
    expect(await listTree(out)).toEqual([])
    // Either one alone is fine.
    await repo.checkout('main', { outDir: out, paths: ['a/b'] })
    expect(await readFile(join(out, 'a/b'), 'utf8')).toBe('b')
  })

  it("refuses, before writing anything, a revision with a path into a '.pedigree' folder (a store's own files)", async () => {
    // Commits refuse such paths; an older pedigree or a remote could still deliver them. A
    // checkout with -o . would otherwise replace the store's database or its DAEMON file.
    await commitAt(repo, 'evil', 2, [text('ok.txt', 'fine'), text('garbage', 'GARBAGE\n')])
    const garbage = (await repo.resolveEntry('evil:garbage')).entry
    const leaf = encodeNode({ kind: 'tree', level: 0, entries: [['.pedigree/DAEMON', garbage], ['ok.txt', (await repo.resolveEntry('evil:ok.txt')).entry]] })
    const commit = encodeNode(commitNode({ tree: leaf.cid, parents: [], author: AUTHOR, time: T0, message: 'evil' }))
    await repo.blocks.putMany([leaf, commit])
    await repo.refs.update('evil', { next: commit.cid, expect: (await repo.refs.get('evil')) ?? null, who: AUTHOR, message: 'evil' })
    const err = await repo.checkout('evil', { outDir: out, force: true }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UnsafePathError)
    expect((err as UnsafePathError).data.path).toBe('.pedigree/DAEMON')
    expect(await listTree(out)).toEqual([])
  })

  it('refuses, before writing anything, when a file on disk sits where a directory is needed', async () => {
    await commitAt(repo, 'main', 2, [text('a.txt', 'a'), text('model/w.bin', 'w')])
    await mkdir(out)
    await writeFile(join(out, 'model'), 'in the way\n')
    const err = await repo.checkout('main', { outDir: out }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RefusedError)
    expect((err as RefusedError).data).toMatchObject({ path: 'model/w.bin', conflict: 'model' })
    expect(await listTree(out)).toEqual(['model'])
    expect(await readFile(join(out, 'model'), 'utf8')).toBe('in the way\n')
  })

  it('refuses to write through a symlinked file', async () => {
    const outsideFile = join(fx.dir, 'victim.txt')
    await writeFile(outsideFile, 'original\n')
    await mkdir(join(out, 'inputs'), { recursive: true })
    await symlink(outsideFile, join(out, 'inputs/dataset.txt'))
    await expect(repo.checkout('main', { outDir: out, force: true })).rejects.toBeInstanceOf(RefusedError)
    expect(await readFile(outsideFile, 'utf8')).toBe('original\n')
  })
})

describe('safeTarget', () => {
  it('refuses paths that would leave the output directory', () => {
    for (const bad of ['../x', '/etc/passwd', 'a/../../b', 'a/..', '..', 'a//b', './a', 'a/./b', 'C:/x', '..\\x', '.pedigree/store/CURRENT', 'p/.PEDIGREE/FORMAT']) {
      expect(() => safeTarget('/tmp/out', bad), bad).toThrow(UnsafePathError)
    }
    expect(safeTarget('/tmp/out', 'a/b.txt')).toBe('/tmp/out/a/b.txt')
    expect(safeTarget('/tmp/out', 'a..b/c')).toBe('/tmp/out/a..b/c')
  })
})
