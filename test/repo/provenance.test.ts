import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Repository } from '../../src/repo/repository.js'
import { cidToString } from '../../src/codec/cid.js'
import { markTainted } from '../../src/repo/log-taint.js'
import { encodeNode } from '../../src/codec/block.js'
import { commitNode } from '../../src/model/commit.js'
import { ensureIndexed, isIndexed } from '../../src/repo/link-index.js'
import { PedigreeError } from '../../src/errors.js'
import type { IngestReject } from '../../src/repo/ingest.js'

const author = { name: 'flow', email: 'flow@example.org' }

async function* from(lines: string[]): AsyncGenerator<string> {
  yield* lines
}

const j = (v: unknown): string => JSON.stringify(v)

/** A small pipeline: calibration → scans → training task → model → evaluation. */
const pipeline = [
  j({ type: 'calibration', id: 'cal-1', gain: 1.2 }),
  j({ type: 'scan', id: 's1', calibration: { '@': 'main:calibration/cal-1.json' } }),
  j({ type: 'scan', id: 's2', calibration: { '@': 'main:calibration/cal-1.json' } }),
  j({ type: 'config', id: 'c1', lr: 0.001 }),
  j({ type: 'task', id: 't1', used: [{ '@': 'main:scan/s1.json' }, { '@': 'main:scan/s2.json' }], config: { '@': 'main:config/c1.json' }, started_at: '2026-11-22T01:00:00Z', ended_at: '2026-11-22T02:00:00Z' }),
  j({ type: 'model', id: 'm1', wasGeneratedBy: { '@': 'main:task/t1.json' } }),
  j({ type: 'eval', id: 'e1', model: { '@': 'main:model/m1.json' }, acc: 0.93 }),
  j({ type: 'scan', id: 's3', note: 'independent of the calibration' }),
]

