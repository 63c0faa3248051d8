import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCli, runJson } from './run-cli.js'

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url))
const template = '{type}/{workflow_id}/{id}.json'
const cal11a = 'main:calibration/aps-acq-2024-03/cal-2024-03-11a.json'
const best = 'main:model/alcf-hpo-2024-03/braggnn-t05-best.json'

describe('provenance through the CLI (the fixture campaign)', () => {
  let cwd: string
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'pedigree-cli-prov-'))
    expect((await runCli(['init'], { cwd })).code).toBe(0)
    for (const f of ['1-acquisition.jsonl', '2-training.jsonl', '3-evaluation.jsonl']) {
      const r = await runCli(['ingest', '-b', 'main', '--path-template', template, '--batch', '10', join(fixtures, f)], { cwd })
      expect(r.code, r.stderr).toBe(0)
    }
  })
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true })
  })

  it('ingest commits one commit per batch', async () => {
    const { json } = await runJson<{ message: string }[]>(['log', '--json'], { cwd })
    // 26, 17 and 20 lines in batches of 10: 3 + 2 + 2 commits.
    expect(json).toHaveLength(7)
    expect(json[json.length - 1]!.message).toBe('ingest: 10 records (lines 1–10)')
  })

  it('lineage --json names the calibration and scans upstream of the best model', async () => {
    const { code, json } = await runJson<{ nodes: { paths: string[] }[]; edges: { relation: string }[] }>(['lineage', best, '--json'], { cwd })
    expect(code).toBe(0)
    const paths = json.nodes.flatMap((n) => n.paths)
    expect(paths).toContain('calibration/aps-acq-2024-03/cal-2024-03-11a.json')
    expect(paths.filter((p) => p.startsWith('scan/'))).toHaveLength(16)
    expect(new Set(json.edges.map((e) => e.relation))).toEqual(new Set(['config', 'wasGeneratedBy', 'used', 'calibration', 'wasDerivedFrom']))
  })

  it('lineage --down, --format dot and mermaid', async () => {
    const down = await runJson<{ nodes: { paths: string[] }[] }>(['lineage', cal11a, '--down', '--json'], { cwd })
    expect(down.json.nodes.flatMap((n) => n.paths)).toContain('model/alcf-hpo-2024-03/braggnn-t05-best.json')
    const dot = await runCli(['lineage', best, '--format', 'dot', '--depth', '1'], { cwd })
    expect(dot.stdout).toMatch(/^digraph/)
    const mermaid = await runCli(['lineage', best, '--format', 'mermaid', '--depth', '1'], { cwd })
    expect(mermaid.stdout).toMatch(/^flowchart/)
  })

  it('invalidate taints everything downstream, leaves main where it was, and is refused twice', async () => {
    const before = await runJson<{ name: string; cid: string }[]>(['ref', 'list', '--json'], { cwd })
    const r = await runCli(['invalidate', cal11a, '--reason', 'detector moved'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    const after = await runJson<{ name: string; cid: string }[]>(['ref', 'list', '--json'], { cwd })
    expect(after.json.find((x) => x.name === 'main')).toEqual(before.json.find((x) => x.name === 'main'))
    expect(after.json.map((x) => x.name)).toContain('invalidations')

    const tainted = await runJson<{ path: string; reason: string }[]>(['tainted', '--json'], { cwd })
    const paths = tainted.json.map((t) => t.path)
    expect(paths).toContain('model/alcf-hpo-2024-03/braggnn-t05-best.json')
    expect(paths).not.toContain('scan/aps-acq-2024-03/scan-0017.json') // a test scan, calibrated by 12b
    expect(new Set(tainted.json.map((t) => t.reason))).toEqual(new Set(['detector moved']))

    const shown = await runCli(['show', best], { cwd })
    expect(shown.code).toBe(0)
    expect(shown.stderr).toMatch(/braggnn-t05-best\.json is TAINTED: detector moved \(root cause bafy/)
    expect(JSON.parse(shown.stdout).type).toBe('model') // stdout stays the record itself

    const again = await runCli(['invalidate', cal11a, '--reason', 'twice'], { cwd })
    expect(again.code).toBe(4)
  })

  it('after the invalidation, log and query mark what is tainted, with the reason', async () => {
    // (runs after the invalidation above)
    const log = await runJson<{ message: string; tainted?: { path: string; taint: { reason: string } }[] }[]>(['log', '--json'], { cwd })
    const marked = log.json.filter((c) => c.tainted)
    expect(marked.length).toBeGreaterThan(0)
    expect(marked.flatMap((c) => c.tainted!.map((t) => t.path))).toContain('calibration/aps-acq-2024-03/cal-2024-03-11a.json')
    expect(new Set(marked.flatMap((c) => c.tainted!.map((t) => t.taint.reason)))).toEqual(new Set(['detector moved']))
    const text = await runCli(['log', '-n', '50'], { cwd })
    expect(text.stdout).toMatch(/Tainted[\s\S]*! calibration\/aps-acq-2024-03\/cal-2024-03-11a\.json: INVALIDATED: detector moved/)

    const models = await runJson<{ _path: string; _tainted?: { reason: string } }[]>(['query', 'main', '--prefix', 'model/', '--json'], { cwd })
    const best = models.json.find((r) => r._path === 'model/alcf-hpo-2024-03/braggnn-t05-best.json')!
    expect(best._tainted?.reason).toBe('detector moved')
    const table = await runCli(['query', 'main', '--prefix', 'model/'], { cwd })
    expect(table.code).toBe(0)
    expect(table.stderr).toMatch(/warning: \d+ of \d+ rows are tainted/)
  })

  it('index rebuild reindexes every commit', async () => {
    const { code, json } = await runJson<{ commits: number }>(['index', 'rebuild', '--json'], { cwd })
    expect(code).toBe(0)
    expect(json.commits).toBe(8) // 7 on main + 1 on invalidations
  })

  it('a malformed line names its line number and commits nothing of its batch; --skip-bad writes rejects', async () => {
    const input = join(cwd, 'bad.jsonl')
    await writeFile(input, ['{"type":"scan","workflow_id":"w","id":"ok1"}', '{"type":"scan","workflow_id":"w","id": }', '{"type":"scan","workflow_id":"w","id":"ok2"}'].join('\n') + '\n')
    const head = (await runJson<{ cid: string }[]>(['log', '-n', '1', '--json'], { cwd })).json[0]!.cid
    const bad = await runCli(['ingest', '--path-template', template, input], { cwd })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/line 2, column \d+/)
    expect((await runJson<{ cid: string }[]>(['log', '-n', '1', '--json'], { cwd })).json[0]!.cid).toBe(head)

    const skipped = await runJson<{ records: number; rejected: number; rejectsFile: string }>(['ingest', '--path-template', template, '--skip-bad', input, '--json'], { cwd })
    expect(skipped.json.records).toBe(2)
    expect(skipped.json.rejected).toBe(1)
    const rejects = (await readFile(resolve(cwd, skipped.json.rejectsFile), 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
    expect(rejects).toHaveLength(1)
    expect(rejects[0].line).toBe(2)
  })

  it('an @ reference to a path that does not exist is a clear error', async () => {
    const r = await runCli(['ingest', '--path-template', template, '-'], { cwd, input: '{"type":"task","workflow_id":"w","id":"x","used":{"@":"main:scan/nope.json"}}\n' })
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/reference not found: main:scan\/nope\.json/)
  })
})
