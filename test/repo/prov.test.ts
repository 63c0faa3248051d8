import { spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { buildFixtureStore, FIXTURE_PATHS, type FixtureStore } from '../../fixtures/build-fixture-store.js'
import { cidToString, type CID } from '../../src/codec/cid.js'
import { NotFoundError } from '../../src/errors.js'
import type { LineageGraph } from '../../src/repo/lineage-graph.js'
import { exportProv } from '../../src/repo/export-prov.js'
import { PROV_RELATIONS, provClassOf, provDocument, xsdDateTime, type ProvJson, type ProvRecord } from '../../src/repo/prov.js'
import { memoryRepo, type RepoFixture } from './fixture.js'

/** Attributes of PROV relations whose value is an identifier that must be declared. */
const ID_ATTRIBUTES = [
  'prov:activity',
  'prov:entity',
  'prov:agent',
  'prov:generatedEntity',
  'prov:usedEntity',
  'prov:informed',
  'prov:informant',
  'prov:delegate',
  'prov:responsible',
  'prov:influencee',
  'prov:influencer',
]

/** Identifiers named by a relation but declared nowhere as entity, activity or agent. */
function undeclared(doc: ProvJson): string[] {
  const declared = new Set([...Object.keys(doc.entity ?? {}), ...Object.keys(doc.activity ?? {}), ...Object.keys(doc.agent ?? {})])
  const out: string[] = []
  for (const section of PROV_RELATIONS) {
    for (const [id, rel] of Object.entries(doc[section] ?? {})) {
      for (const a of ID_ATTRIBUTES) {
        const v = rel[a]
        if (v !== undefined && !declared.has(String(v))) out.push(`${section} ${id} ${a}=${String(v)}`)
      }
    }
  }
  return out
}

function relations(doc: ProvJson, section: (typeof PROV_RELATIONS)[number]): ProvRecord[] {
  return Object.values(doc[section] ?? {})
}

function count(doc: ProvJson, section: keyof ProvJson): number {
  return Object.keys(doc[section] ?? {}).length
}

/** Records a PROV-JSON document holds: elements plus relations (what prov's get_records() counts). */
function recordCount(doc: ProvJson): number {
  return count(doc, 'entity') + count(doc, 'activity') + count(doc, 'agent') + PROV_RELATIONS.reduce((n, r) => n + count(doc, r), 0)
}

const id = (cid: CID | string): string => `cid:${typeof cid === 'string' ? cid : cidToString(cid)}`

// --- the reference implementation: Python's `prov` (Debian python3-prov) -------------------

const PYTHON = '/usr/bin/python3'
const python = ((): { ok: boolean; reason: string } => {
  const r = spawnSync(PYTHON, ['-c', 'import prov.model'], { encoding: 'utf8' })
  if (r.error) return { ok: false, reason: `${PYTHON} cannot run (${r.error.message}): install python3-prov` }
  if (r.status !== 0) return { ok: false, reason: `${PYTHON} cannot import prov (apt-get install python3-prov): ${r.stderr.trim().split('\n').pop()}` }
  return { ok: true, reason: '' }
})()

/** Read the document with prov.model.ProvDocument.deserialize; its record count, or the error. */
async function pythonRecordCount(dir: string, doc: ProvJson): Promise<number> {
  const file = join(dir, 'doc.prov.json')
  await writeFile(file, JSON.stringify(doc))
  const r = spawnSync(
    PYTHON,
    ['-c', 'import prov.model, json, sys; d = prov.model.ProvDocument.deserialize(sys.argv[1], format="json"); print(len(d.get_records()))', file],
    { encoding: 'utf8' },
  )
  expect(r.status, r.stderr).toBe(0)
  return Number(r.stdout.trim())
}

/** What prov makes of the document's derivations: how many it types prov:Revision. */
function pythonRevisionCount(file: string): number {
  const r = spawnSync(
    PYTHON,
    [
      '-c',
      [
        'import prov.model as m, prov.constants as c, sys',
        'd = m.ProvDocument.deserialize(sys.argv[1], format="json")',
        'print(sum(1 for r in d.get_records(m.ProvDerivation) if c.PROV["Revision"] in r.get_asserted_types()))',
      ].join('\n'),
      file,
    ],
    { encoding: 'utf8' },
  )
  expect(r.status, r.stderr).toBe(0)
  return Number(r.stdout.trim())
}

// --- provDocument ------------------------------------------------------------------------

describe('provDocument', () => {
  const A = 'bafyactivity'
  const E = 'bafyentity'
  const F = 'bafyconfig'
  const G = 'bafygenerated'
  const M = 'bafymissing'

  it('maps link keys to PROV relations by the direction PROV defines', () => {
    const doc = provDocument({
      nodes: [
        { cid: A, kind: 'record', fields: { type: 'task', started_at: 1710424800.5, ended_at: 1710428400, agent: 'svc <svc@example.org>' } },
        { cid: E, kind: 'record', paths: ['scan/1.json'], fields: { type: 'scan', name: 'scan one', started_at: '2024-03-11T09:00:00Z' } },
        { cid: F, kind: 'record', fields: { type: 'config', lr: 0.001 } },
        { cid: G, kind: 'record', fields: { type: 'model' } },
      ],
      edges: [
        { from: A, to: E, relation: 'used', field: 'used.0' },
        { from: A, to: E, relation: 'used', field: 'used.3' },
        { from: A, to: F, relation: 'config', field: 'config' },
        { from: G, to: A, relation: 'wasGeneratedBy', field: 'wasGeneratedBy' },
        { from: G, to: F, relation: 'config', field: 'config' },
        { from: G, to: E, relation: 'wasRevisionOf', field: 'wasRevisionOf' },
        { from: G, to: M, relation: 'wasGeneratedBy', field: 'wasGeneratedBy' },
        { from: E, to: A, relation: 'producedBy', field: 'producedBy' },
      ],
    })
    expect(Object.keys(doc.activity!)).toEqual([id(A), id(M)])
    expect(Object.keys(doc.entity!)).toEqual([id(E), id(F), id(G)])
    expect(doc.activity![id(A)]).toMatchObject({ 'prov:startTime': '2024-03-14T14:00:00.500Z', 'prov:endTime': '2024-03-14T15:00:00.000Z' })
    // An entity keeps its times as attributes; its name is its label.
    expect(doc.entity![id(E)]).toMatchObject({ 'prov:label': 'scan one', 'pedigree:path': 'scan/1.json', 'pedigree:started_at': '2024-03-11T09:00:00Z', 'pedigree:type': 'scan' })
    expect(doc.entity![id(F)]).toMatchObject({ 'pedigree:lr': 0.001 })
    // used(activity, entity), once for the two fields naming the same entity; a config link is a usage with a role.
    expect(relations(doc, 'used')).toEqual([
      { 'prov:activity': id(A), 'prov:entity': id(E), 'pedigree:field': 'used.0' },
      { 'prov:activity': id(A), 'prov:entity': id(F), 'prov:role': 'config', 'pedigree:relation': 'config' },
    ])
    expect(relations(doc, 'wasGeneratedBy')).toEqual([
      { 'prov:entity': id(G), 'prov:activity': id(A) },
      { 'prov:entity': id(G), 'prov:activity': id(M) },
    ])
    expect(relations(doc, 'wasDerivedFrom')).toEqual([
      { 'prov:generatedEntity': id(G), 'prov:usedEntity': id(F), 'pedigree:relation': 'config' },
      { 'prov:generatedEntity': id(G), 'prov:usedEntity': id(E), 'prov:type': { $: 'prov:Revision', type: 'prov:QUALIFIED_NAME' } },
    ])
    // entity → activity under a key PROV has no relation for.
    expect(relations(doc, 'wasInfluencedBy')).toEqual([{ 'prov:influencee': id(E), 'prov:influencer': id(A), 'pedigree:relation': 'producedBy' }])
    expect(doc.agent).toEqual({ 'agent:svc%40example.org': { 'prov:label': 'svc', 'pedigree:email': 'svc@example.org' } })
    expect(relations(doc, 'wasAssociatedWith')).toEqual([{ 'prov:activity': id(A), 'prov:agent': 'agent:svc%40example.org' }])
    expect(undeclared(doc)).toEqual([])
  })

  it('falls back to the relation the classes allow when a standard key joins the wrong kinds', () => {
    const doc = provDocument({
      nodes: [
        { cid: E, kind: 'record', fields: { type: 'dataset' } },
        { cid: F, kind: 'file' },
        { cid: A, kind: 'record', fields: { type: 'run' } },
        { cid: G, kind: 'record', fields: { type: 'task' } },
      ],
      edges: [
        { from: E, to: F, relation: 'used' },
        { from: A, to: G, relation: 'used' },
      ],
    })
    expect(relations(doc, 'wasDerivedFrom')).toEqual([{ 'prov:generatedEntity': id(E), 'prov:usedEntity': id(F), 'pedigree:relation': 'used' }])
    expect(relations(doc, 'wasInformedBy')).toEqual([{ 'prov:informed': id(A), 'prov:informant': id(G), 'pedigree:relation': 'used' }])
    expect(doc.entity![id(F)]).toMatchObject({ 'prov:type': { $: 'pedigree:File', type: 'prov:QUALIFIED_NAME' } })
  })

  it('classes records as activities, agents or entities', () => {
    expect(provClassOf({ kind: 'record', fields: { type: 'Task' } })).toBe('activity')
    expect(provClassOf({ kind: 'record', fields: { started_at: 1 } })).toBe('activity')
    expect(provClassOf({ kind: 'record', fields: { type: 'calibration', started_at: 1, ended_at: 2 } })).toBe('entity')
    expect(provClassOf({ kind: 'record', fields: { type: 'person' } })).toBe('agent')
    expect(provClassOf({ kind: 'record', fields: { loss: 1 } })).toBe('entity')
    expect(provClassOf({ kind: 'file', fields: { type: 'task' } })).toBe('entity')
  })

  it('reads times as ISO text, epoch seconds or epoch milliseconds', () => {
    expect(xsdDateTime('2024-03-11T09:00:00+02:00')).toBe('2024-03-11T09:00:00+02:00')
    expect(xsdDateTime(1710424800)).toBe('2024-03-14T14:00:00.000Z')
    expect(xsdDateTime(1710424800123)).toBe('2024-03-14T14:00:00.123Z')
    expect(xsdDateTime('March 14, 2024 14:00 UTC')).toBe('2024-03-14T14:00:00.000Z')
    expect(xsdDateTime('soon')).toBeUndefined()
    expect(xsdDateTime(true)).toBeUndefined()
  })

  it('adds agents, revisions and invalidations, declaring every node they name', () => {
    const doc = provDocument({
      nodes: [
        { cid: E, kind: 'record', fields: { type: 'calibration' } },
        { cid: A, kind: 'record', fields: { type: 'task' } },
      ],
      edges: [],
      agents: [
        { name: 'ana', email: 'ana@example.org', type: 'Person', responsibleFor: [{ cid: E, role: 'committer', commit: 'bafycommit', time: 0 }, { cid: A, role: 'committer' }] },
      ],
      revisions: [{ cid: E, previous: 'bafyold', path: 'cal/1.json', commit: 'bafycommit' }],
      invalidations: [
        { target: E, record: 'bafyinvalidation', reason: 'gain mis-set', time: '2024-03-16T10:00:00.000Z', by: 'Ana <ana@example.org>' },
        { target: A, reason: 'wrong node', time: 1710583200 },
      ],
    })
    expect(doc.agent!['agent:ana%40example.org']).toEqual({ 'prov:label': 'ana', 'pedigree:email': 'ana@example.org', 'prov:type': { $: 'prov:Person', type: 'prov:QUALIFIED_NAME' } })
    expect(relations(doc, 'wasAttributedTo')).toEqual([
      { 'prov:entity': id(E), 'prov:agent': 'agent:ana%40example.org', 'pedigree:role': 'committer', 'pedigree:commit': 'bafycommit', 'pedigree:committed_at': '1970-01-01T00:00:00.000Z' },
    ])
    expect(relations(doc, 'wasAssociatedWith')).toContainEqual({ 'prov:activity': id(A), 'prov:agent': 'agent:ana%40example.org', 'prov:role': 'committer' })
    expect(relations(doc, 'wasDerivedFrom')).toEqual([
      { 'prov:generatedEntity': id(E), 'prov:usedEntity': id('bafyold'), 'prov:type': { $: 'prov:Revision', type: 'prov:QUALIFIED_NAME' }, 'pedigree:path': 'cal/1.json', 'pedigree:commit': 'bafycommit' },
    ])
    expect(doc.activity![id('bafyinvalidation')]).toMatchObject({
      'prov:type': { $: 'pedigree:Invalidation', type: 'prov:QUALIFIED_NAME' },
      'prov:startTime': '2024-03-16T10:00:00.000Z',
      'pedigree:reason': 'gain mis-set',
    })
    expect(relations(doc, 'wasInvalidatedBy')).toEqual([
      { 'prov:entity': id(E), 'prov:activity': id('bafyinvalidation'), 'prov:time': '2024-03-16T10:00:00.000Z', 'pedigree:reason': 'gain mis-set' },
    ])
    // PROV invalidates entities only: an invalidated activity record is an influence.
    expect(relations(doc, 'wasInfluencedBy')).toEqual([
      { 'prov:influencee': id(A), 'prov:influencer': 'pedigree:invalidation-2', 'pedigree:relation': 'wasInvalidatedBy', 'pedigree:reason': 'wrong node' },
    ])
    expect(relations(doc, 'wasAssociatedWith')).toContainEqual({ 'prov:activity': id('bafyinvalidation'), 'prov:agent': 'agent:ana%40example.org', 'prov:role': 'invalidator' })
    expect(undeclared(doc)).toEqual([])
  })

  it('takes a LineageGraph as it is, taint included, and gives the same document for the same input', () => {
    const badTaint = { root: E, reason: 'bad', invalidation: 'bafyinv', causes: [{ root: E, reason: 'bad', invalidation: 'bafyinv' }], roots: [E] }
    const graph: LineageGraph = {
      start: G,
      direction: 'up',
      truncated: false,
      nodes: [
        { cid: G, kind: 'record', paths: ['model/best.json'], depth: 0, fields: { type: 'model', name: 'best' }, tainted: badTaint },
        { cid: A, kind: 'record', paths: ['task/t5.json'], depth: 1, fields: { type: 'task' }, tainted: badTaint },
        { cid: E, kind: 'record', paths: ['cal/a.json'], depth: 2, fields: { type: 'calibration' }, tainted: badTaint },
      ],
      edges: [
        { from: G, to: A, relation: 'wasGeneratedBy', field: 'wasGeneratedBy' },
        { from: A, to: E, relation: 'used', field: 'used.2' },
      ],
    }
    const doc = provDocument(graph)
    expect(doc.entity![id(G)]).toMatchObject({ 'pedigree:tainted': true, 'pedigree:taintReason': 'bad', 'pedigree:taintRoot': { $: id(E), type: 'prov:QUALIFIED_NAME' } })
    expect(relations(doc, 'used')).toEqual([{ 'prov:activity': id(A), 'prov:entity': id(E), 'pedigree:field': 'used.2' }])
    expect(JSON.stringify(provDocument(graph))).toBe(JSON.stringify(doc))
  })

  it('writes odd field names and big integers in a form PROV-JSON accepts', () => {
    const doc = provDocument({
      nodes: [{ cid: E, kind: 'record', fields: { 'odd key/é': 'x', big: 2n ** 70n, nested: { deeper: { deepest: { tooDeep: { x: 1 } } } }, list: [1, 'a'], skip: null } }],
      edges: [],
    })
    expect(doc.entity![id(E)]).toMatchObject({
      'pedigree:odd%20key%2F%C3%A9': 'x',
      'pedigree:big': { $: '1180591620717411303424', type: 'xsd:integer' },
      'pedigree:list': '[1,"a"]',
    })
    expect(Object.keys(doc.entity![id(E)]).some((k) => k.includes('tooDeep'))).toBe(false)
  })
})

// --- exportProv on the fixture --------------------------------------------------------------

describe('exportProv', () => {
  let fx: RepoFixture
  let store: FixtureStore
  const cidAt = (path: string): string => cidToString(store.paths.get(path)!)

  beforeEach(async () => {
    fx = await memoryRepo()
    store = await buildFixtureStore(fx.repo)
  })
  afterEach(() => fx.cleanup())

  it('describes the three workflows: entities, activities, agents and their relations', async () => {
    const doc = await exportProv(fx.repo, 'main')
    // 2 calibrations + 24 scans + 2 configs + 2 models + 18 metrics; 12 trials + selection + 2 evaluations.
    expect(count(doc, 'entity')).toBe(48)
    expect(count(doc, 'activity')).toBe(15)
    expect(Object.keys(doc.agent!).sort()).toEqual(['agent:daq-1ide%40aps.anl.gov', 'agent:flowcept%40polaris.alcf.anl.gov', 'agent:svc-braggnn%40alcf.anl.gov'])
    expect(undeclared(doc)).toEqual([])

    const best = id(cidAt(FIXTURE_PATHS.bestModel))
    const winner = id(cidAt(FIXTURE_PATHS.winningTask))
    const badCal = id(cidAt(FIXTURE_PATHS.badCalibration))
    // The model was generated by the winning trial, which used the calibration run, the configs and the 16 train scans.
    expect(relations(doc, 'wasGeneratedBy')).toContainEqual({ 'prov:entity': best, 'prov:activity': winner })
    const usedByWinner = relations(doc, 'used').filter((u) => u['prov:activity'] === winner)
    expect(usedByWinner.map((u) => u['prov:entity'])).toContain(badCal)
    expect(usedByWinner.map((u) => u['prov:entity'])).toContain(id(cidAt(FIXTURE_PATHS.baseConfig)))
    expect(usedByWinner).toHaveLength(19)
    expect(doc.activity![winner]).toMatchObject({
      'prov:label': 'train BraggNN trial 05',
      'prov:startTime': expect.stringMatching(/^2024-03-14T/),
      'prov:endTime': expect.stringMatching(/^2024-03-14T/),
      'pedigree:status': 'FINISHED',
      'pedigree:metrics.val_loss': 0.00142,
      'pedigree:task_id': 'hpo-t05',
    })
    // Keys PROV has no name for: a scan's calibration is a derivation, an evaluation's model a usage with that role.
    expect(relations(doc, 'wasDerivedFrom')).toContainEqual({ 'prov:generatedEntity': id(cidAt(FIXTURE_PATHS.firstTrainScan)), 'prov:usedEntity': badCal, 'pedigree:relation': 'calibration' })
    expect(relations(doc, 'used')).toContainEqual({ 'prov:activity': id(cidAt(FIXTURE_PATHS.evalBest)), 'prov:entity': best, 'prov:role': 'model', 'pedigree:relation': 'model' })
    expect(relations(doc, 'wasInformedBy')).toContainEqual({ 'prov:informed': id(cidAt(FIXTURE_PATHS.selectTask)), 'prov:informant': winner, 'pedigree:relation': 'winner' })
    // Each trial's agent field, and the commit author for everything committed.
    expect(relations(doc, 'wasAssociatedWith')).toContainEqual({ 'prov:activity': winner, 'prov:agent': 'agent:svc-braggnn%40alcf.anl.gov' })
    expect(relations(doc, 'wasAttributedTo')).toContainEqual({
      'prov:entity': best,
      'prov:agent': 'agent:flowcept%40polaris.alcf.anl.gov',
      'pedigree:role': 'committer',
      'pedigree:commit': cidToString(store.commits[1]!.cid),
      'pedigree:committed_at': '2024-03-14T23:00:00.000Z',
    })
    expect(relations(doc, 'wasAttributedTo').filter((a) => a['pedigree:role'] === 'committer')).toHaveLength(48)
    expect(relations(doc, 'wasAssociatedWith').filter((a) => a['prov:role'] === 'committer')).toHaveLength(15)
    // used: 12 trials × 19 + 2 evaluations × (8 scans + model); wasGeneratedBy: 2 models + 18 metrics.
    expect(count(doc, 'used')).toBe(246)
    expect(count(doc, 'wasGeneratedBy')).toBe(20)
    expect(doc.wasInvalidatedBy).toBeUndefined()
  })

  it('is read by the reference implementation (Python prov) with every record', async (ctx) => {
    if (!python.ok) ctx.skip(python.reason)
    const doc = await exportProv(fx.repo, 'main')
    expect(await pythonRecordCount(fx.dir, doc)).toBe(recordCount(doc))
    expect(recordCount(doc)).toBe(508)
  })

  it('exports only the given paths, declaring what they link to outside the selection', async () => {
    const doc = await exportProv(fx.repo, 'main', { paths: ['model/', FIXTURE_PATHS.evalBest] })
    const best = id(cidAt(FIXTURE_PATHS.bestModel))
    const winner = id(cidAt(FIXTURE_PATHS.winningTask))
    // 2 models + their config + the 8 test scans the evaluation used.
    expect(Object.keys(doc.entity!).sort()).toEqual(
      [best, id(cidAt(FIXTURE_PATHS.lastModel)), id(cidAt(FIXTURE_PATHS.baseConfig)), ...Array.from({ length: 8 }, (_, i) => id(cidAt(`scan/aps-acq-2024-03/scan-00${17 + i}.json`)))].sort(),
    )
    expect(Object.keys(doc.activity!).sort()).toEqual([winner, id(cidAt(FIXTURE_PATHS.evalBest))].sort())
    // Outside the selection: classed and labelled by content, without the selected records' attributes.
    expect(doc.activity![winner]).toMatchObject({ 'pedigree:type': 'task', 'prov:label': 'train BraggNN trial 05' })
    expect(doc.activity![winner]!['pedigree:status']).toBeUndefined()
    expect(relations(doc, 'wasGeneratedBy')).toEqual([
      { 'prov:entity': best, 'prov:activity': winner },
      { 'prov:entity': id(cidAt(FIXTURE_PATHS.lastModel)), 'prov:activity': winner },
    ])
    // Only selected entries are attributed to their committer.
    const committed = relations(doc, 'wasAttributedTo').filter((a) => a['pedigree:role'] === 'committer')
    expect(committed.map((a) => a['prov:entity']).sort()).toEqual([best, id(cidAt(FIXTURE_PATHS.lastModel))].sort())
    expect(undeclared(doc)).toEqual([])
    await expect(exportProv(fx.repo, 'main', { paths: ['nope/'] })).rejects.toThrow(NotFoundError)
    // A path selects an entry or a folder, never a name that merely starts the same.
    await expect(exportProv(fx.repo, 'main', { paths: ['mode'] })).rejects.toThrow(NotFoundError)
    await expect(exportProv(fx.repo, 'no-such-ref')).rejects.toThrow(NotFoundError)
  })

  it('links versions of a path with wasRevisionOf and attributes each to the commit that introduced it', async () => {
    const old = store.paths.get(FIXTURE_PATHS.bestModel)!
    const value = await fx.repo.readNode<Record<string, unknown>>(old)
    const r2 = await fx.repo.commit({
      ref: 'main',
      author: { name: 'ana', email: 'ana@example.org' },
      time: Date.UTC(2024, 2, 20),
      message: 'fine-tuned',
      edits: [{ type: 'record', path: FIXTURE_PATHS.bestModel, value: { ...value, epoch: 45, metrics: { val_loss: 0.00131 } } }],
    })
    const r3 = await fx.repo.commit({
      ref: 'main',
      author: { name: 'ana', email: 'ana@example.org' },
      time: Date.UTC(2024, 2, 21),
      message: 'fine-tuned again',
      edits: [{ type: 'record', path: FIXTURE_PATHS.bestModel, value: { ...value, epoch: 50, metrics: { val_loss: 0.00129 } } }],
    })
    const v2 = (await fx.repo.readCommit(r2.cid)).tree
    const mid = cidToString((await fx.repo.trees.get(v2, FIXTURE_PATHS.bestModel))!.cid)
    const now = cidToString((await fx.repo.resolveEntry(`main:${FIXTURE_PATHS.bestModel}`)).entry.cid)
    const doc = await exportProv(fx.repo, 'main', { paths: ['model/'] })
    const revisions = relations(doc, 'wasDerivedFrom').filter((d) => JSON.stringify(d['prov:type']) === JSON.stringify({ $: 'prov:Revision', type: 'prov:QUALIFIED_NAME' }))
    expect(revisions).toEqual([
      { 'prov:generatedEntity': id(mid), 'prov:usedEntity': id(old), 'prov:type': { $: 'prov:Revision', type: 'prov:QUALIFIED_NAME' }, 'pedigree:path': FIXTURE_PATHS.bestModel, 'pedigree:commit': cidToString(r2.cid) },
      { 'prov:generatedEntity': id(now), 'prov:usedEntity': id(mid), 'prov:type': { $: 'prov:Revision', type: 'prov:QUALIFIED_NAME' }, 'pedigree:path': FIXTURE_PATHS.bestModel, 'pedigree:commit': cidToString(r3.cid) },
    ])
    // Earlier versions are declared, labelled by path, and credited to whoever committed them.
    expect(doc.entity![id(old)]).toMatchObject({ 'pedigree:path': FIXTURE_PATHS.bestModel, 'pedigree:type': 'model' })
    const attributed = (cid: string): unknown[] => relations(doc, 'wasAttributedTo').filter((a) => a['prov:entity'] === id(cid)).map((a) => [a['prov:agent'], a['pedigree:commit']])
    expect(attributed(now)).toEqual([['agent:ana%40example.org', cidToString(r3.cid)]])
    expect(attributed(mid)).toEqual([['agent:ana%40example.org', cidToString(r2.cid)]])
    expect(attributed(cidToString(old))).toEqual([['agent:flowcept%40polaris.alcf.anl.gov', cidToString(store.commits[1]!.cid)]])
    expect(undeclared(doc)).toEqual([])

    // A bounded walk sees only the newest commit: one revision, the older versions unattributed.
    const bounded = await exportProv(fx.repo, 'main', { paths: ['model/'], maxCommits: 1 })
    expect(relations(bounded, 'wasDerivedFrom').filter((d) => d['prov:type'])).toHaveLength(1)
    expect(relations(bounded, 'wasAttributedTo').map((a) => a['prov:entity'])).toEqual([id(now)])

    if (python.ok) {
      const file = join(fx.dir, 'revisions.prov.json')
      await writeFile(file, JSON.stringify(doc))
      expect(pythonRevisionCount(file)).toBe(2)
    }
  })

  it('adds wasInvalidatedBy for nodes named in the invalidations ref', async () => {
    const bad = store.paths.get(FIXTURE_PATHS.badCalibration)!
    const good = store.paths.get(FIXTURE_PATHS.goodCalibration)!
    const invalidation = (target: CID, reason: string) => ({
      type: 'invalidation',
      target,
      target_path: 'x',
      reason,
      invalidated_at: '2024-03-16T09:30:00.000Z',
      by: 'Ana <ana@example.org>',
    })
    await fx.repo.commit({
      ref: 'invalidations',
      author: { name: 'Ana', email: 'ana@example.org' },
      time: Date.UTC(2024, 2, 16, 9, 30),
      message: 'invalidate',
      edits: [
        { type: 'record', path: `invalidated/${cidToString(bad)}.json`, value: invalidation(bad, 'beam centre off by 2.6 px') },
        // Not in the selection below: left out.
        { type: 'record', path: `invalidated/${cidToString(good)}.json`, value: invalidation(good, 'not really') },
      ],
    })
    const record = cidToString((await fx.repo.resolveEntry(`invalidations:invalidated/${cidToString(bad)}.json`)).entry.cid)
    const doc = await exportProv(fx.repo, 'main', { paths: ['task/alcf-hpo-2024-03/'] })
    expect(relations(doc, 'wasInvalidatedBy')).toEqual([
      { 'prov:entity': id(bad), 'prov:activity': id(record), 'prov:time': '2024-03-16T09:30:00.000Z', 'pedigree:reason': 'beam centre off by 2.6 px' },
    ])
    expect(doc.activity![id(record)]).toMatchObject({ 'prov:type': { $: 'pedigree:Invalidation', type: 'prov:QUALIFIED_NAME' }, 'prov:startTime': '2024-03-16T09:30:00.000Z' })
    expect(relations(doc, 'wasAssociatedWith')).toContainEqual({ 'prov:activity': id(record), 'prov:agent': 'agent:ana%40example.org', 'prov:role': 'invalidator' })
    expect(doc.entity![id(good)]).toBeUndefined()
    expect(undeclared(doc)).toEqual([])
    if (python.ok) expect(await pythonRecordCount(fx.dir, doc)).toBe(recordCount(doc))
  })
})