describe.each([
  ['level', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pedigree-prov-'))
    return { repo: await Repository.init(join(dir, '.pedigree')), cleanup: () => rm(dir, { recursive: true, force: true }) }
  }],
  ['memory', async () => ({ repo: Repository.memory(), cleanup: async () => {} })],
] as const)('provenance on %s', (_name, open) => {
  let repo: Repository
  let cleanup: () => Promise<unknown>
  beforeEach(async () => {
    ;({ repo, cleanup } = await open())
  })
  afterEach(async () => {
    await repo.close()
    await cleanup()
  })

  const ingestPipeline = (batch = 3) => repo.ingest(from(pipeline), { ref: 'main', author, pathTemplate: '{type}/{id}.json', batch })

  it('ingests in batches, one commit per batch, resolving @ references to exact CIDs', async () => {
    const r = await ingestPipeline(3)
    expect(r.records).toBe(8)
    expect(r.commits.map((c) => [c.firstLine, c.lastLine])).toEqual([[1, 3], [4, 6], [7, 8]])
    const log = []
    for await (const e of repo.log()) log.push(e)
    expect(log).toHaveLength(3)
    const scan = await repo.show('main:scan/s1.json')
    const cal = await repo.resolveEntry('main:calibration/cal-1.json')
    expect(scan.type === 'record' && (scan.value.calibration as { toString(): string }).toString()).toBe(cal.entry.cid.toString())
  })

  it('resolves a reference whose key "@" is written with an escape', async () => {
    await ingestPipeline()
    await repo.ingest(from(['{"type":"note","id":"n1","about":{"\\u0040":"main:scan/s1.json"}}']), { ref: 'main', author, pathTemplate: '{type}/{id}.json' })
    const note = await repo.show('main:note/n1.json')
    const scan = await repo.resolveEntry('main:scan/s1.json')
    expect(note.type === 'record' && String(note.value.about)).toBe(scan.entry.cid.toString())
  })

  it('a path seen again ends the batch, so that every version of it is committed', async () => {
    const r = await repo.ingest(from([j({ id: 't1', status: 'running' }), j({ id: 't2', status: 'done' }), j({ id: 't1', status: 'done' })]), {
      ref: 'main',
      author,
      pathTemplate: 'tasks/{id}.json',
    })
    expect(r.commits.map((c) => [c.firstLine, c.lastLine])).toEqual([[1, 2], [3, 3]])
    const t1 = await repo.show('main:tasks/t1.json')
    expect(t1.type === 'record' && t1.value.status).toBe('done')
    const before = await repo.show('main~1:tasks/t1.json')
    expect(before.type === 'record' && before.value.status).toBe('running')
  })

  it('a record whose path would be both an entry and a folder is a bad line, named by its number', async () => {
    await ingestPipeline()
    const lines = [j({ type: 'x', id: 'ok1' }), j({ type: 'scan', id: 's1.json/deeper' }), j({ type: 'x', id: 'ok2' })]
    const refusal = await repo.ingest(from(lines), { ref: 'main', author, pathTemplate: '{type}/{id}.json' }).catch((e: unknown) => e)
    expect(refusal).toBeInstanceOf(PedigreeError)
    expect((refusal as PedigreeError).message).toMatch(/^line 2: 'scan\/s1\.json\/deeper\.json' and 'scan\/s1\.json' cannot both be in a tree/)
    expect(await repo.resolveEntry('main:x/ok1.json').catch(() => undefined)).toBeUndefined()
    const rejects: IngestReject[] = []
    const r = await repo.ingest(from(lines), { ref: 'main', author, pathTemplate: '{type}/{id}.json', skipBad: true, onReject: (x) => rejects.push(x) })
    expect(rejects.map((x) => [x.line, x.text])).toEqual([[2, lines[1]]])
    expect(r.records).toBe(2)
    expect((await repo.resolveEntry('main:x/ok2.json')).entry.kind).toBe('record')
  })

  it('a bad line stops the ingest before its batch is committed; earlier batches stay', async () => {
    const lines = [...pipeline.slice(0, 4), '{"type": "scan", "id": ', ...pipeline.slice(5)]
    await expect(repo.ingest(from(lines), { ref: 'main', author, pathTemplate: '{type}/{id}.json', batch: 3 })).rejects.toThrow(/line 5, column \d+.*nothing of the open batch \(lines 4–5\)/)
    const paths = []
    for await (const e of repo.ls('main')) paths.push(e.path)
    expect(paths).toEqual(['calibration/cal-1.json', 'scan/s1.json', 'scan/s2.json'])
  })

  it('--skip-bad reports bad lines with their numbers and commits the rest', async () => {
    const rejects: { line: number; error: string }[] = []
    const lines = [pipeline[0]!, 'not json', j({ type: 'scan' }), j({ type: 'scan', id: 'x', calibration: { '@': 'main:nowhere.json' } }), pipeline[1]!]
    const r = await repo.ingest(from(lines), { ref: 'main', author, pathTemplate: '{type}/{id}.json', skipBad: true, onReject: (x) => rejects.push(x) })
    expect(r.records).toBe(2)
    expect(rejects.map((x) => x.line)).toEqual([2, 3, 4])
    expect(rejects[1]!.error).toMatch(/needs field 'id'/)
    expect(rejects[2]!.error).toMatch(/reference not found: main:nowhere\.json/)
  })

  it('a link to a CID not in the store is refused unless allowDangling', async () => {
    const ghost = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
    const line = j({ type: 'task', id: 'g', used: { '/': ghost } })
    await expect(repo.ingest(from([line]), { ref: 'main', author, pathTemplate: '{type}/{id}.json' })).rejects.toThrow(new RegExp(`linked CID not found: ${ghost}`))
    expect(await repo.refs.get('main')).toBeUndefined()
    const r = await repo.ingest(from([line]), { ref: 'main', author, pathTemplate: '{type}/{id}.json', allowDangling: true })
    expect(r.records).toBe(1)
  })

  it('lineage upstream follows links and names relations; downstream uses the reverse index', async () => {
    await ingestPipeline()
    const up = await repo.lineage('main:eval/e1.json', { direction: 'up' })
    const name = (cid: string) => up.nodes.find((n) => n.cid === cid)!.paths[0]
    const rel = up.edges.map((e) => `${name(e.from)} -${e.relation}-> ${name(e.to)}`).sort()
    expect(rel).toEqual([
      'eval/e1.json -model-> model/m1.json',
      'model/m1.json -wasGeneratedBy-> task/t1.json',
      'scan/s1.json -calibration-> calibration/cal-1.json',
      'scan/s2.json -calibration-> calibration/cal-1.json',
      'task/t1.json -config-> config/c1.json',
      'task/t1.json -used-> scan/s1.json',
      'task/t1.json -used-> scan/s2.json',
    ])
    const down = await repo.lineage('main:calibration/cal-1.json', { direction: 'down' })
    expect(down.nodes.map((n) => n.paths[0]).sort()).toEqual(['calibration/cal-1.json', 'eval/e1.json', 'model/m1.json', 'scan/s1.json', 'scan/s2.json', 'task/t1.json'])
    const shallow = await repo.lineage('main:calibration/cal-1.json', { direction: 'down', depth: 1 })
    expect(shallow.nodes.map((n) => n.paths[0]).sort()).toEqual(['calibration/cal-1.json', 'scan/s1.json', 'scan/s2.json'])
    expect(shallow.truncated).toBe(true)
  })

  it('invalidation taints everything downstream, append-only, and a new version clears it for what derives from it', async () => {
    await ingestPipeline()
    const before = (await repo.refs.get('main'))!.toString()
    await repo.invalidate('main:calibration/cal-1.json', { reason: 'gain mis-set', who: author })
    expect((await repo.refs.get('main'))!.toString()).toBe(before) // main untouched
    const t = await repo.tainted('main')
    expect(t.map((x) => x.path)).toEqual(['calibration/cal-1.json', 'eval/e1.json', 'model/m1.json', 'scan/s1.json', 'scan/s2.json', 'task/t1.json'])
    expect(new Set(t.map((x) => x.taint.reason))).toEqual(new Set(['gain mis-set']))
    const root = (await repo.resolveEntry('main:calibration/cal-1.json')).entry.cid.toString()
    expect(t.every((x) => x.taint.root === root)).toBe(true)
    const g = await repo.lineage('main:eval/e1.json')
    expect(g.nodes.find((n) => n.paths[0] === 'eval/e1.json')!.tainted?.reason).toBe('gain mis-set')
    expect(g.nodes.find((n) => n.paths[0] === 'config/c1.json')!.tainted).toBeUndefined()
    await expect(repo.invalidate('main:calibration/cal-1.json', { reason: 'again', who: author })).rejects.toMatchObject({ code: 'ERR_REFUSED' })
    const shown = await repo.show('main:eval/e1.json')
    expect(shown.type === 'record' && shown.tainted).toMatchObject({ root, reason: 'gain mis-set' })
    const clean = await repo.show('main:scan/s3.json')
    expect(clean.type === 'record' && clean.tainted).toBeUndefined()

    // A corrected calibration and a re-run scan derived from it are clean.
    await repo.ingest(from([j({ type: 'calibration', id: 'cal-2', gain: 1.0 }), j({ type: 'scan', id: 's1', calibration: { '@': 'main:calibration/cal-2.json' } })]), {
      ref: 'main', author, pathTemplate: '{type}/{id}.json',
    })
    const after = (await repo.tainted('main')).map((x) => x.path)
    expect(after).not.toContain('scan/s1.json')
    expect(after).toContain('scan/s2.json')
    expect(after).toContain('task/t1.json') // still derived from the old scans
  })

  it('log marks the commits that brought tainted entries, and query marks tainted rows', async () => {
    await ingestPipeline(3) // commits: [cal, s1, s2], [c1, t1, m1], [e1, s3]
    const unmarked = []
    for await (const e of markTainted(repo, repo.log())) unmarked.push(e)
    expect(unmarked.every((e) => e.tainted === undefined)).toBe(true) // nothing invalidated yet
    await repo.invalidate('main:calibration/cal-1.json', { reason: 'gain mis-set', who: author })
    const root = (await repo.resolveEntry('main:calibration/cal-1.json')).entry.cid.toString()

    const marked = []
    for await (const e of markTainted(repo, repo.log())) marked.push(e.tainted?.map((t) => t.path) ?? [])
    expect(marked).toEqual([['eval/e1.json'], ['model/m1.json', 'task/t1.json'], ['calibration/cal-1.json', 'scan/s1.json', 'scan/s2.json']])

    const rows = []
    for await (const row of repo.query('main', { project: ['id'] })) rows.push(row)
    const taintedIds = rows.filter((r) => r._tainted).map((r) => r.id)
    expect(taintedIds.sort()).toEqual(['cal-1', 'e1', 'm1', 's1', 's2', 't1'])
    expect(rows.find((r) => r.id === 'e1')!._tainted).toMatchObject({ root, reason: 'gain mis-set' })
    // The mark is a field filters can use: the clean records only.
    const clean = []
    for await (const row of repo.query('main', { filter: { _tainted: { $exists: false } } })) clean.push(row.id)
    expect(clean.sort()).toEqual(['c1', 's3'])
    const onlyTainted = []
    for await (const row of repo.query('main', { filter: { type: 'scan', _tainted: { $exists: true } } })) onlyTainted.push(row.id)
    expect(onlyTainted.sort()).toEqual(['s1', 's2'])
    // Opting out leaves rows as stored.
    for await (const row of repo.query('main', { taint: false })) expect(row._tainted).toBeUndefined()
  })

  it('index rebuild gives the same downstream answers as the incremental index', async () => {
    await ingestPipeline()
    const before = await repo.lineage('main:calibration/cal-1.json', { direction: 'down' })
    expect(await repo.rebuildIndex()).toBe(3)
    const after = await repo.lineage('main:calibration/cal-1.json', { direction: 'down' })
    expect(after.nodes.map((n) => n.cid).sort()).toEqual(before.nodes.map((n) => n.cid).sort())
    expect(after.edges.length).toBe(before.edges.length)
  })

  it('indexing from given heads walks back from them only (a receiver indexes what a push brought, not every ref)', async () => {
    const m1 = await repo.record('a/1.json', { i: 1 }, { author })
    const m2 = await repo.record('a/2.json', { i: 2 }, { author })
    const t1 = await repo.commit({ ref: 'topic', author, message: 't1', edits: [{ type: 'record', path: 'b/1.json', value: { i: 3 } }] })
    for (const prefix of ['d/', 'p/', 'f/', 'c/']) await repo.store.index.clear(prefix)
    expect(await isIndexed(repo, m2.cid)).toBe(false)
    // From main's head: its two commits, parents first; topic's commit is left for later.
    expect(await ensureIndexed(repo, { heads: [m2.cid] })).toBe(2)
    for (const c of [m1.cid, m2.cid]) expect(await isIndexed(repo, c)).toBe(true)
    expect(await isIndexed(repo, t1.cid)).toBe(false)
    // Without heads, every ref: only topic's commit was left.
    expect(await ensureIndexed(repo)).toBe(1)
    expect(await isIndexed(repo, t1.cid)).toBe(true)
  })

  it('lineage names a path of each node by key (the one committed last), and by scan where an older index has no such key', async () => {
    await ingestPipeline()
    // The same record committed at a second path: the same CID, a later path.
    await repo.record('archive/cal-1.json', { type: 'calibration', id: 'cal-1', gain: 1.2 }, { author })
    const g = await repo.lineage('main:calibration/cal-1.json', { direction: 'down' })
    const pathOf = (graph: typeof g) => new Map(graph.nodes.map((n) => [n.cid, n.paths]))
    const cal = cidToString((await repo.resolveEntry('main:calibration/cal-1.json')).entry.cid)
    expect(pathOf(g).get(cal)).toEqual(['archive/cal-1.json'])
    expect(pathOf(g).get(cidToString((await repo.resolveEntry('main:eval/e1.json')).entry.cid))).toEqual(['eval/e1.json'])
    // An index written before the keyed paths: the same answer from the path scan.
    await repo.store.index.clear('f/')
    expect(pathOf(await repo.lineage('main:calibration/cal-1.json', { direction: 'down' }))).toEqual(pathOf(g))
    await repo.rebuildIndex()
    expect(pathOf(await repo.lineage('main:calibration/cal-1.json', { direction: 'down' }))).toEqual(pathOf(g))
  })

  it('repo.record commits one record', async () => {
    const r = await repo.record('tasks/1.json', { type: 'task', status: 'done' }, { author })
    expect(cidToString(r.cid)).toMatch(/^bafy/)
    const shown = await repo.show('main:tasks/1.json')
    expect(shown.type === 'record' && shown.value.status).toBe('done')
  })
})

