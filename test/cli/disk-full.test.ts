import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli, runJson } from './run-cli.js'

// A real full disk: a small tmpfs (needs root, as in CI). Elsewhere the test says why it skips.
const dir = join(tmpdir(), `pedigree-full-${process.pid}`)
const mounted = (() => {
  if (process.getuid?.() !== 0) return false
  spawnSync('mkdir', ['-p', dir])
  return spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', dir]).status === 0
})()

describe.skipIf(!mounted)('a disk that fills up during a commit (tmpfs of 24 MiB; skipped unless root can mount)', () => {
  let src: string
  beforeAll(async () => {
    src = await mkdtemp(join(tmpdir(), 'pedigree-full-src-'))
    const big = Buffer.alloc(16 << 20)
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i)
    await writeFile(join(src, 'big.bin'), big)
    await writeFile(join(src, 'a.json'), '{"a": 1}')
  })
  afterAll(async () => {
    spawnSync('umount', [dir])
    await rm(dir, { recursive: true, force: true })
    await rm(src, { recursive: true, force: true })
  })

  it('fails with a clear error, leaves the ref where it was, and the store works once space is freed', async () => {
    expect((await runCli(['init', dir], { cwd: dir })).code).toBe(0)
    expect((await runCli(['commit', '-m', 'first', '--record', `a.json=${join(src, 'a.json')}`], { cwd: dir })).code).toBe(0)
    const before = (await runJson<{ name: string; cid: string }[]>(['ref', 'list', '--json'], { cwd: dir })).json
    await writeFile(join(dir, 'filler'), Buffer.alloc(15 << 20))

    const full = await runCli(['commit', '-m', 'big', `big.bin=${join(src, 'big.bin')}`], { cwd: dir })
    expect(full.code).not.toBe(0)
    expect(full.stderr).toMatch(/^error: .*(space|short write|ENOSPC)/m)
    expect(full.stderr.match(/^error:/gm)).toHaveLength(1)

    await unlink(join(dir, 'filler'))
    expect((await runJson<{ name: string; cid: string }[]>(['ref', 'list', '--json'], { cwd: dir })).json).toEqual(before)
    const reflog = await runJson<unknown[]>(['reflog', 'main', '--json'], { cwd: dir })
    expect(reflog.json).toHaveLength(1)
    expect((await runCli(['fsck'], { cwd: dir })).code).toBe(0)
    expect((await runCli(['commit', '-m', 'big again', `big.bin=${join(src, 'big.bin')}`], { cwd: dir })).code).toBe(0)
    expect((await runCli(['fsck'], { cwd: dir })).code).toBe(0)
  })
})
