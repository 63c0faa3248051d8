import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pseudoRandom } from '../helpers/random.js'
import { removeDir, runCli, runJson, tempDir } from '../cli/run-cli.js'
import { SEED, delay, expectIntact, iterations, randomFor, runAndKill, timeAfterOpen, where } from './harness.js'

/**
 * push to a path remote, pull and fetch from one, and bundle import are killed with SIGKILL at random
 * points. After each kill the stores open at once and fsck clean, and every ref holds either
 * what it held before or the new head (never a commit whose DAG is incomplete). The same
 * command run again completes, and each ref moved exactly once per round (its reflog).
 *
 * One source store grows each round (a file of fresh bytes and a few hundred small files, one
 * commit); then its push to B, C's pull from it, E's fetch from it, and D's import of its
 * bundle are each killed once and run again.
 */

const FILE = 8 * 1024 * 1024
const SMALL_FILES = 300
const ROUNDS = iterations(3)

let dir: string

beforeAll(async () => {
  dir = await tempDir('crash-sync')
}, 30_000)

afterAll(() => removeDir(dir))

/** A fresh store in `dir/name`. */
async function store(name: string): Promise<{ cwd: string; root: string }> {
  const cwd = join(dir, name)
  const r = await runCli(['init', cwd], { cwd: dir })
  expect(r.code, r.stderr).toBe(0)
  return { cwd, root: join(cwd, '.pedigree') }
}

/** A ref's values, oldest first, from its reflog (its current value is the last). */
async function moves(cwd: string, ref: string): Promise<string[]> {
  const r = await runJson<{ new: string | null }[]>(['reflog', ref], { cwd })
  expect(r.code, r.stderr).toBe(0)
  return r.json.map((l) => l.new!).reverse()
}

/** One transfer: its command, where it runs, and the store whose opening starts its kill clock. */
interface Transfer {
  label: string
  cwd: string
  killRoot: string
  args: (round: number) => string[]
  /** Run before the transfer each round (not killed). */
  prepare?: (round: number) => Promise<void>
  /** After the kill: every store it touched is intact, and its refs hold `before` or `head`. */
  check: (head: string, before: string | undefined, at: string) => Promise<void>
  /** The store, and its ref, that must have moved once per round, to each head in turn. */
  target: string
  targetRef: string
}