describe('fsck and the derived index', () => {
  it('reports reachable commits missing from the index, and index rebuild fixes it', async () => {
    const repo = Repository.memory()
    await repo.ingest(from(pipeline), { ref: 'main', author, pathTemplate: '{type}/{id}.json', batch: 4 })
    expect((await repo.fsck()).unindexed).toBe(0)
    await repo.store.index.clear('c/')
    const r = await repo.fsck()
    expect(r.ok).toBe(true) // a lagging derived index is not corruption
    expect(r.unindexed).toBe(2)
    await repo.rebuildIndex()
    expect((await repo.fsck()).unindexed).toBe(0)
  })

  it('catches up a history with a merge parents first, so that a path committed later wins', async () => {
    const repo = Repository.memory()
    const value = { type: 'config', lr: 0.1 }
    const a = await repo.record('old/config.json', value, { author })
    // On a branch from A, C moves the record to a new path; B, on main, adds another; M merges
    // both. Walking back from M reaches C (its second parent) before A: indexed in that order,
    // A's older path would be the one indexed last.
    await repo.refs.update('side', { next: a.cid, expect: null, who: author, message: 'branch' })
    const c = await repo.commit({ ref: 'side', author, message: 'move', edits: [{ type: 'remove', path: 'old' }, { type: 'record', path: 'new/config.json', value }] })
    const b = await repo.commit({ ref: 'main', author, message: 'other', edits: [{ type: 'record', path: 'other.json', value: { x: 1 } }] })
    const tree = await repo.trees.edit(c.commit.tree, [{ path: 'other.json', entry: (await repo.resolveEntry('main:other.json')).entry }])
    const merge = encodeNode(commitNode({ tree, parents: [b.cid, c.cid], author, time: 0, message: 'merge' }))
    await repo.blocks.put(merge)
    await repo.refs.update('main', { next: merge.cid, expect: b.cid, who: author, message: 'merge' })
    await repo.deleteRef('side', { who: author })
    await repo.rebuildIndex()
    for (const commit of [a.cid, b.cid, c.cid, merge.cid]) expect(await isIndexed(repo, commit)).toBe(true)
    const g = await repo.lineage('main:new/config.json')
    expect(g.nodes[0]!.paths).toEqual(['new/config.json'])
  })
})
