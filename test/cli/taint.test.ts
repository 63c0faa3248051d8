import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCli, runJson } from './run-cli.js'

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url))
const template = '{type}/{workflow_id}/{id}.json'
const CAL = 'calibration/aps-acq-2024-03/cal-2024-03-11a.json'
const SCAN2 = 'scan/aps-acq-2024-03/scan-0002.json'
const CONFIG = 'config/alcf-hpo-2024-03/cfg-braggnn-base.json'
const BEST = 'model/alcf-hpo-2024-03/braggnn-t05-best.json'
const CAL_REASON = 'beam centre off by 2.6 px'
const SCAN_REASON = 'sample slipped during scan 2'
const CONFIG_REASON = 'learning rate off by 10x'

interface TaintedJson {
  path: string
  cid: string
  root: string
  reason: string
  roots: string[]
  causes: { root: string; reason: string }[]
}

/** The QA reviewer's session: the fixture store, then three invalidations one after the other. */
describe('taint through the CLI, with several invalidations (fixture campaign)', () => {
  let cwd: string
  const cids = new Map<string, string>()
  beforeAll(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'pedigree-cli-taint-'))
    expect((await runCli(['init'], { cwd })).code).toBe(0)
    for (const f of ['1-acquisition.jsonl', '2-training.jsonl', '3-evaluation.jsonl']) {
      const r = await runCli(['ingest', '-b', 'main', '--path-template', template, join(fixtures, f)], { cwd })
      expect(r.code, r.stderr).toBe(0)
    }
    // 25 records that used calibration 11a, ingested in one commit.
    const lines = Array.from({ length: 25 }, (_, i) => JSON.stringify({ type: 'task', workflow_id: 'reuse', id: `r${String(i).padStart(2, '0')}`, used: { '@': `main:${CAL}` } }))
    await writeFile(join(cwd, 'reuse.jsonl'), lines.join('\n') + '\n')
    const r = await runCli(['ingest', '-b', 'main', '--path-template', template, 'reuse.jsonl'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    for (const [path, reason] of [[CAL, CAL_REASON], [SCAN2, SCAN_REASON], [CONFIG, CONFIG_REASON]] as const) {
      const inv = await runCli(['invalidate', `main:${path}`, '--reason', reason], { cwd })
      expect(inv.code, inv.stderr).toBe(0)
      cids.set(path, (await runJson<{ cid: string }>(['show', `main:${path}`, '--json'], { cwd })).json.cid)
    }
  }, 120_000)
  afterAll(async () => {
    await rm(cwd, { recursive: true, force: true })
  })

  it('tainted says INVALIDATED with its own reason for an invalidated entry, and names every cause', async () => {
    const text = await runCli(['tainted'], { cwd })
    expect(text.code, text.stderr).toBe(0)
    const line = (path: string): string => text.stdout.split('\n').find((l) => l.startsWith(`${path}  `))!
    expect(line(CAL)).toBe(`${CAL}  INVALIDATED: ${CAL_REASON}`)
    expect(line(SCAN2)).toBe(`${SCAN2}  INVALIDATED: ${SCAN_REASON}; also: ${CAL_REASON} (root cause ${CAL})`)
    expect(line(BEST)).toBe(`${BEST}  TAINTED: ${CAL_REASON} (root cause ${CAL}); also: ${SCAN_REASON} (root cause ${SCAN2}); also: ${CONFIG_REASON} (root cause ${CONFIG})`)

    const { json } = await runJson<TaintedJson[]>(['tainted', '--json'], { cwd })
    expect(json).toHaveLength(52 + 25 + 2) // the campaign's 52, the 25 reused, the 2 configs
    const best = json.find((t) => t.path === BEST)!
    expect(best.roots).toEqual([CAL, SCAN2, CONFIG].map((p) => cids.get(p)))
    expect(best.causes.map((c) => c.reason)).toEqual([CAL_REASON, SCAN_REASON, CONFIG_REASON])
    expect(json.find((t) => t.path === SCAN2)).toMatchObject({ root: cids.get(SCAN2), reason: SCAN_REASON })
  })

  it('tainted --root lists what one invalidated node reaches, named by REV:PATH or CID prefix', async () => {
    const byConfig = await runJson<TaintedJson[]>(['tainted', '--root', `main:${CONFIG}`, '--json'], { cwd })
    expect(byConfig.json).toHaveLength(37) // 2 configs, 12 trials, selection, 2 models, 2 evaluations, 18 metrics
    expect(byConfig.json.every((t) => t.roots.includes(cids.get(CONFIG)!))).toBe(true)
    const byScan = await runJson<TaintedJson[]>(['tainted', '--root', cids.get(SCAN2)!.slice(0, 20), '--json'], { cwd })
    expect(byScan.json).toHaveLength(36) // scan 2, 12 trials, selection, 2 models, 2 evaluations, 18 metrics
    const notInvalidated = await runCli(['tainted', '--root', `main:${BEST}`], { cwd })
    expect(notInvalidated.code).not.toBe(0)
    expect(notInvalidated.stderr).toMatch(/not invalidated/)
  })

  it('query filters on every root cause with _tainted.roots, and on the primary one with _tainted.root', async () => {
    const cal = cids.get(CAL)!
    const all = await runJson<unknown[]>(['query', 'main', '--filter', JSON.stringify({ '_tainted.roots': cal }), '--json'], { cwd })
    expect(all.json).toHaveLength(52 + 25)
    const primary = await runJson<unknown[]>(['query', 'main', '--filter', JSON.stringify({ '_tainted.root': cal }), '--json'], { cwd })
    expect(primary.json).toHaveLength(52 + 25 - 1) // scan 2's own invalidation comes first
    const table = await runCli(['query', 'main', '--filter', JSON.stringify({ _path: SCAN2 }), '--format', 'csv'], { cwd })
    expect(table.stdout).toContain(`INVALIDATED: ${SCAN_REASON}; also: ${CAL_REASON} (root cause ${cal.slice(0, 20)}…)`)
  })

  it('log counts tainted entries exactly and says how many more there are than it lists', async () => {
    const oneline = await runCli(['log', '--oneline'], { cwd })
    expect(oneline.stdout.split('\n').filter((l) => l !== '').map((l) => l.replace(/^\S+ /, ''))).toEqual([
      'ingest: 25 records (lines 1–25) [tainted: 25]',
      'ingest: 20 records (lines 1–20) [tainted: 20]',
      'ingest: 17 records (lines 1–17) [tainted: 17]', // 12 trials, selection, 2 models, and now the 2 configs
      'ingest: 26 records (lines 1–26) [tainted: 17]',
    ])
    const { json } = await runJson<{ tainted?: unknown[]; taintedCount?: number; taintedTruncated?: boolean }[]>(['log', '--json'], { cwd })
    expect(json.map((e) => [e.taintedCount, e.tainted?.length, e.taintedTruncated])).toEqual([
      [25, 20, true],
      [20, 20, false],
      [17, 17, false],
      [17, 17, false],
    ])
    const text = await runCli(['log', '-n', '1'], { cwd })
    expect(text.stdout.match(/^ {6}! /gm)).toHaveLength(20)
    expect(text.stdout).toMatch(/\n {6}… and 5 more\n/)
  })

  it('show, lineage and PROV agree: invalidated with its own reason, other causes too', async () => {
    const shown = await runCli(['show', `main:${SCAN2}`], { cwd })
    expect(shown.stderr).toBe(`warning: ${SCAN2} is INVALIDATED: ${SCAN_REASON}; also: ${CAL_REASON} (root cause ${cids.get(CAL)})\n`)

    const up = await runCli(['lineage', `main:${SCAN2}`], { cwd })
    expect(up.stdout.split('\n')[0]).toBe(`${SCAN2} [scan IN718-A3 ff-HEDM layer 2] (INVALIDATED: ${SCAN_REASON}; also: ${CAL_REASON} (root cause ${CAL}))`)
    expect(up.stdout.split('\n')[1]).toBe(`└─ calibration ← ${CAL} [calibration CeO2 calibration 11a] (INVALIDATED: ${CAL_REASON})`)

    const best = (await runJson<{ cid: string }>(['show', `main:${BEST}`, '--json'], { cwd })).json.cid
    const prov = await runCli(['lineage', `main:${BEST}`, '--format', 'prov-json', '--depth', '0'], { cwd })
    const model = (JSON.parse(prov.stdout) as { entity: Record<string, Record<string, unknown>> }).entity[`cid:${best}`]!
    expect(model['pedigree:taintReasons']).toEqual([CAL_REASON, SCAN_REASON, CONFIG_REASON])
    expect(model['pedigree:taintRoots']).toEqual([CAL, SCAN2, CONFIG].map((p) => ({ $: `cid:${cids.get(p)}`, type: 'prov:QUALIFIED_NAME' })))
  })

  it('lineage --down marks an older version of a path, and leaves out invalidation records', async () => {
    const before = await runJson<{ nodes: { paths: string[] }[] }>(['lineage', `main:${CAL}`, '--down', '--json'], { cwd })
    expect(before.json.nodes).toHaveLength(52 + 25)
    expect(before.json.nodes.some((n) => n.paths.some((p) => p.startsWith('invalidated/')))).toBe(false)

    // A new version of scan 1, calibrated with 12b.
    const old = await runJson<{ cid: string; value: Record<string, unknown> }>(['show', 'main:scan/aps-acq-2024-03/scan-0001.json', '--json'], { cwd })
    const scan1 = { ...old.json.value, calibration: { '@': 'main:calibration/aps-acq-2024-03/cal-2024-03-12b.json' } }
    await writeFile(join(cwd, 'rescan.jsonl'), JSON.stringify(scan1) + '\n')
    const r = await runCli(['ingest', '-b', 'main', '--path-template', template, 'rescan.jsonl'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    const now = await runCli(['show', 'main:scan/aps-acq-2024-03/scan-0001.json'], { cwd })
    expect(now.stderr).toBe('')

    const text = await runCli(['lineage', `main:${CAL}`, '--down', '--depth', '1'], { cwd })
    const lines = text.stdout.split('\n').filter((l) => l.includes('scan-0001.json'))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain(`─ calibration → scan/aps-acq-2024-03/scan-0001.json @ ${old.json.cid.slice(0, 16)} (not the version in main) [scan IN718-A3 ff-HEDM layer 1] (TAINTED: ${CAL_REASON} (root cause ${CAL}))`)
  })
})
