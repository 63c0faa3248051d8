import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pseudoRandom } from '../helpers/random.js'
import { removeDir, runCli, runJson, tempDir } from '../cli/run-cli.js'
import { SEED, delay, expectIntact, history, iterations, paths, randomFor, runAndKill, sha256, timeAfterOpen, where } from './harness.js'

/**
 * `pedigree commit` (with a checkpoint of a few tens of MB, so kills land while its chunks are
 * written) and `pedigree ingest` are killed with SIGKILL at random points. After each kill the
 * store opens at once, fsck is clean, the ref holds either the old or the new version (never a
 * mix), and running the same command again completes it without committing anything twice.
 */

const BIG = 24 * 1024 * 1024
const KILLS = iterations(5)
/** Room for each kill and its checks on two busy cores (more kills, more time). */
const TIMEOUT = 60_000 + 25_000 * KILLS

let dir: string

beforeAll(async () => {
  dir = await tempDir('crash-commit')
}, 30_000)

afterAll(() => removeDir(dir))

describe('killed commit', () => {
  it(`of a ${BIG >> 20} MiB file and a record: fsck clean, old or new version byte-exact, the re-run commits it once (seed ${SEED})`, { timeout: TIMEOUT }, async () => {
    const rand = randomFor('commit')
    const cwd = join(dir, 'commit')
    const root = join(cwd, '.pedigree')
    expect((await runCli(['init', cwd], { cwd: dir })).code).toBe(0)
    const big = join(cwd, 'big.bin')
    const rec = join(cwd, 'run.json')
    const args = (k: number): string[] => ['commit', '-m', `checkpoint v${k}`, `model/big.bin=${big}`, '--record', `runs/${k}.json=${rec}`]
    const version = async (k: number): Promise<string> => {
      const bytes = pseudoRandom(SEED + 1000 * k + 1, BIG)
      await writeFile(big, bytes)
      await writeFile(rec, JSON.stringify({ run: k, loss: 1 / (k + 1) }))
      return sha256(bytes)
    }
    const stored = async (): Promise<string | undefined> => {
      const r = await runCli(['show', 'main:model/big.bin'], { cwd })
      return r.code === 0 ? sha256(r.stdoutBytes) : undefined
    }

    // Version 0, not killed: how long a commit holds the store here sets the range of kill points.
    let previous = await version(0)
    const { result, ms: whole } = await timeAfterOpen(args(0), cwd, root)
    expect(result.code, result.stderr).toBe(0)
    expect(await stored()).toBe(previous)

    const n = KILLS
    let killedMidway = 0
    for (let k = 1; k <= n; k++) {
      const next = await version(k)
      const killed = await runAndKill(args(k), cwd, root, delay(rand, 0, whole))
      const at = where('commit', k, killed)
      await expectIntact(cwd, at)
      // The ref moved entirely or not at all: the file reads back as one version, byte-exact.
      const now = await stored()
      expect([previous, next], at).toContain(now)
      const landed = now === next
      const top = (await history(cwd, 'main'))[0]!
      expect(top.message, at).toBe(landed ? `checkpoint v${k}` : `checkpoint v${k - 1}`)
      if (killed.killed && !landed) killedMidway++

      // Run it again: it completes (or finds nothing to do), and v{k} is committed once.
      const again = await runJson(args(k), { cwd })
      if (landed) expect(again.json.error?.code, at).toBe('ERR_NOTHING_TO_COMMIT')
      else expect(again.code, `${at}: ${again.stderr}`).toBe(0)
      expect(await stored(), at).toBe(next)
      const messages = (await history(cwd, 'main')).map((c) => c.message)
      expect(messages.filter((m) => m === `checkpoint v${k}`), at).toHaveLength(1)
      expect(messages).toHaveLength(k + 1)
      previous = next
    }
    await expectIntact(cwd, 'after every kill')
    // Kill points fall while the command holds the store; most land before its ref moves.
    expect(killedMidway, `only ${killedMidway} of ${n} kills landed before the commit finished`).toBeGreaterThan(0)
  })
})

