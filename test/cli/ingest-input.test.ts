import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { refState, removeDir, runCli, runJson, tempDir } from './run-cli.js'

// What a user sees when ingest (and commit --record) get input they should not accept as it
// is, and when an ingest is run again.

let cwd: string
beforeEach(async () => {
  cwd = await tempDir('ingest-input')
  expect((await runCli(['init'], { cwd })).code).toBe(0)
  // main exists, so that "the store is unchanged" is a ref state to compare.
  expect((await runCli(['commit', '-m', 'start', '--record', 'start.json=-'], { cwd, input: '{"a":1}' })).code).toBe(0)
})
afterEach(async () => {
  await removeDir(cwd)
})

const lines = (...records: unknown[]): string => records.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n'
const nested = (arrays: number, id: string): string => `{"deep":${'['.repeat(arrays)}${']'.repeat(arrays)},"id":"${id}"}`

describe('ingest run again', () => {
  it('on a branch that has the input commits nothing and leaves the tip where it was', async () => {
    const file = join(cwd, 'again.jsonl')
    await writeFile(
      file,
      lines({ id: 't1', status: 'running' }, { id: 't2', status: 'running' }, { id: 't1', status: 'done' }, { id: 't1', status: 'done' }, { id: 't3', status: 'done' }),
    )
    const args = ['ingest', '-b', 'again', '--path-template', 'tasks/{id}.json', file]
    const first = await runCli(args, { cwd })
    expect(first.stdout).toContain('ingested 5 records from 5 lines in 3 commit(s) on again')
    const tip = (await runCli(['ref', 'list', '--json'], { cwd })).stdout
    const second = await runCli(args, { cwd })
    expect(second.code, second.stderr).toBe(0)
    expect(second.stdout).toBe(
      'ingested 0 records from 5 lines in 0 commit(s) on again\nskipped lines 1–5 (5 records in 3 commit(s)): again has them from an earlier ingest of this input\n',
    )
    expect((await runCli(['ref', 'list', '--json'], { cwd })).stdout).toBe(tip)
    expect(JSON.parse((await runCli(['show', 'again:tasks/t1.json'], { cwd })).stdout)).toEqual({ id: 't1', status: 'done' })
  })
})

describe('ingest path templates', () => {
  it.each([
    ['{id', "path template '{id' has a '{' at character 1 that is not closed by '}'"],
    ['tasks/{wf/{id}.json', "path template 'tasks/{wf/{id}.json' has a '{' at character 7 that is not closed by '}'"],
    ['tasks/id}.json', "path template 'tasks/id}.json' has a '}' at character 9 with no '{' before it"],
    ['tasks/{}.json', "path template 'tasks/{}.json' has an empty field name '{}' at character 7"],
    ['{a..b}', "path template '{a..b}' has a field '{a..b}' with an empty name between its dots"],
    ['/tasks/{id}', "path template '/tasks/{id}' cannot give a valid tree path: invalid tree path '/tasks/x': it is absolute"],
    ['tasks.json', "path template 'tasks.json' has no {field}: every record would land on one path"],
  ])('%s is refused before anything is read or written, exit 2', async (template, message) => {
    const file = join(cwd, 'in.jsonl')
    await writeFile(file, lines({ id: 'a' }, { id: 'b' }))
    const before = await refState(cwd)
    const r = await runJson(['ingest', '--skip-bad', '--path-template', template, file, '--json'], { cwd })
    expect(r.code).toBe(2)
    expect(r.json.error).toMatchObject({ code: 'ERR_INVALID_INPUT', message })
    expect(await refState(cwd)).toEqual(before)
    expect(existsSync(`${file}.rejects.jsonl`)).toBe(false)
  })

  it('with --skip-bad, every line rejected exits 2 and says why; some rejected is still a success', async () => {
    const file = join(cwd, 'in.jsonl')
    await writeFile(file, lines({ x: 1 }, { x: 2 }))
    const before = await refState(cwd)
    const all = await runCli(['ingest', '--skip-bad', '--path-template', '{id}.json', file], { cwd })
    expect(all.code).toBe(2)
    expect(all.stdout).toContain('ingested 0 records from 2 lines in 0 commit(s) on main')
    expect(all.stderr).toBe(
      `error: every line was rejected (2 in ${file}.rejects.jsonl; the first, line 1: the path template needs field 'id', which this record lacks); nothing was committed\n`,
    )
    expect(await refState(cwd)).toEqual(before)
    expect((await readFile(`${file}.rejects.jsonl`, 'utf8')).trim().split('\n')).toHaveLength(2)

    await writeFile(file, lines({ x: 1 }, { id: 'b' }))
    const some = await runCli(['ingest', '--skip-bad', '--path-template', '{id}.json', file], { cwd })
    expect(some.code, some.stderr).toBe(0)
    expect(some.stdout).toContain('1 bad line(s) written to')
  })
})