describe('killed sync', () => {
  it(`push, pull, fetch and bundle import between path stores: fsck clean after every kill, refs old or new, re-runs complete, each ref moved once a round (seed ${SEED})`, { timeout: 60_000 + 65_000 * ROUNDS }, async () => {
    const a = await store('a')
    const b = await store('b')
    const c = await store('c')
    const d = await store('d')
    const e = await store('e')
    expect((await runCli(['remote', 'add', 'origin', b.root], { cwd: a.cwd })).code).toBe(0)
    expect((await runCli(['remote', 'add', 'origin', a.root], { cwd: c.cwd })).code).toBe(0)
    expect((await runCli(['remote', 'add', 'origin', a.root], { cwd: e.cwd })).code).toBe(0)
    const bundle = (k: number): string => join(dir, `round-${k}.car`)

    const transfers: Transfer[] = [
      {
        label: 'push',
        cwd: a.cwd,
        killRoot: a.root,
        args: () => ['push', 'origin', 'main'],
        target: b.cwd,
        targetRef: 'main',
        check: async (head, before, at) => {
          const local = await expectIntact(a.cwd, `${at}, pushing store`)
          const remote = await expectIntact(b.cwd, `${at}, remote store`)
          expect([before, head], at).toContain(remote.main)
          expect([before, head], at).toContain(local['remotes/origin/main'])
          expect(local.main, at).toBe(head)
        },
      },
      {
        label: 'pull',
        cwd: c.cwd,
        killRoot: c.root,
        args: () => ['pull', 'origin', 'main'],
        target: c.cwd,
        targetRef: 'main',
        check: async (head, before, at) => {
          const refs = await expectIntact(c.cwd, `${at}, pulling store`)
          expect([before, head], at).toContain(refs.main)
          expect([before, head], at).toContain(refs['remotes/origin/main'])
        },
      },
      {
        label: 'fetch',
        cwd: e.cwd,
        killRoot: e.root,
        args: () => ['fetch', 'origin'],
        target: e.cwd,
        targetRef: 'remotes/origin/main',
        check: async (head, before, at) => {
          const refs = await expectIntact(e.cwd, `${at}, fetching store`)
          expect([before, head], at).toContain(refs['remotes/origin/main'])
          expect(refs.main, at).toBeUndefined()
        },
      },
      {
        label: 'bundle import',
        cwd: d.cwd,
        killRoot: d.root,
        args: (k) => ['bundle', 'import', bundle(k)],
        prepare: async (k) => {
          const r = await runCli(['bundle', 'create', bundle(k), 'main'], { cwd: a.cwd })
          expect(r.code, r.stderr).toBe(0)
        },
        target: d.cwd,
        targetRef: 'main',
        check: async (head, before, at) => {
          const refs = await expectIntact(d.cwd, `${at}, importing store`)
          expect([before, head], at).toContain(refs.main)
          expect([before, head], at).toContain(refs['remotes/bundle/main'])
        },
      },
    ]

    const heads: string[] = []
    /** New work in the source store, one commit; its CID. */
    const grow = async (k: number): Promise<string> => {
      const work = join(a.cwd, `work-${k}`)
      await mkdir(join(work, 'tasks'), { recursive: true })
      await writeFile(join(work, 'weights.bin'), pseudoRandom(SEED + 7919 * k + 1, FILE))
      for (let i = 0; i < SMALL_FILES; i++) await writeFile(join(work, 'tasks', `${i}.json`), JSON.stringify({ task_id: i, round: k, loss: (i % 89) / 89 }))
      const r = await runJson<{ cid: string }>(['commit', '-m', `round ${k}`, `rounds/${k}=${work}`], { cwd: a.cwd })
      expect(r.code, r.stderr).toBe(0)
      heads.push(r.json.cid)
      return r.json.cid
    }
    /** After a transfer completed: its target ref moved once per round so far, to each head in turn. */
    const expectMovedOncePerRound = async (t: Transfer, at: string): Promise<void> => {
      expect(await moves(t.target, t.targetRef), `${at}: ${t.targetRef} of the ${t.label} target`).toEqual(heads)
    }

    // Round 0, not killed: how long each transfer holds its store sets the range of its kill points.
    await grow(0)
    const whole = new Map<string, number>()
    for (const t of transfers) {
      await t.prepare?.(0)
      const { result, ms } = await timeAfterOpen(t.args(0), t.cwd, t.killRoot)
      expect(result.code, `${t.label}: ${result.stderr}`).toBe(0)
      whole.set(t.label, ms)
      await expectMovedOncePerRound(t, `${t.label} round 0`)
    }

    const rand = randomFor('sync')
    const killedMidway = new Map<string, number>(transfers.map((t) => [t.label, 0]))
    const n = ROUNDS
    for (let k = 1; k <= n; k++) {
      const before = heads.at(-1)
      const head = await grow(k)
      for (const t of transfers) {
        await t.prepare?.(k)
        // Round 0 ran on a colder store: later rounds tend to be quicker, so kill within 80% of its time.
        const killed = await runAndKill(t.args(k), t.cwd, t.killRoot, delay(rand, 0, 0.8 * whole.get(t.label)!))
        const at = where(t.label, k, killed)
        await t.check(head, before, at)
        if (killed.killed) killedMidway.set(t.label, killedMidway.get(t.label)! + 1)
        const again = await runCli(t.args(k), { cwd: t.cwd })
        expect(again.code, `${at}, the re-run: ${again.stderr}`).toBe(0)
        await expectMovedOncePerRound(t, at)
      }
    }
    for (const s of [a, b, c, d, e]) await expectIntact(s.cwd, `${s.cwd} after every round`)
    // Kills that land after a transfer finished test nothing; most must land inside one.
    const inside = [...killedMidway.values()].reduce((x, y) => x + y, 0)
    expect(inside, `only ${inside} of ${n * transfers.length} kills landed before the transfer finished: ${JSON.stringify([...killedMidway])}`).toBeGreaterThan(n)
  })
})
