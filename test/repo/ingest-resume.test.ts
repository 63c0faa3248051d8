import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { cidToString, type CID } from '../../src/codec/cid.js'
import type { IngestOptions } from '../../src/repo/ingest.js'
import { levelRepo, type RepoFixture } from './fixture.js'

// A re-run ingest resumes after what an earlier run of the same input committed: nothing is
// committed twice, and no path goes back to an older value (a task sent running, then done).

const author = { name: 'flow' }
const options: IngestOptions = { ref: 'main', author, pathTemplate: 'tasks/{id}.json' }

/** The reviewer's input: t1 running, t2 running, t1 done, t1 done, t3 done. */
const AGAIN = [
  { id: 't1', status: 'running' },
  { id: 't2', status: 'running' },
  { id: 't1', status: 'done' },
  { id: 't1', status: 'done' },
  { id: 't3', status: 'done' },
].map((r) => JSON.stringify(r))

async function* linesOf(lines: string[]): AsyncGenerator<string> {
  yield* lines
}
/** AGAIN with line 4 cut short: a run of it stops there, having committed what came before. */
const BROKEN = [...AGAIN.slice(0, 3), '{"id":"t1","status":', ...AGAIN.slice(4)]

let fx: RepoFixture
beforeEach(async () => {
  fx = await levelRepo()
})
afterEach(async () => {
  await fx.cleanup()
})

const tip = async (ref = 'main'): Promise<string | undefined> => {
  const cid = await fx.repo.refs.get(ref)
  return cid ? cidToString(cid) : undefined
}
const statusAt = async (rev: string, id: string): Promise<unknown> => ((await fx.repo.show(`${rev}:tasks/${id}.json`)) as { value?: { status?: unknown } }).value?.status
/** Commits of `ref` newer than `since`, oldest first. */
async function commitsSince(ref: string, since: string | undefined): Promise<CID[]> {
  const out: CID[] = []
  for (let at = await fx.repo.refs.get(ref); at && cidToString(at) !== since; at = (await fx.repo.readCommit(at)).parents[0]) out.unshift(at)
  return out
}

describe('ingest run again', () => {
  it('on a ref that has the whole input: no commit, the tip unchanged, every line said to be skipped', async () => {
    const first = await fx.repo.ingest(linesOf(AGAIN), options)
    expect(first.commits.map((c) => [c.firstLine, c.lastLine])).toEqual([[1, 2], [3, 3], [4, 5]])
    const before = await tip()
    const again = await fx.repo.ingest(linesOf(AGAIN), options)
    expect(again.commits).toEqual([])
    expect(again.records).toBe(0)
    expect(again.skipped.map((s) => [s.reason, s.firstLine, s.lastLine, s.records])).toEqual([
      ['ingested', 1, 2, 2],
      ['ingested', 3, 3, 1],
      ['ingested', 4, 5, 2],
    ])
    expect(await tip()).toBe(before)
    expect(await statusAt('main', 't1')).toBe('done')
  })

  it('after an interruption: continues after the last commit, never putting a path back to an older value', async () => {
    // The first run stops at line 4 (fixed before the re-run), with lines 1–2 and 3 committed.
    await expect(fx.repo.ingest(linesOf(BROKEN), { ...options, batch: 1 })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    expect(await commitsSince('main', undefined)).toHaveLength(3)
    const before = await tip()
    const again = await fx.repo.ingest(linesOf(AGAIN), { ...options, batch: 1 })
    expect(again.skipped.map((s) => [s.reason, s.firstLine, s.lastLine])).toEqual([
      ['ingested', 1, 1],
      ['ingested', 2, 2],
      ['ingested', 3, 3],
      ['unchanged', 4, 4],
    ])
    // Line 4 (t1 done again) changes nothing; line 5 is committed.
    expect(again.commits.map((c) => [c.firstLine, c.lastLine])).toEqual([[5, 5]])
    // No commit of the re-run has t1 running again.
    for (const c of await commitsSince('main', before)) expect(await statusAt(cidToString(c), 't1')).toBe('done')
    expect(await statusAt('main', 't3')).toBe('done')
    // And a third run has nothing left to do.
    const third = await fx.repo.ingest(linesOf(AGAIN), { ...options, batch: 1 })
    expect(third.commits).toEqual([])
  })

  it('with lines appended since: only the new lines are committed', async () => {
    await fx.repo.ingest(linesOf(AGAIN), options)
    const grown = [...AGAIN, JSON.stringify({ id: 't2', status: 'done' })]
    const again = await fx.repo.ingest(linesOf(grown), options)
    expect(again.commits.map((c) => [c.firstLine, c.lastLine, c.records])).toEqual([[6, 6, 1]])
    expect(await statusAt('main', 't1')).toBe('done')
    expect(await statusAt('main', 't2')).toBe('done')
  })

  it('resumes though other writers and other inputs committed to the ref in between', async () => {
    await expect(fx.repo.ingest(linesOf(BROKEN), { ...options, batch: 1 })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    await fx.repo.ingest(linesOf(['{"id":"x1"}', '{"id":"x2"}']), { ...options, pathTemplate: 'other/{id}.json', batch: 1 })
    await fx.repo.commit({ ref: 'main', author, message: 'by hand', edits: [{ type: 'record', path: 'notes/a.json', value: { a: 1 } }] })
    const again = await fx.repo.ingest(linesOf(AGAIN), { ...options, batch: 1 })
    expect(again.skipped.filter((s) => s.reason === 'ingested').map((s) => s.lastLine)).toEqual([1, 2, 3])
    expect(again.commits.map((c) => c.firstLine)).toEqual([5])
    expect(await statusAt('main', 't1')).toBe('done')
  })

  it('an input that differs from the earlier run is committed from the first batch that differs', async () => {
    await fx.repo.ingest(linesOf(AGAIN), options)
    const changed = [...AGAIN.slice(0, 4), JSON.stringify({ id: 't3', status: 'failed' })]
    const again = await fx.repo.ingest(linesOf(changed), options)
    expect(again.skipped.map((s) => s.lastLine)).toEqual([2, 3])
    expect(again.commits.map((c) => [c.firstLine, c.lastLine])).toEqual([[4, 5]])
    expect(await statusAt('main', 't3')).toBe('failed')
    // The same lines under another path template are another ingest.
    const elsewhere = await fx.repo.ingest(linesOf(AGAIN), { ...options, pathTemplate: 'moved/{id}.json' })
    expect(elsewhere.commits).toHaveLength(3)
  })

  it('a batch the ref already holds unchanged is still reported as such, and a re-run skips it as ingested', async () => {
    await fx.repo.commit({ ref: 'main', author, message: 'by hand', edits: [{ type: 'record', path: 'tasks/t1.json', value: { id: 't1', status: 'running' } }] })
    const lines = ['{"id":"t1","status":"running"}', '{"id":"t1","status":"done"}']
    const first = await fx.repo.ingest(linesOf(lines), options)
    expect(first.skipped).toEqual([{ reason: 'unchanged', records: 1, firstLine: 1, lastLine: 1 }])
    expect(first.commits.map((c) => c.firstLine)).toEqual([2])
    const before = await tip()
    // The commit of line 2 covers line 1 too: the re-run does not put t1 back to running.
    const again = await fx.repo.ingest(linesOf(lines), options)
    expect(again.commits).toEqual([])
    expect(again.skipped).toEqual([{ reason: 'ingested', records: 1, firstLine: 1, lastLine: 2 }])
    expect(await tip()).toBe(before)
  })
})