describe('ingest and commit --record refuse what would not come back as written', () => {
  it('a record nested too deep is a bad line naming its line and the limit; --skip-bad goes on', async () => {
    const file = join(cwd, 'deep.jsonl')
    await writeFile(file, lines(nested(511, 'ok'), nested(2500, 'd2500'), nested(10_000, 'd10000'), { id: 'after' }))
    const before = await refState(cwd)
    const stop = await runCli(['ingest', '-b', 'main', '--path-template', '{id}.json', file], { cwd })
    expect(stop.code).toBe(2)
    expect(stop.stderr).toBe(
      'error: line 2: the input: objects and arrays nested more than 512 deep (under "deep"); a record may nest at most 512 levels; nothing of the open batch (lines 1–2) was committed\n',
    )
    expect(await refState(cwd)).toEqual(before)

    const go = await runJson<{ records: number; rejected: number }>(['ingest', '-b', 'main', '--skip-bad', '--path-template', '{id}.json', file, '--json'], { cwd })
    expect(go.code, go.stderr).toBe(0)
    expect(go.json).toMatchObject({ records: 2, rejected: 2 })
    const rejects = (await readFile(`${file}.rejects.jsonl`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { line: number; error: string })
    expect(rejects.map((r) => [r.line, r.error])).toEqual([
      [2, 'the input: objects and arrays nested more than 512 deep (under "deep"); a record may nest at most 512 levels'],
      [3, 'the input: objects and arrays nested more than 512 deep (under "deep"); a record may nest at most 512 levels'],
    ])
  })

  it('a record at the depth limit reads back through show, checkout, diff and query', async () => {
    const file = join(cwd, 'deep.jsonl')
    await writeFile(file, lines(nested(511, 'ok')))
    expect((await runCli(['ingest', '-b', 'main', '--path-template', '{id}.json', file], { cwd })).code).toBe(0)
    const show = await runCli(['show', 'main:ok.json'], { cwd })
    expect(show.code, show.stderr).toBe(0)
    expect(JSON.stringify(JSON.parse(show.stdout))).toBe(nested(511, 'ok'))
    const out = join(cwd, 'out')
    const co = await runCli(['checkout', 'main', '-o', out], { cwd })
    expect(co.code, co.stderr).toBe(0)
    expect(JSON.stringify(JSON.parse(await readFile(join(out, 'ok.json'), 'utf8')))).toBe(nested(511, 'ok'))
    // A second version, one level shallower, to diff against.
    await writeFile(file, lines(nested(510, 'ok')))
    expect((await runCli(['ingest', '-b', 'main', '--path-template', '{id}.json', file], { cwd })).code).toBe(0)
    const diff = await runCli(['diff', 'main~1', 'main'], { cwd })
    expect(diff.code, diff.stderr).toBe(0)
    expect(diff.stdout).toContain('ok.json')
    const query = await runJson<Array<{ id: string }>>(['query', 'main', '--filter', '{"id":"ok"}', '--json'], { cwd })
    expect(query.code, query.stderr).toBe(0)
    expect(query.json.map((r) => r.id)).toEqual(['ok'])
  })

  it('an integer beyond ±(2^53−1) is refused with its line and column, by ingest and by commit --record', async () => {
    const before = await refState(cwd)
    const ingest = await runCli(['ingest', '-b', 'main', '--path-template', '{id}.json', '-'], { cwd, input: lines({ id: 'ok' }, '{"id":"a","big":9007199254740993}') })
    expect(ingest.code).toBe(2)
    expect(ingest.stderr).toBe(
      'error: the input: line 2, column 17: the integer 9007199254740993 is beyond ±(2^53−1) and would not be stored exactly; write it as a string ("9007199254740993"); nothing of the open batch (lines 1–2) was committed\n',
    )
    const file = join(cwd, 'big.json')
    await writeFile(file, '{\n  "a": 1,\n  "n": 18446744073709551616\n}\n')
    const commit = await runCli(['commit', '-m', 'x', '--record', `r.json=${file}`], { cwd })
    expect(commit.code).toBe(2)
    expect(commit.stderr).toBe(
      `error: ${file}: line 3, column 8: the integer 18446744073709551616 is beyond ±(2^53−1) and would not be stored exactly; write it as a string ("18446744073709551616")\n`,
    )
    expect(await refState(cwd)).toEqual(before)
    // Written as a string, it is kept exactly.
    const asString = await runCli(['ingest', '-b', 'main', '--path-template', '{id}.json', '-'], { cwd, input: lines({ id: 'a', big: '9007199254740993' }) })
    expect(asString.code, asString.stderr).toBe(0)
    expect(JSON.parse((await runCli(['show', 'main:a.json'], { cwd })).stdout)).toEqual({ id: 'a', big: '9007199254740993' })
  })

  it('a null line is called null', async () => {
    const r = await runCli(['ingest', '--path-template', '{id}.json', '-'], { cwd, input: 'null\n' })
    expect(r.code).toBe(2)
    expect(r.stderr).toBe('error: line 1: the input: a record must be a JSON object, got null; nothing of the open batch (lines 1–1) was committed\n')
  })
})