describe('killed ingest', () => {
  it(`of JSON Lines in batches: fsck clean, whole batches only, the re-run skips them and adds the rest once (seed ${SEED})`, { timeout: TIMEOUT }, async () => {
    const rand = randomFor('ingest')
    const cwd = join(dir, 'ingest')
    const root = join(cwd, '.pedigree')
    expect((await runCli(['init', cwd], { cwd: dir })).code).toBe(0)
    const LINES = 3000
    const BATCH = 150
    const BATCHES = LINES / BATCH
    const input = async (k: number): Promise<string> => {
      const file = join(cwd, `tasks-${k}.jsonl`)
      const lines: string[] = []
      for (let i = 0; i < LINES; i++) lines.push(JSON.stringify({ task_id: i, workflow_id: `wf-${k}`, loss: (i % 97) / 97, site: 'aps' }))
      await writeFile(file, lines.join('\n') + '\n')
      return file
    }
    const args = (k: number, file: string): string[] => ['ingest', '-b', 'main', '-m', `ingest-${k}`, '--path-template', 'tasks/{workflow_id}/{task_id}.json', '--batch', String(BATCH), file]
    /** The batches of input k in the history (oldest first), and its records in the tree. */
    const landed = async (k: number): Promise<{ batches: string[]; records: number }> => ({
      batches: (await history(cwd, 'main')).map((c) => c.message).filter((m) => m.startsWith(`ingest-${k}:`)).reverse(),
      records: (await paths(cwd, 'main', `tasks/wf-${k}/`)).length,
    })
    const batchMessages = (k: number, count: number): string[] =>
      Array.from({ length: count }, (_, b) => `ingest-${k}: ${BATCH} records (lines ${b * BATCH + 1}–${(b + 1) * BATCH})`)

    const { result: first, ms: whole } = await timeAfterOpen(args(0, await input(0)), cwd, root)
    expect(first.code, first.stderr).toBe(0)
    expect((await landed(0)).batches).toEqual(batchMessages(0, BATCHES))

    const n = KILLS
    let killedMidway = 0
    for (let k = 1; k <= n; k++) {
      const file = await input(k)
      const killed = await runAndKill(args(k, file), cwd, root, delay(rand, 0, whole))
      const at = where('ingest', k, killed)
      await expectIntact(cwd, at)
      // Each batch is one commit: what landed is a whole number of batches, in order.
      const done = await landed(k)
      expect(done.batches, at).toEqual(batchMessages(k, done.batches.length))
      expect(done.records, at).toBe(done.batches.length * BATCH)
      if (killed.killed && done.batches.length < BATCHES) killedMidway++

      // The same ingest again resumes: the committed batches are skipped (and said to be), the rest added once.
      const again = await runJson<{ records: number; commits: unknown[]; skipped: { records: number }[] }>(args(k, file), { cwd })
      expect(again.code, `${at}: ${again.stderr}`).toBe(0)
      expect(again.json.skipped, at).toHaveLength(done.batches.length)
      expect(again.json.commits, at).toHaveLength(BATCHES - done.batches.length)
      expect(again.json.records, at).toBe((BATCHES - done.batches.length) * BATCH)
      const after = await landed(k)
      expect(after.batches, at).toEqual(batchMessages(k, BATCHES))
      expect(after.records, at).toBe(LINES)
    }
    await expectIntact(cwd, 'after every kill')
    expect(killedMidway, `only ${killedMidway} of ${n} kills landed before the ingest finished`).toBeGreaterThan(0)
  })

  it('run twice without a crash: the second run commits nothing and says the batches were skipped', { timeout: 60_000 }, async () => {
    const cwd = join(dir, 'twice')
    expect((await runCli(['init', cwd], { cwd: dir })).code).toBe(0)
    const file = join(cwd, 'tasks.jsonl')
    await writeFile(file, Array.from({ length: 25 }, (_, i) => JSON.stringify({ task_id: i, loss: i / 25 })).join('\n') + '\n')
    const args = ['ingest', '--path-template', 'tasks/{task_id}.json', '--batch', '10', file]
    const first = await runCli(args, { cwd })
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toContain('ingested 25 records from 25 lines in 3 commit(s) on main')
    const before = await runCli(['reflog', 'main', '--json'], { cwd })
    const second = await runCli(args, { cwd })
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).toContain('ingested 0 records from 25 lines in 0 commit(s) on main')
    expect(second.stdout).toContain('skipped lines 1–25 (25 records in 3 commit(s)): main has them from an earlier ingest of this input')
    expect((await runCli(['reflog', 'main', '--json'], { cwd })).stdout).toBe(before.stdout)
    // A changed record in the last batch: only that batch commits.
    await writeFile(file, Array.from({ length: 25 }, (_, i) => JSON.stringify({ task_id: i, loss: i === 24 ? 0 : i / 25 })).join('\n') + '\n')
    const third = await runJson<{ commits: { firstLine: number }[]; skipped: unknown[] }>(args, { cwd })
    expect(third.code).toBe(0)
    expect(third.json.commits.map((c) => c.firstLine)).toEqual([21])
    expect(third.json.skipped).toHaveLength(2)
    expect(await history(cwd, 'main')).toHaveLength(4)
  })
})
