import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { buildFixtureStore, FIXTURE_PATHS, type FixtureStore } from '../../fixtures/build-fixture-store.js'
import { cidToString } from '../../src/codec/cid.js'
import { NotFoundError } from '../../src/errors.js'
import { lineageText } from '../../src/repo/graph-format.js'
import { markTainted, type MarkedLogEntry } from '../../src/repo/log-taint.js'
import type { QueryRow } from '../../src/repo/query.js'
import type { TaintedEntry } from '../../src/repo/tainted.js'
import { collect, levelRepo, type RepoFixture } from './fixture.js'

// The QA story on the fixture campaign: calibration 11a is found wrong, then scan 2 (which
// used 11a) on its own account, then the base config of the training, in that order.
const who = { name: 'qa', email: 'qa@example.org' }
const T = Date.UTC(2024, 3, 1, 12, 0, 0)
const CAL_REASON = 'beam centre off by 2.6 px: detector moved after calibration'
const SCAN_REASON = 'sample slipped during scan 2'
const CONFIG_REASON = 'learning rate off by 10x'
const SCAN2 = 'scan/aps-acq-2024-03/scan-0002.json'

/** Downstream of calibration 11a, itself included: 16 train scans, 12 trials, the selection, 2 models, 2 evaluations, 18 metrics. */
const CAL_DOWNSTREAM = 1 + 16 + 12 + 1 + 2 + 2 + 18
/** Downstream of the base config, itself included: the search config, 12 trials, the selection, 2 models, 2 evaluations, 18 metrics. */
const CONFIG_DOWNSTREAM = 1 + 1 + 12 + 1 + 2 + 2 + 18

