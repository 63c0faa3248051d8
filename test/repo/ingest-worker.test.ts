import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeNode } from '../../src/codec/block.js'
import { cidToString } from '../../src/codec/cid.js'
import { CHUNK_LINES, compileTemplate, encodeLines } from '../../src/repo/ingest-line.js'
import type { IngestReject, IngestResult } from '../../src/repo/ingest.js'
import { Repository } from '../../src/repo/repository.js'

// Ingest parses, encodes and hashes lines on a worker thread, whose module exists only in the
// build (dist/, made by `npm test` before vitest runs). These tests run the built library with
// its worker beside the sources' ingest (which, finding no worker module, encodes on the main
// thread), over one input that has every kind of line, and compare what each committed.

const DIST = join(import.meta.dirname, '../../dist')
const built = existsSync(join(DIST, 'repo/ingest-worker.js')) && existsSync(join(DIST, 'chunks/ingest-worker.js'))
const author = { name: 'flow' }
const template = 'tasks/{wf}/{id}.json'

/** A record already in both stores, that lines link to (a link must name a block in the store). */
const calibration = { kind: 'calibration', gain: 1.5 }
const calibrationCid = cidToString(encodeNode(calibration).cid)
const ghost = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

/** 3000 lines over several chunks: plain records, links, references, bad lines, blanks, a path seen twice. */
function input(): string[] {
  const lines: string[] = []
  for (let i = 0; i < 3000; i++) {
    const wf = `wf-${Math.floor(i / 700)}`
    const base = { wf, id: `t${i}`, loss: 1 / (i + 1), params: { lr: 0.001 * (i % 7), layers: [i % 3, 4] } }
    if (i === 10 || i === 1500) lines.push('')
    else if (i === 77) lines.push('{"wf": "wf-0", "id": ') // malformed
    else if (i === 600) lines.push(JSON.stringify({ wf }))
    else if (i % 250 === 3) lines.push(JSON.stringify({ ...base, used: { '/': calibrationCid } }))
    else if (i === 900) lines.push(JSON.stringify({ ...base, used: { '/': ghost } }))
    // A reference to a record of the same batch, and one written escaped.
    else if (i % 400 === 5) lines.push(JSON.stringify({ ...base, after: { '@': `main:tasks/${wf}/t${i - 1}.json` } }))
    else if (i === 2222) lines.push(`{"wf": "${wf}", "id": "t${i}", "after": {"\\u0040": "main:tasks/${wf}/t${i - 2}.json"}}`)
    // The same path again (a task's status, updated): ends its batch.
    else if (i === 1234) lines.push(JSON.stringify({ ...base, id: 't1233', status: 'done' }))
    else if (i === 2500) lines.push(JSON.stringify({ ...base, big: 1e999 }).replace('null', '1e999'))
    else lines.push(JSON.stringify(base))
  }
  return lines
}

async function* from(lines: readonly string[]): AsyncGenerator<string> {
  yield* lines
}

interface Outcome {
  result: IngestResult
  rejects: IngestReject[]
  /** Each commit's tree, oldest first. */
  trees: string[]
  /** Paths of the records that link to the calibration (the reverse-link index). */
  downstream: string[]
}

/** Ingest `lines` into a fresh store through `Repo` (the sources' class or the build's), and read back what it committed. */
async function run(Repo: typeof Repository, dir: string, lines: readonly string[], options: { encodeOnWorker?: boolean } = {}): Promise<Outcome> {
  const repo = await Repo.init(join(dir, '.pedigree'))
  try {
    await repo.commit({ ref: 'main', author, time: 0, edits: [{ type: 'record', path: 'calibration.json', value: calibration }] })
    const rejects: IngestReject[] = []
    const result = await repo.ingest(from(lines), { ref: 'main', author, pathTemplate: template, batch: 400, skipBad: true, onReject: (r) => rejects.push(r), ...options })
    const trees: string[] = []
    for await (const e of repo.log({ from: 'main' })) trees.unshift(cidToString(e.commit.tree))
    const lineage = await repo.lineage('main:calibration.json', { direction: 'down', depth: 1 })
    const downstream = lineage.nodes.filter((n) => n.depth === 1).map((n) => n.paths[0]!).sort()
    return { result, rejects, trees, downstream }
  } finally {
    await repo.close()
  }
}

describe.skipIf(!built)('ingest on its encoding worker (the build)', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pedigree-ingest-worker-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('encodes a full chunk on a worker thread, to the same bytes, CIDs, paths, links and errors as the main thread', async () => {
    const { lineEncoder } = (await import(join(DIST, 'repo/ingest-line.js'))) as typeof import('../../src/repo/ingest-line.js')
    const lines = input().slice(0, CHUNK_LINES)
    const encoder = lineEncoder(template)
    try {
      const chunk = await encoder.run({ lines, firstLine: 1 }, { startWorker: true })
      expect(encoder.onWorkerThread).toBe(true)
      expect(chunk).toEqual(encodeLines(lines, 1, compileTemplate(template)))
      expect(chunk.errors.map((e) => e.index)).toEqual([77])
      expect(chunk.links.length).toBeGreaterThan(0)
    } finally {
      await encoder.close()
    }
  })

  it('commits the same trees, rejects and reverse links as ingest on the main thread', async () => {
    const { Repository: BuiltRepository } = (await import(join(DIST, 'index.js'))) as { Repository: typeof Repository }
    const lines = input()
    const onWorker = await run(BuiltRepository, join(dir, 'worker'), lines)
    const here = await run(Repository, join(dir, 'here'), lines)
    const builtHere = await run(BuiltRepository, join(dir, 'built-here'), lines, { encodeOnWorker: false })

    expect(onWorker.result.lines).toBe(3000)
    expect(onWorker.rejects.map((r) => r.line)).toEqual([78, 601, 901, 2501])
    expect(onWorker.rejects[0]!.text).toBe(lines[77])
    expect(onWorker.rejects[2]!.error).toContain(ghost)
    // The path seen twice ends a batch; the lines after it start the next.
    expect(onWorker.result.commits.some((c) => c.lastLine === 1234)).toBe(true)
    expect(onWorker.downstream).toHaveLength(12)

    for (const other of [here, builtHere]) {
      expect(other.trees).toEqual(onWorker.trees)
      expect(other.rejects).toEqual(onWorker.rejects)
      expect(other.downstream).toEqual(onWorker.downstream)
      expect(other.result.commits.map((c) => [c.records, c.firstLine, c.lastLine])).toEqual(onWorker.result.commits.map((c) => [c.records, c.firstLine, c.lastLine]))
      expect([other.result.records, other.result.rejected]).toEqual([onWorker.result.records, onWorker.result.rejected])
    }
  })
})
