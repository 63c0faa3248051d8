import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CID } from '../../src/codec/cid.js'
import { cidToString } from '../../src/codec/cid.js'
import { InvalidInputError, NotFoundError } from '../../src/errors.js'
import { query, type QueryOptions, type QueryRow } from '../../src/repo/query.js'
import { Repository } from '../../src/repo/repository.js'
import { BACKENDS, collect, commitAt, countingBlocks, record, text, type RepoFixture } from './fixture.js'

const CAMPAIGNS = ['c1', 'c2', 'c3']
const WORKFLOWS = ['w1', 'w2', 'w3', 'w4']
const N = 200

interface Task {
  path: string
  value: {
    type: 'task'
    task_id: number
    campaign_id: string
    workflow_id: string
    status: string
    metrics: { loss: number; acc: number; epochs: number }
    config: { lr: number }
    used: CID
  }
}

/** 200 tasks over 3 campaigns and 4 workflows; losses are all different ((i·73) mod 200 is a permutation). */
function tasks(datasets: CID[]): Task[] {
  return Array.from({ length: N }, (_, i) => ({
    path: `tasks/${String(i).padStart(3, '0')}.json`,
    value: {
      type: 'task',
      task_id: i,
      campaign_id: CAMPAIGNS[i % 3]!,
      workflow_id: WORKFLOWS[i % 4]!,
      status: i % 10 === 0 ? 'failed' : 'done',
      metrics: { loss: ((i * 73) % 200) / 1000 + 0.001, acc: 1 - ((i * 73) % 200) / 1000, epochs: 1 + (i % 5) },
      config: { lr: [0.1, 0.01, 0.001][i % 3]! },
      used: datasets[i % datasets.length]!,
    },
  }))
}

const paths = (rows: QueryRow[]): string[] => rows.map((r) => r._path as string)
const run = (repo: Repository, options: QueryOptions, rev = 'main'): Promise<QueryRow[]> => collect(query(repo, rev, options))

