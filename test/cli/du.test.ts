import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prng } from '../helpers/random.js'
import { removeDir, runCli, runJson, tempDir } from './run-cli.js'

const KiB = 1024
const MiB = 1024 * KiB

function randomBytes(seed: number, n: number): Buffer {
  const rand = prng(seed)
  const out = Buffer.alloc(n)
  for (let i = 0; i < n; i++) out[i] = rand() * 256
  return out
}

interface DuJson {
  refs: Array<{ name: string; commit: string; commits: number; logical: number; logicalAllVersions: number; blocks: number; unique: number; stored: number; ratio: number; missing: number }>
  store?: { blocks: number; size: number; stored: number }
}

let dir: string
let cwd: string

beforeAll(async () => {
  dir = await tempDir('du')
  cwd = join(dir, 'work')
  await mkdir(join(cwd, 'ckpt'), { recursive: true })
  const v1 = randomBytes(1, 3 * MiB)
  await writeFile(join(cwd, 'ckpt', 'e1.pt'), v1)
  await writeFile(join(cwd, 'ckpt', 'copy.pt'), v1)
  const log = Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ task: i, site: 'aps', loss: (i % 97) / 97 })).join('\n')
  await writeFile(join(cwd, 'tasks.jsonl'), log)
  const v2 = Buffer.from(v1)
  randomBytes(2, 30 * KiB).copy(v2, 1 * MiB)
  await writeFile(join(cwd, 'e2.pt'), v2)
}, 30_000)

afterAll(() => removeDir(dir))

describe('pedigree du', { timeout: 30_000 }, () => {
  it('reports every ref with --json: logical bytes of the tree and of all versions, and the stored bytes', async () => {
    expect((await runCli(['init'], { cwd })).code).toBe(0)
    let r = await runCli(['commit', '-b', 'models/net', '-m', 'epoch 1', 'ckpt', 'tasks.jsonl'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    r = await runCli(['commit', '-b', 'models/net', '-m', 'epoch 2', 'ckpt/e1.pt=e2.pt'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    const ls = await runJson<Array<{ path: string; size: number }>>(['ls', 'models/net'], { cwd })
    const sizes = Object.fromEntries(ls.json.map((e) => [e.path, e.size]))
    expect(sizes['tasks.jsonl']).toBeGreaterThan(900 * KiB)

    const { code, json } = await runJson<DuJson>(['du'], { cwd })
    expect(code).toBe(0)
    expect(json.refs.map((x) => x.name)).toEqual(['models/net'])
    const net = json.refs[0]!
    const current = 6 * MiB + sizes['tasks.jsonl']!
    expect(net.commits).toBe(2)
    expect(net.logical).toBe(current)
    expect(net.logicalAllVersions).toBe(2 * current)
    expect(net.commit).toMatch(/^bafy/)
    // Two identical checkpoints and a second version that differs in 30 KiB: about one copy is stored,
    // and the JSON log is deflated.
    expect(net.stored).toBeLessThan(3 * MiB + 1 * MiB)
    expect(net.stored).toBeLessThan(0.35 * net.logicalAllVersions)
    expect(net.ratio).toBeGreaterThan(2.5)
    expect(net.missing).toBe(0)
    expect(json.store!.blocks).toBeGreaterThanOrEqual(net.blocks)
    expect(json.store!.stored).toBeLessThanOrEqual(json.store!.size)
  })

  it('prints a table for people, for the revisions asked', async () => {
    const r = await runCli(['du', 'models/net', 'models/net~1'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^REF\s+COMMITS\s+CURRENT\s+ALL VERSIONS\s+UNIQUE\s+STORED\s+RATIO$/)
    // 6 MiB of checkpoints and ~1 MiB of JSON: 7.0 MiB now, 14.0 MiB over both versions.
    expect(lines[1]).toMatch(/^models\/net\s+2\s+7\.0 MiB\s+14\.0 MiB\s+[\d.]+ MiB\s+[\d.]+ MiB\s+\d+\.\dx$/)
    expect(lines[2]).toMatch(/^models\/net~1\s+1\s+7\.0 MiB\s+7\.0 MiB\s/)
    expect(lines[3]).toMatch(/^store: \d+ blocks, [\d.]+ MiB stored \([\d.]+ MiB uncompressed\)$/)
  })

  it('--refs-only leaves out the store; an unknown revision fails with exit code 3 and a clear message', async () => {
    const { json } = await runJson<DuJson>(['du', 'models/net', '--refs-only'], { cwd })
    expect(json.store).toBeUndefined()
    expect(json.refs).toHaveLength(1)
    const bad = await runCli(['du', 'nosuch'], { cwd })
    expect(bad.code).toBe(3)
    expect(bad.stderr).toContain('nosuch')
  })

  it('has help with examples', async () => {
    const r = await runCli(['du', '--help'], { cwd })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('all versions')
    expect(r.stdout).toContain('EXAMPLES')
    expect(r.stdout).toContain('du --json')
  })
})
