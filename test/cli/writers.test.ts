import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, runCli, runJson, tempDir } from './run-cli.js'

/**
 * Many workflow processes commit to one ref of one store at the same time, through the CLI.
 * LevelDB admits one process at a time: each command waits for the store's lock, then commits
 * on top of whatever the ref holds. Every command that exits 0 must have its commit and its
 * record in the history; any that gives up must say so (a locked or conflict error) and leave
 * nothing behind. Nothing is lost silently.
 */

interface Outcome {
  writer: number
  seq: number
  exit: number | null
  cid?: string
  error?: { code: string; message: string }
  stderr: string
}

interface LogEntry {
  cid: string
  message: string
  parents: { '/': string }[]
}

let dir: string

beforeAll(async () => {
  dir = await tempDir('writers')
}, 30_000)

afterAll(() => removeDir(dir))

/** `writers` processes at once, each running `commits` `pedigree commit`s of one new record in turn. */
async function race(cwd: string, ref: string, writers: number, commits: number, env: Record<string, string>): Promise<Outcome[]> {
  const outcomes: Outcome[] = []
  await Promise.all(
    Array.from({ length: writers }, async (_, writer) => {
      for (let seq = 0; seq < commits; seq++) {
        const r = await runCli(
          ['commit', '-b', ref, '-m', `writer ${writer} commit ${seq}`, '--record', `writers/${writer}/${seq}.json=-`, '--json'],
          { cwd, env, input: JSON.stringify({ writer, seq, site: 'aps' }), timeoutMs: 170_000 },
        )
        const json = r.stdout ? (JSON.parse(r.stdout) as { cid?: string; error?: { code: string; message: string } }) : {}
        outcomes.push({ writer, seq, exit: r.code, cid: json.cid, error: json.error, stderr: r.stderr })
      }
    }),
  )
  return outcomes
}

/** What a user checks afterwards: the ref's history, the records in its tree, its reflog, fsck. */
async function inspect(cwd: string, ref: string): Promise<{ history: LogEntry[]; paths: Set<string>; reflog: unknown[]; fsck: number | null }> {
  const log = await runJson<LogEntry[]>(['log', ref], { cwd })
  expect(log.code, log.stderr).toBe(0)
  const ls = await runJson<{ path: string }[]>(['ls', ref, 'writers/'], { cwd })
  expect(ls.code, ls.stderr).toBe(0)
  const reflog = await runJson<unknown[]>(['reflog', ref], { cwd })
  expect(reflog.code, reflog.stderr).toBe(0)
  const fsck = await runCli(['fsck'], { cwd })
  return { history: log.json, paths: new Set(ls.json.map((e) => e.path)), reflog: reflog.json, fsck: fsck.code }
}

/** Every command that exited 0 is in the history with its record; every other one failed loudly and left nothing. */
function expectNoneLost(outcomes: Outcome[], found: Awaited<ReturnType<typeof inspect>>, before: number): void {
  const cids = new Set(found.history.map((c) => c.cid))
  const ok = outcomes.filter((o) => o.exit === 0)
  for (const o of ok) {
    expect(o.cid, `writer ${o.writer} commit ${o.seq} exited 0 without a CID`).toBeTruthy()
    expect(cids.has(o.cid!), `writer ${o.writer} commit ${o.seq} exited 0 but ${o.cid} is not in the history`).toBe(true)
    expect(found.paths.has(`writers/${o.writer}/${o.seq}.json`), `record of writer ${o.writer} commit ${o.seq} is missing`).toBe(true)
  }
  for (const o of outcomes.filter((x) => x.exit !== 0)) {
    // A clear refusal: locked (exit 6) or a conflict that exhausted its retries (exit 4).
    expect([4, 6], `writer ${o.writer} commit ${o.seq}: ${o.stderr}`).toContain(o.exit)
    expect(['ERR_LOCKED', 'ERR_CONFLICT']).toContain(o.error?.code)
    expect(o.error!.message.length).toBeGreaterThan(0)
    expect(found.paths.has(`writers/${o.writer}/${o.seq}.json`), `writer ${o.writer} commit ${o.seq} failed but its record landed`).toBe(false)
  }
  // One commit, one record and one reflog line per success: none duplicated, none extra.
  expect(found.history.length - before).toBe(ok.length)
  expect(new Set(found.history.map((c) => c.message)).size).toBe(found.history.length)
  expect(found.paths.size).toBe(ok.length)
  expect(found.reflog.length - before).toBe(ok.length)
  // A straight line of history: each commit's parent is the next one down.
  for (let i = 0; i + 1 < found.history.length; i++) expect(found.history[i]!.parents.map((p) => p['/'])).toEqual([found.history[i + 1]!.cid])
  expect(found.fsck).toBe(0)
}

describe('many writers on one store', () => {
  it('16 processes x 5 commits to one ref: all 80 commits and records end in its history', { timeout: 180_000 }, async () => {
    const cwd = `${dir}/all`
    expect((await runCli(['init', cwd], { cwd: dir })).code).toBe(0)
    // A generous lock timeout: on two busy cores each command may wait for the other 15 several times.
    const outcomes = await race(cwd, 'main', 16, 5, { PEDIGREE_LOCK_TIMEOUT: '150' })
    const found = await inspect(cwd, 'main')
    expectNoneLost(outcomes, found, 0)
    const failed = outcomes.filter((o) => o.exit !== 0)
    expect(failed.map((o) => `writer ${o.writer} commit ${o.seq}: ${o.stderr}`)).toEqual([])
    expect(found.history).toHaveLength(80)
  })

  it('with a lock timeout too short to wait for everyone, those that give up exit 6 and leave nothing; the rest all land', { timeout: 120_000 }, async () => {
    const cwd = `${dir}/short`
    expect((await runCli(['init', cwd], { cwd: dir })).code).toBe(0)
    expect((await runCli(['commit', '-b', 'main', '-m', 'start', '--record', 'start.json=-'], { cwd, input: '{"n": 0}' })).code).toBe(0)
    const outcomes = await race(cwd, 'main', 8, 2, { PEDIGREE_LOCK_TIMEOUT: '0.2' })
    const found = await inspect(cwd, 'main')
    expectNoneLost(outcomes, found, 1)
    expect(found.history.at(-1)!.message).toBe('start')
    expect(outcomes.filter((o) => o.exit === 0).length).toBeGreaterThan(0)
  })
})