describe.each(BACKENDS)('query ($name)', ({ open }) => {
  let fx: RepoFixture
  let repo: Repository
  let data: Task[]
  let datasets: CID[]
  let taskCids: Map<string, string>

  beforeAll(async () => {
    fx = await open()
    repo = fx.repo
    await commitAt(repo, 'main', 1, [0, 1, 2].map((d) => record(`datasets/d${d}.json`, { type: 'dataset', name: `scan-${d}`, shots: 100 * (d + 1) })))
    datasets = await Promise.all([0, 1, 2].map(async (d) => (await repo.resolveEntry(`main:datasets/d${d}.json`)).entry.cid))
    data = tasks(datasets)
    await commitAt(repo, 'main', 2, [
      ...data.map((t) => record(t.path, t.value)),
      // Files beside the records, also under tasks/: a query never sees them.
      text('tasks/README.txt', 'campaign_id c1 status done\n'),
      text('tasks/zz-notes.json', '{"type": "task", "campaign_id": "c1"}'),
    ])
    // One change after, so that an older revision differs.
    await commitAt(repo, 'main', 3, [record('tasks/000.json', { ...data[0]!.value, status: 'rerun' })])
    taskCids = new Map()
    for await (const e of repo.ls('main', { prefix: 'tasks/' })) taskCids.set(e.path, cidToString(e.cid))
  })
  afterAll(async () => {
    await fx.cleanup()
  })

  it('filters with $lt, $in and $and on nested dotted paths', async () => {
    const rows = await run(repo, {
      filter: { $and: [{ 'metrics.loss': { $lt: 0.05 } }, { campaign_id: { $in: ['c1', 'c3'] } }, { 'config.lr': { $gte: 0.001 } }] },
    })
    const expected = data.filter((t) => t.value.metrics.loss < 0.05 && ['c1', 'c3'].includes(t.value.campaign_id)).map((t) => t.path)
    expect(expected.length).toBeGreaterThan(10)
    expect(expected.length).toBeLessThan(50)
    expect(paths(rows)).toEqual(expected) // path order
    // Each row is the record, with where it is and what it is.
    const one = rows[0]!
    const source = data.find((t) => t.path === one._path)!.value
    expect(one).toMatchObject({ _path: one._path, _cid: taskCids.get(one._path as string), campaign_id: source.campaign_id, metrics: source.metrics })

    const nested = await run(repo, { filter: { 'metrics.epochs': { $in: [2, 4] }, workflow_id: 'w2', status: { $ne: 'failed' } } })
    expect(paths(nested)).toEqual(
      data.filter((t) => [2, 4].includes(t.value.metrics.epochs) && t.value.workflow_id === 'w2' && t.value.status !== 'failed').map((t) => t.path),
    )
  })

  it('evaluates the other query operators and $expr alike (plain filters load only the query operators)', async () => {
    // tasks/000 was re-run (its status is 'rerun' at main).
    const failedLowLoss = data.filter((t) => t.value.status === 'failed' && t.value.metrics.loss < 0.1 && t.value.task_id !== 0).map((t) => t.path)
    expect(paths(await run(repo, { filter: { status: { $regex: '^fail' }, 'metrics.loss': { $not: { $gte: 0.1 } } } }))).toEqual(failedLowLoss)
    expect(paths(await run(repo, { filter: { $nor: [{ status: 'done' }], 'metrics.loss': { $lt: 0.1 } } }))).toEqual(['tasks/000.json', ...failedLowLoss])
    // $expr compares two fields of one record: it needs mingo's expression operators.
    const accAboveLr = data.filter((t) => t.value.metrics.acc * t.value.config.lr > 0.09).map((t) => t.path)
    expect(accAboveLr.length).toBeGreaterThan(0)
    expect(paths(await run(repo, { filter: { $expr: { $gt: [{ $multiply: ['$metrics.acc', '$config.lr'] }, 0.09] } } }))).toEqual(accAboveLr)
  })

  it('loads the operators each filter uses: every family gives what mingo with all of them gives', async () => {
    const filters: Record<string, unknown>[] = [
      { 'metrics.loss': { $gte: 0.05, $lte: 0.2 }, status: { $nin: ['done'] } }, // comparison
      { $or: [{ status: 'failed' }, { 'metrics.acc': { $gt: 0.9 } }] }, // logical with comparison
      { 'config.lr': { $exists: true, $type: 'number' } }, // element
      { task_id: { $mod: [7, 3] } }, // evaluation, alone
      { status: { $regex: '^DO', $options: 'i' } }, // evaluation with $options
      { tags: { $size: 2 } }, // array
      { task_id: { $bitsAllSet: [0, 2] } }, // bitwise
      { task_id: { $bitsAnyClear: 1 }, 'metrics.loss': { $not: { $lt: 0.5 } } }, // bitwise, logical, comparison
    ]
    // The oracle: mingo with every operator, on the rows the query gives without a filter.
    const all = (await import('mingo')).Query
    const rows = await run(repo, {})
    for (const filter of filters) {
      expect(paths(await run(repo, { filter })), JSON.stringify(filter)).toEqual(paths(rows.filter((r) => new all(filter).test(r))))
    }
  })

  it('projects the named fields (dotted paths keep their nesting), always with _path', async () => {
    const rows = await run(repo, { filter: { task_id: { $in: [5, 6] } }, project: ['campaign_id', 'metrics.loss'] })
    expect(rows).toEqual(
      [5, 6].map((i) => ({ _path: data[i]!.path, campaign_id: data[i]!.value.campaign_id, metrics: { loss: data[i]!.value.metrics.loss } })),
    )
    const excluded = await run(repo, { filter: { task_id: 7 }, project: { _path: 0, _cid: 0, metrics: 0, config: 0, used: 0 } })
    expect(excluded).toEqual([{ type: 'task', task_id: 7, campaign_id: 'c2', workflow_id: 'w4', status: 'done' }])
  })

  it('sorts descending with a limit: exactly the top 10 by loss, in order', async () => {
    const top = await run(repo, { filter: { type: 'task' }, sort: '-metrics.loss', limit: 10, project: ['metrics.loss'] })
    const expected = [...data].sort((a, b) => b.value.metrics.loss - a.value.metrics.loss).slice(0, 10)
    expect(paths(top)).toEqual(expected.map((t) => t.path))
    expect(top.map((r) => (r.metrics as { loss: number }).loss)).toEqual(expected.map((t) => t.value.metrics.loss))
    // Two keys, ascending, no limit: ties on the first key are ordered by the second.
    const all = await run(repo, { prefix: 'tasks/', sort: { 'metrics.epochs': 1, 'metrics.loss': -1 } })
    const byTwo = [...data].sort((a, b) => a.value.metrics.epochs - b.value.metrics.epochs || b.value.metrics.loss - a.value.metrics.loss)
    expect(paths(all)).toEqual(byTwo.map((t) => t.path))
  })

  it('aggregates: $group by campaign with $avg gives the right numbers', async () => {
    const groups = await run(repo, {
      filter: { type: 'task' },
      aggregate: [{ $group: { _id: '$campaign_id', loss: { $avg: '$metrics.loss' }, n: { $sum: 1 } } }],
      sort: '_id',
    })
    expect(groups.map((g) => g._id)).toEqual(CAMPAIGNS)
    for (const g of groups) {
      const mine = data.filter((t) => t.value.campaign_id === g._id)
      expect(g.n).toBe(mine.length)
      expect(g.loss as number).toBeCloseTo(mine.reduce((s, t) => s + t.value.metrics.loss, 0) / mine.length, 12)
    }
    // The filter applies before the pipeline; limit after it.
    const failed = await run(repo, { filter: { status: 'failed' }, aggregate: [{ $group: { _id: '$status', n: { $sum: 1 } } }] })
    expect(failed).toEqual([{ _id: 'failed', n: data.filter((t) => t.path !== 'tasks/000.json' && t.value.status === 'failed').length }])
    expect(await run(repo, { aggregate: [{ $group: { _id: '$workflow_id' } }], sort: '-_id', limit: 2 })).toEqual([{ _id: 'w4' }, { _id: 'w3' }])
  })

  it('shows links as CID strings, and filters on them as strings or as DAG-JSON links', async () => {
    const d1 = cidToString(datasets[1]!)
    const row = (await run(repo, { filter: { task_id: 4 } }))[0]!
    expect(row.used).toBe(d1)
    const expected = data.filter((t) => t.value.used.equals(datasets[1]!)).map((t) => t.path)
    expect(paths(await run(repo, { filter: { used: d1 } }))).toEqual(expected)
    expect(paths(await run(repo, { filter: { used: { '/': d1 } } }))).toEqual(expected)
    expect(paths(await run(repo, { filter: { used: { $in: [{ '/': d1 }] } } }))).toEqual(expected)
  })

  it('restricts to the prefix, and never returns files', async () => {
    const all = await run(repo, {})
    expect(all).toHaveLength(N + 3)
    expect(paths(all)).not.toContain('tasks/README.txt')
    expect(paths(all)).not.toContain('tasks/zz-notes.json')
    const ds = await run(repo, { prefix: 'datasets/' })
    expect(paths(ds)).toEqual(['datasets/d0.json', 'datasets/d1.json', 'datasets/d2.json'])
    expect(ds.map((r) => r.name)).toEqual(['scan-0', 'scan-1', 'scan-2'])
    expect(await run(repo, { prefix: 'tasks/', filter: { type: 'dataset' } })).toEqual([])
    expect(paths(await run(repo, { prefix: 'tasks/01' }))).toEqual(data.slice(10, 20).map((t) => t.path))
  })

  it('reads the revision asked for', async () => {
    expect((await run(repo, { filter: { task_id: 0 }, project: ['status'] }))[0]!.status).toBe('rerun')
    expect((await run(repo, { filter: { task_id: 0 }, project: ['status'] }, 'main~1'))[0]!.status).toBe('failed')
    expect(await run(repo, {}, 'main~2')).toHaveLength(3)
  })

  it('rejects bad input with InvalidInputError naming the problem, and an unknown revision with NotFoundError', async () => {
    const err = await run(repo, { filter: { a: { $bogus: 1 } } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidInputError)
    expect((err as InvalidInputError).message).toContain('$bogus')
    expect((err as InvalidInputError).data).toMatchObject({ option: 'filter', operator: '$bogus' })
    expect((err as Error).cause).toBeInstanceOf(Error)

    const stage = await run(repo, { aggregate: [{ $bogus: {} }] }).catch((e: unknown) => e)
    expect(stage).toBeInstanceOf(InvalidInputError)
    expect((stage as Error).message).toMatch(/aggregation pipeline.*\$bogus/)
    const accumulator = await run(repo, { aggregate: [{ $group: { _id: '$campaign_id', x: { $nope: '$a' } } }] }).catch((e: unknown) => e)
    expect(accumulator).toBeInstanceOf(InvalidInputError)
    expect((accumulator as Error).message).toContain('$nope')
    // Scripts are data here, never code.
    await expect(run(repo, { filter: { $where: 'true' } })).rejects.toThrow(/\$where/)

    await expect(run(repo, { sort: '-' })).rejects.toThrow(/bad sort/)
    await expect(run(repo, { sort: 'a,,b' })).rejects.toBeInstanceOf(InvalidInputError)
    await expect(run(repo, { sort: { loss: 2 as 1 } })).rejects.toThrow(/'loss' must map to 1 or -1/)
    await expect(run(repo, { limit: -1 })).rejects.toThrow(/limit must be a whole number/)
    await expect(run(repo, { limit: 1.5 })).rejects.toBeInstanceOf(InvalidInputError)
    await expect(run(repo, { project: { a: 1, b: 0 } })).rejects.toThrow(/invalid projection/)
    await expect(run(repo, { filter: [] as unknown as Record<string, unknown> })).rejects.toThrow(/must be a JSON object/)
    await expect(run(repo, {}, 'nope')).rejects.toBeInstanceOf(NotFoundError)
    expect(await run(repo, { limit: 0 })).toEqual([])
    await expect(run(repo, { limit: 0 }, 'nope')).rejects.toBeInstanceOf(NotFoundError)
  })
})

describe('query on a larger tree (memory)', () => {
  let fx: RepoFixture
  let repo: Repository
  const M = 5000
  const loss = (i: number): number => ((i * 7919) % M) / M

  beforeAll(async () => {
    fx = await BACKENDS[1].open()
    repo = fx.repo
    await commitAt(
      repo,
      'main',
      1,
      Array.from({ length: M }, (_, i) => record(`r/${String(i).padStart(5, '0')}.json`, { i, loss: loss(i), group: i % 7 })),
    )
  })
  afterAll(async () => {
    await fx.cleanup()
  })

  it('keeps the top N across many chunks: the same rows as a full sort', async () => {
    const expected = Array.from({ length: M }, (_, i) => i)
      .filter((i) => i % 7 !== 3)
      .sort((a, b) => loss(a) - loss(b))
    for (const limit of [1, 25, 3000]) {
      const rows = await run(repo, { filter: { group: { $ne: 3 } }, sort: 'loss', limit })
      expect(rows.map((r) => r.i)).toEqual(expected.slice(0, limit))
    }
    const everything = await run(repo, { filter: { group: { $ne: 3 } }, sort: 'loss' })
    expect(everything.map((r) => r.i)).toEqual(expected)
    // Many ties on the first key: the top N is the head of the full sort, ties in path order.
    const full = (await run(repo, { sort: '-group' })).map((r) => r.i)
    expect(full.slice(0, 3)).toEqual([6, 13, 20])
    for (const limit of [10, 2500]) expect((await run(repo, { sort: '-group', limit })).map((r) => r.i)).toEqual(full.slice(0, limit))
    const two = (await run(repo, { sort: 'group,-loss' })).map((r) => r.i)
    expect((await run(repo, { sort: 'group,-loss', limit: 900 })).map((r) => r.i)).toEqual(two.slice(0, 900))
  })

  it('returns rows in path order when a filter reads large windows in CID order', async () => {
    const all = (await run(repo, {})).map((r) => r.i as number)
    expect(all).toEqual(Array.from({ length: M }, (_, i) => i))
    // Judged from the bytes ($gte on a number), by mingo ($mod), and both.
    expect((await run(repo, { filter: { loss: { $gte: 0 } } })).map((r) => r.i)).toEqual(all)
    expect((await run(repo, { filter: { i: { $mod: [3, 1] } } })).map((r) => r.i)).toEqual(all.filter((i) => i % 3 === 1))
    const rows = await run(repo, { filter: { loss: { $lt: 0.5 }, i: { $mod: [2, 0] } } })
    expect(rows.map((r) => r.i)).toEqual(all.filter((i) => loss(i) < 0.5 && i % 2 === 0))
    expect(rows.map((r) => r._path)).toEqual([...rows.map((r) => r._path as string)].sort())
  })

  it('streams: a limit without a sort stops reading early', async () => {
    const counting = countingBlocks(repo.store.blocks)
    const fresh = new Repository({ ...repo.store, blocks: counting, close: async () => {} })
    const rows = await run(fresh, { limit: 3 })
    expect(rows.map((r) => r.i)).toEqual([0, 1, 2])
    expect(counting.reads).toBeGreaterThan(3)
    expect(counting.reads).toBeLessThan(M / 5)

    counting.reads = 0
    const got: QueryRow[] = []
    for await (const row of query(fresh, 'main', { filter: { group: 0 } })) if (got.push(row) === 2) break
    expect(got.map((r) => r.i)).toEqual([0, 7])
    expect(counting.reads).toBeLessThan(M / 5)

    counting.reads = 0
    expect(await run(fresh, { filter: { group: 0 } })).toHaveLength(Math.ceil(M / 7))
    expect(counting.reads).toBeGreaterThanOrEqual(M)
  })
})
