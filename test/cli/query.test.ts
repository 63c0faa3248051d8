import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cidToString, type CID } from '../../src/codec/cid.js'
import { Repository } from '../../src/repo/repository.js'
import { refState, removeDir, runCli, runJson, tempDir } from './run-cli.js'

/**
 * `pedigree query` as a user runs it: a store of task records (built through the library,
 * closed, then queried by real processes), every output format parsed back, and bad input
 * refused with exit code 2 and the store untouched.
 */

const N = 60
const CAMPAIGNS = ['c1', 'c2', 'c3']

interface Task {
  path: string
  value: { type: string; task_id: number; campaign_id: string; metrics: { loss: number; epochs: number }; note: string; used: CID }
}

/** Notes that a CSV writer must quote: a comma and quotes, and a line break. */
const noteOf = (i: number): string => (i % 5 === 0 ? 'said "hi", then left' : i % 7 === 0 ? 'two\nlines' : 'plain')

let dir: string
let data: Task[]
let dataset: string

const run = (args: string[]) => runCli(['query', ...args], { cwd: dir })
const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '')

/** RFC 4180, as a reader would parse it: quoted fields may hold commas, "" and line breaks. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let field = ''
  let quoted = false
  const endField = (): void => {
    row.push(field)
    field = ''
  }
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"'
        i++
      } else if (c === '"') quoted = false
      else field += c
    } else if (c === '"') quoted = true
    else if (c === ',') endField()
    else if (c === '\r' && text[i + 1] === '\n') {
      endField()
      rows.push(row)
      row = []
      i++
    } else field += c
  }
  if (field !== '' || row.length > 0) {
    endField()
    rows.push(row)
  }
  return rows
}

beforeAll(async () => {
  dir = await tempDir('query')
  const repo = await Repository.init(join(dir, '.pedigree'))
  try {
    const author = { name: 'test' }
    await repo.commit({ ref: 'main', author, message: 'dataset', edits: [{ type: 'record', path: 'datasets/scan.json', value: { type: 'dataset', shots: 10 } }] })
    const used = (await repo.resolveEntry('main:datasets/scan.json')).entry.cid
    dataset = cidToString(used)
    data = Array.from({ length: N }, (_, i) => ({
      path: `tasks/${String(i).padStart(2, '0')}.json`,
      value: {
        type: 'task',
        task_id: i,
        campaign_id: CAMPAIGNS[i % 3]!,
        metrics: { loss: ((i * 17) % N) / 100 + 0.005, epochs: 1 + (i % 4) },
        note: noteOf(i),
        used,
      },
    }))
    await repo.commit({
      ref: 'main',
      author,
      message: 'tasks',
      edits: [
        ...data.map((t) => ({ type: 'record' as const, path: t.path, value: t.value })),
        { type: 'bytes', path: 'tasks/log.txt', bytes: new TextEncoder().encode('campaign_id c1\n') },
      ],
    })
  } finally {
    await repo.close()
  }
}, 60_000)

afterAll(() => removeDir(dir))

describe('pedigree query', { timeout: 30_000 }, () => {
  const FILTER = JSON.stringify({ 'metrics.loss': { $lt: 0.2 }, campaign_id: { $in: ['c1', 'c3'] } })
  const expected = (): Task[] => data.filter((t) => t.value.metrics.loss < 0.2 && ['c1', 'c3'].includes(t.value.campaign_id))

  it('--format json and --json print the matching records as a JSON array, links as CID strings', async () => {
    const r = await run(['--filter', FILTER, '--format', 'json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[]
    expect(expected().length).toBeGreaterThan(3)
    expect(rows.map((x) => x._path)).toEqual(expected().map((t) => t.path))
    expect(rows[0]).toMatchObject({ ...expected()[0]!.value, used: dataset, _path: expected()[0]!.path })
    expect(rows[0]!._cid).toMatch(/^bafy/)

    const j = await runJson(['query', '--filter', FILTER], { cwd: dir })
    expect(j.code).toBe(0)
    expect(j.json).toEqual(rows)
    const none = await runJson(['query', '--filter', '{"campaign_id": "nobody"}'], { cwd: dir })
    expect(none.json).toEqual([])
  })

  it('--format jsonl prints one record per line; links can be filtered on; files and other prefixes are left out', async () => {
    const r = await run(['main', '--prefix', 'tasks/', '--filter', JSON.stringify({ used: dataset, 'metrics.epochs': 2 }), '--format', 'jsonl'])
    expect(r.code, r.stderr).toBe(0)
    const rows = lines(r.stdout).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(rows.map((x) => x._path)).toEqual(data.filter((t) => t.value.metrics.epochs === 2).map((t) => t.path))
    const all = lines((await run(['--format', 'jsonl'])).stdout).map((l) => JSON.parse(l)._path as string)
    expect(all).toEqual(['datasets/scan.json', ...data.map((t) => t.path)])
    const tasksOnly = lines((await run(['--prefix', 'tasks/', '--format', 'jsonl', '--project', 'task_id'])).stdout)
    expect(tasksOnly).toHaveLength(N)
  })

  it('--format csv is RFC 4180: a header, then fields quoted when they hold a comma, a quote or a line break', async () => {
    const r = await run(['--prefix', 'tasks/', '--project', 'campaign_id,metrics.loss,note', '--sort', '-metrics.loss', '--format', 'csv'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('"said ""hi"", then left"')
    const [header, ...rows] = parseCsv(r.stdout)
    expect(header).toEqual(['_path', 'campaign_id', 'metrics.loss', 'note'])
    const sorted = [...data].sort((a, b) => b.value.metrics.loss - a.value.metrics.loss)
    expect(rows).toEqual(sorted.map((t) => [t.path, t.value.campaign_id, String(t.value.metrics.loss), t.value.note]))

    // Without --project: every top-level field, nested values as JSON.
    const plain = parseCsv((await run(['--filter', '{"task_id": 7}', '--format', 'csv'])).stdout)
    expect(plain).toHaveLength(2)
    const row = Object.fromEntries(plain[0]!.map((k, i) => [k, plain[1]![i]]))
    expect(row).toMatchObject({ _path: 'tasks/07.json', campaign_id: 'c2', note: 'two\nlines', used: dataset, task_id: '7' })
    expect(JSON.parse(row.metrics!)).toEqual(data[7]!.value.metrics)
  })

  it('--format table (the default) aligns the projected columns; without --project it shows _path and the scalar fields', async () => {
    const r = await run(['--project', 'campaign_id,metrics.loss', '--sort', '-metrics.loss', '--limit', '5'])
    expect(r.code, r.stderr).toBe(0)
    const out = lines(r.stdout)
    expect(out).toHaveLength(6)
    const top = [...data].sort((a, b) => b.value.metrics.loss - a.value.metrics.loss).slice(0, 5)
    expect(out.map((l) => l.split(/\s{2,}/))).toEqual([
      ['_path', 'campaign_id', 'metrics.loss'],
      ...top.map((t) => [t.path, t.value.campaign_id, String(t.value.metrics.loss)]),
    ])
    // Aligned: every column starts where its header does (the numbers end where theirs does).
    const start = out[0]!.indexOf('campaign_id')
    for (const l of out.slice(1)) expect(l.slice(start, start + 2)).toMatch(/^c\d$/)
    expect(new Set(out.map((l) => l.length)).size).toBe(1)

    const plain = lines((await run(['--filter', '{"task_id": {"$lt": 3}}'])).stdout)
    const header = plain[0]!.split(/\s+/)
    expect(header[0]).toBe('_path')
    expect(header).toEqual(expect.arrayContaining(['campaign_id', 'task_id', 'note', 'used', 'type']))
    expect(header).not.toContain('metrics')
    expect(header).not.toContain('_cid')
    expect(plain).toHaveLength(4)
  })

  it('--aggregate groups the filtered records; --sort and --limit apply to its output', async () => {
    const pipeline = JSON.stringify([{ $group: { _id: '$campaign_id', loss: { $avg: '$metrics.loss' }, n: { $sum: 1 } } }])
    const j = await runJson(['query', '--filter', '{"type": "task"}', '--aggregate', pipeline, '--sort', '-_id', '--limit', '2'], { cwd: dir })
    expect(j.code).toBe(0)
    const groups = j.json as { _id: string; loss: number; n: number }[]
    expect(groups.map((g) => g._id)).toEqual(['c3', 'c2'])
    for (const g of groups) {
      const mine = data.filter((t) => t.value.campaign_id === g._id)
      expect(g.n).toBe(mine.length)
      expect(g.loss).toBeCloseTo(mine.reduce((s, t) => s + t.value.metrics.loss, 0) / mine.length, 12)
    }
    const table = lines((await run(['--prefix', 'tasks/', '--aggregate', pipeline, '--sort', '_id'])).stdout)
    expect(table.map((l) => l.trim().split(/\s+/)[0])).toEqual(['_id', 'c1', 'c2', 'c3'])
  })

  it('refuses bad input with exit code 2 and a message naming the problem, and leaves the store unchanged', async () => {
    const before = await refState(dir)

    const badJson = await run(['--filter', '{"metrics.loss": {"$lt": 0.2}'])
    expect(badJson.code).toBe(2)
    expect(badJson.stdout).toBe('')
    expect(badJson.stderr).toMatch(/^error: --filter is not valid JSON: line 1, column \d+ \(position \d+\)/)

    const bogus = await run(['--filter', '{"a": {"$bogus": 1}}'])
    expect(bogus.code).toBe(2)
    expect(bogus.stderr).toContain('unknown query operator $bogus')
    const bogusJson = await runJson(['query', '--filter', '{"a": {"$bogus": 1}}'], { cwd: dir })
    expect(bogusJson.code).toBe(2)
    expect(bogusJson.json.error).toMatchObject({ code: 'ERR_INVALID_INPUT', data: { option: 'filter', operator: '$bogus' } })

    const stage = await run(['--aggregate', '[{"$bogus": {}}]'])
    expect(stage.code).toBe(2)
    expect(stage.stderr).toMatch(/aggregation pipeline.*\$bogus/)
    const notArray = await run(['--aggregate', '{"$group": {"_id": 1}}'])
    expect(notArray.code).toBe(2)
    expect(notArray.stderr).toContain('--aggregate must be a JSON array')
    const badProject = await run(['--project', '{"a": 1, "b": 0}'])
    expect(badProject.code).toBe(2)
    expect(badProject.stderr).toContain('invalid projection')

    const sort = await run(['--sort', '-'])
    expect(sort.code).toBe(2)
    expect(sort.stderr).toContain("bad sort '-'")
    for (const limit of ['-1', 'ten']) {
      const r = await run(['--limit', limit])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain(`--limit`)
      expect(r.stderr).toContain(limit)
    }
    const format = await run(['--format', 'xml'])
    expect(format.code).toBe(2)
    expect(format.stderr).toContain('xml')

    const rev = await run(['nope', '--filter', '{}'])
    expect(rev.code).toBe(3)
    expect(rev.stderr).toContain('revision not found: nope')

    expect(await refState(dir)).toEqual(before)
  })
})
