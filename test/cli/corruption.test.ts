import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeBlock } from '../../src/codec/block.js'
import { chunkStream } from '../../src/codec/chunk.js'
import { cidToString, parseCid } from '../../src/codec/cid.js'
import type { FileChunksNode } from '../../src/model/file.js'
import { openLevelStore } from '../../src/store/level.js'
import { prng } from '../helpers/random.js'
import { removeDir, runCli, runJson, tempDir } from './run-cli.js'

/**
 * One stored chunk of a large file is overwritten with other bytes behind the CLI's back
 * (bit rot, a bad disk, a careless tool). fsck must find it and say which block and which
 * ref; checkout must fail naming it and must not leave a partial or wrong file behind.
 */

const LAST_CHUNK = 1000

/**
 * Several MiB of seeded noise, cut so that the file ends in a chunk of LAST_CHUNK bytes: the
 * corrupt chunk is then the last one, so a checkout has already written everything before it
 * when it finds the damage (the case where a partial file could be left behind). A small block
 * is also one every backend lets us overwrite in place.
 */
async function bigContent(): Promise<Buffer> {
  const rand = prng(7)
  const bytes = Buffer.alloc(3 * 1024 * 1024)
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256)
  const lengths: number[] = []
  for await (const chunk of chunkStream((async function* () { yield bytes })())) lengths.push(chunk.length)
  const lastStart = lengths.slice(0, -1).reduce((a, b) => a + b, 0)
  return bytes.subarray(0, lastStart + LAST_CHUNK)
}

let dir: string
let repo: string
let badChunk: string

/** Every file under `root`, recursively (temporary files included). */
async function allFiles(root: string): Promise<string[]> {
  return (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
}

beforeAll(async () => {
  dir = await tempDir('corrupt')
  repo = join(dir, 'repo')
  await mkdir(repo)
  const content = await bigContent()
  await writeFile(join(repo, 'weights.bin'), content)
  await writeFile(join(repo, 'run.json'), '{"loss": 0.25, "epoch": 30}')
  expect((await runCli(['init'], { cwd: repo })).code).toBe(0)
  const c = await runCli(['commit', 'model/weights.bin=weights.bin', '--record', 'runs/30.json=run.json', '-m', 'epoch 30'], { cwd: repo })
  expect(c.code, c.stderr).toBe(0)
  const ls = await runJson(['ls'], { cwd: repo })
  const file = (ls.json as { path: string; cid: string; size: number }[]).find((e) => e.path === 'model/weights.bin')!
  expect(file.size).toBe(content.length)

  // Corrupt one chunk in place: same length, different bytes, under the same CID.
  const store = await openLevelStore(join(repo, '.pedigree'), { holder: 'corruption test' })
  try {
    const fileCid = parseCid(file.cid)
    const node = decodeBlock<FileChunksNode>(fileCid, await store.blocks.get(fileCid))
    expect(node.chunks.length).toBeGreaterThan(2)
    const [chunkCid, length] = node.chunks.at(-1)!
    expect(length).toBe(LAST_CHUNK)
    const bytes = Buffer.from(await store.blocks.get(chunkCid))
    for (let i = 0; i < bytes.length; i += 97) bytes[i] = bytes[i]! ^ 0xff
    await store.blocks.put({ cid: chunkCid, bytes })
    const stored = Buffer.from(await store.blocks.get(chunkCid))
    expect(stored.equals(bytes), 'the store kept its old bytes: this test cannot corrupt a block through put()').toBe(true)
    badChunk = cidToString(chunkCid)
  } finally {
    await store.close()
  }
}, 60_000)

afterAll(() => removeDir(dir))

describe('a corrupted block', { timeout: 20_000 }, () => {
  it('fsck exits 5 naming the bad block and the ref that reaches it', async () => {
    const r = await runCli(['fsck'], { cwd: repo })
    expect(r.code).toBe(5)
    const bad = r.stdout.split('\n').find((l) => l.startsWith('BAD '))
    expect(bad, r.stdout).toContain(badChunk)
    expect(bad).toContain('model/weights.bin')
    expect(r.stdout).toMatch(/reached from: main\b/)
    expect(r.stdout).not.toMatch(/^ok$/m)
    expect(r.stderr).toContain(badChunk)

    const { code, json } = await runJson(['fsck'], { cwd: repo })
    expect(code).toBe(5)
    expect(json.error.code).toBe('ERR_CORRUPT')
    expect(json.error.data.problems).toHaveLength(1) // the record and the other chunks are fine
    expect(json.error.data.problems[0]).toMatchObject({ cid: badChunk, refs: ['main'] })
  })

  it('checkout of the file fails naming the block and leaves no file behind', async () => {
    const out = join(dir, 'restore')
    const r = await runCli(['checkout', 'main', 'model/weights.bin', '-o', out], { cwd: repo })
    expect(r.code).toBe(5)
    expect(r.stderr).toContain(badChunk)
    expect(await allFiles(out).catch(() => [])).toEqual([])
  })

  it('checkout --force over an existing file leaves that file as it was', async () => {
    const out = join(dir, 'restore-force')
    await mkdir(join(out, 'model'), { recursive: true })
    await writeFile(join(out, 'model', 'weights.bin'), 'the previous weights\n')
    const r = await runCli(['checkout', 'main', '-o', out, '--force'], { cwd: repo })
    expect(r.code).toBe(5)
    expect(r.stderr).toContain(badChunk)
    expect(await readFile(join(out, 'model', 'weights.bin'), 'utf8')).toBe('the previous weights\n')
    expect((await allFiles(out)).filter((f) => f.includes('pedigree-tmp'))).toEqual([])
  })

  it('what is intact stays readable', async () => {
    const r = await runCli(['show', 'main:runs/30.json'], { cwd: repo })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ loss: 0.25, epoch: 30 })
  })
})