describe('taint with several invalidations (fixture campaign, LevelDB)', () => {
  let fx: RepoFixture
  let store: FixtureStore
  const cid = (path: string): string => cidToString(store.paths.get(path)!)
  const invalidate = (path: string, reason: string, minutes: number) => fx.repo.invalidate(`main:${path}`, { reason, who, time: T + minutes * 60_000 })
  const byPath = (list: TaintedEntry[]): Map<string, TaintedEntry> => new Map(list.map((t) => [t.path, t]))
  const queryRows = async (filter: Record<string, unknown>): Promise<QueryRow[]> => collect(fx.repo.query('main', { filter }))

  beforeEach(async () => {
    fx = await levelRepo()
    store = await buildFixtureStore(fx.repo)
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  it('an entry invalidated itself is INVALIDATED by its own reason everywhere, even downstream of an earlier invalidation', async () => {
    await invalidate(FIXTURE_PATHS.badCalibration, CAL_REASON, 0)
    await invalidate(SCAN2, SCAN_REASON, 1)
    const cal = cid(FIXTURE_PATHS.badCalibration)
    const scan2 = cid(SCAN2)

    // tainted (the reverse-index walk)
    const list = await fx.repo.tainted('main')
    expect(list).toHaveLength(CAL_DOWNSTREAM)
    const own = byPath(list).get(SCAN2)!.taint
    expect(own).toMatchObject({ root: scan2, reason: SCAN_REASON, roots: [scan2, cal] })
    expect(own.causes.map((c) => c.reason)).toEqual([SCAN_REASON, CAL_REASON])

    // query's _tainted and log's marks come from the same walk
    const [row] = await queryRows({ _path: SCAN2 })
    expect(row!._tainted).toEqual(own)
    const marks = (await collect(markTainted(fx.repo, fx.repo.log()))).flatMap((e) => e.tainted ?? [])
    expect(marks.find((t) => t.path === SCAN2)!.taint).toEqual(own)

    // show and lineage (the upstream walk) say the same of every tainted entry
    for (const t of list) {
      const shown = await fx.repo.show(`main:${t.path}`)
      expect(shown.type === 'record' && shown.tainted, t.path).toEqual(t.taint)
    }
    const graph = await fx.repo.lineage(`main:${SCAN2}`)
    expect(graph.nodes.find((n) => n.cid === scan2)!.tainted).toEqual(own)
    expect(lineageText(graph).split('\n')[0]).toBe(
      `${SCAN2} [scan IN718-A3 ff-HEDM layer 2] (INVALIDATED: ${SCAN_REASON}; also: ${CAL_REASON} (root cause ${FIXTURE_PATHS.badCalibration}))`,
    )
  })

  it('keeps every root cause of an entry, the earliest invalidation as the primary one', async () => {
    await invalidate(FIXTURE_PATHS.badCalibration, CAL_REASON, 0)
    await invalidate(SCAN2, SCAN_REASON, 1)
    await invalidate(FIXTURE_PATHS.baseConfig, CONFIG_REASON, 2)
    const cal = cid(FIXTURE_PATHS.badCalibration)
    const scan2 = cid(SCAN2)
    const config = cid(FIXTURE_PATHS.baseConfig)

    const list = await fx.repo.tainted('main')
    expect(list).toHaveLength(CAL_DOWNSTREAM + 2) // and the two configs
    const entries = byPath(list)
    // Trials, models, evaluations and metrics used the scans (2 among them) and the config.
    for (const path of [FIXTURE_PATHS.winningTask, FIXTURE_PATHS.bestModel, FIXTURE_PATHS.evalBestSummary]) {
      const taint = entries.get(path)!.taint
      expect(taint.roots, path).toEqual([cal, scan2, config])
      expect(taint.causes.map((c) => c.reason)).toEqual([CAL_REASON, SCAN_REASON, CONFIG_REASON])
      expect(taint).toMatchObject({ root: cal, reason: CAL_REASON })
    }
    expect(entries.get(FIXTURE_PATHS.searchConfig)!.taint.roots).toEqual([config])
    expect(entries.get(FIXTURE_PATHS.firstTrainScan)!.taint.roots).toEqual([cal])
    expect(entries.has(FIXTURE_PATHS.firstTestScan)).toBe(false)
    expect(entries.has(FIXTURE_PATHS.goodCalibration)).toBe(false)

    const rootsOf = (root: string): number => list.filter((t) => t.taint.roots.includes(root)).length
    expect(rootsOf(cal)).toBe(CAL_DOWNSTREAM)
    expect(rootsOf(config)).toBe(CONFIG_DOWNSTREAM)

    // query: `_tainted.roots` matches every entry a root reaches, `_tainted.root` the primary one
    expect(await queryRows({ '_tainted.roots': cal })).toHaveLength(CAL_DOWNSTREAM)
    expect(await queryRows({ '_tainted.root': cal })).toHaveLength(CAL_DOWNSTREAM - 1) // scan 2 has its own
    expect(await queryRows({ '_tainted.roots': config })).toHaveLength(CONFIG_DOWNSTREAM)

    // tainted, by root cause: REV:PATH, CID, or a 12+ character prefix of it
    const byConfig = await fx.repo.tainted('main', { root: `main:${FIXTURE_PATHS.baseConfig}` })
    expect(byConfig.map((t) => t.path)).toEqual(list.filter((t) => t.taint.roots.includes(config)).map((t) => t.path))
    expect(await fx.repo.tainted('main', { root: cal.slice(0, 20) })).toHaveLength(CAL_DOWNSTREAM)
    expect(await fx.repo.tainted('main', { root: scan2 })).toHaveLength(1 + 12 + 1 + 2 + 2 + 18)
    await expect(fx.repo.tainted('main', { root: `main:${FIXTURE_PATHS.firstTrainScan}` })).rejects.toThrow(NotFoundError)

    // lineage of the best model names all three upstream
    const graph = await fx.repo.lineage(`main:${FIXTURE_PATHS.bestModel}`)
    expect(graph.nodes.find((n) => n.depth === 0)!.tainted!.roots).toEqual([cal, scan2, config])
    expect(lineageText(graph).split('\n')[0]).toContain(
      `(TAINTED: ${CAL_REASON} (root cause ${FIXTURE_PATHS.badCalibration}); also: ${SCAN_REASON} (root cause ${SCAN2}); also: ${CONFIG_REASON} (root cause ${FIXTURE_PATHS.baseConfig}))`,
    )
  })

  it('log counts every tainted entry of a commit, listing the first 20 and saying when there are more', async () => {
    await invalidate(FIXTURE_PATHS.badCalibration, CAL_REASON, 0)
    // 25 records that used the calibration, in one commit
    const edits = Array.from({ length: 25 }, (_, i) => ({
      type: 'record' as const,
      path: `derived/d${String(i).padStart(2, '0')}.json`,
      value: { type: 'task', used: store.paths.get(FIXTURE_PATHS.badCalibration)! },
    }))
    await fx.repo.commit({ ref: 'main', author: who, time: T + 3_600_000, message: 'derived', edits })

    const counts = (e: MarkedLogEntry) => [e.commit.message.split(':')[0], e.taintedCount, e.tainted?.length, e.taintedTruncated]
    expect((await collect(markTainted(fx.repo, fx.repo.log()))).map(counts)).toEqual([
      ['derived', 25, 20, true],
      ['ingest 3-evaluation.jsonl', 20, 20, false], // all 20 of its records, and no more
      ['ingest 2-training.jsonl', 15, 15, false],
      ['ingest 1-acquisition.jsonl', 17, 17, false],
    ])
  })

  it('lineage downstream marks older versions of a path and leaves out invalidation records', async () => {
    await invalidate(FIXTURE_PATHS.badCalibration, CAL_REASON, 0)
    const cal = cid(FIXTURE_PATHS.badCalibration)
    const before = await fx.repo.lineage(`main:${FIXTURE_PATHS.badCalibration}`, { direction: 'down' })
    // What derives from the calibration, and nothing else: every node is tainted.
    expect(before.nodes).toHaveLength(CAL_DOWNSTREAM)
    expect(before.nodes.every((n) => n.tainted)).toBe(true)
    expect(before.nodes.some((n) => n.otherVersion)).toBe(false)
    expect(before.edges.some((e) => e.relation === 'target')).toBe(false)
    expect(lineageText(before).split('\n')[0]).toBe(`${FIXTURE_PATHS.badCalibration} [calibration CeO2 calibration 11a] (INVALIDATED: ${CAL_REASON})`)

    // Scan 1 recalibrated with 12b: a new version at the same path.
    const old = await fx.repo.show(`main:${FIXTURE_PATHS.firstTrainScan}`)
    if (old.type !== 'record') throw new Error('scan 1 is a record')
    const value = { ...old.value, calibration: store.paths.get(FIXTURE_PATHS.goodCalibration)! }
    await fx.repo.commit({ ref: 'main', author: who, time: T + 3_600_000, message: 'recalibrate scan 1', edits: [{ type: 'record', path: FIXTURE_PATHS.firstTrainScan, value }] })
    const now = await fx.repo.show(`main:${FIXTURE_PATHS.firstTrainScan}`)
    expect(now.type === 'record' && now.tainted).toBeUndefined()
    expect((await fx.repo.tainted('main')).map((t) => t.path)).not.toContain(FIXTURE_PATHS.firstTrainScan)

    const after = await fx.repo.lineage(`main:${FIXTURE_PATHS.badCalibration}`, { direction: 'down', depth: 1 })
    expect(after.rev).toBe('main')
    const oldScan = cidToString(old.cid)
    const others = after.nodes.filter((n) => n.otherVersion).map((n) => n.cid)
    expect(others).toEqual([oldScan])
    expect(after.nodes.find((n) => n.cid === oldScan)!.paths).toEqual([FIXTURE_PATHS.firstTrainScan])
    const text = lineageText(after)
    expect(text).toContain(`calibration → ${FIXTURE_PATHS.firstTrainScan} @ ${oldScan.slice(0, 16)} (not the version in main) [scan IN718-A3 ff-HEDM layer 1] (TAINTED: `)
    // Named by CID, there is no revision to compare with.
    const byCid = await fx.repo.lineage(cal, { direction: 'down', depth: 1 })
    expect(byCid.rev).toBeUndefined()
    expect(byCid.nodes.some((n) => n.otherVersion)).toBe(false)
  })
})
