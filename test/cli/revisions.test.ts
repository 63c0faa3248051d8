import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatRecordJson } from '../../src/model/record.js'
import { Repository } from '../../src/repo/repository.js'
import { pseudoRandom } from '../helpers/random.js'
import { refState, removeDir, runCli, runJson, tempDir } from './run-cli.js'

/**
 * Revisions as a user writes them: names that read as CIDs, malformed revisions, folders,
 * a fresh store, and `show` of whatever a CID names (record, file, annotated tag).
 */

const EXIT = { invalid: 2, notFound: 3 } as const
/** A file of several chunks: a file node, not one raw block. */
const WEIGHTS = Buffer.from(pseudoRandom(11, 2 * 1024 * 1024 + 5))
const RECORD = { lr: 0.1, run: { '/': '' } }

let dir: string
let repo: string
let c1: string
let c2: string
let recordCid: string
let smallCid: string
let weightsCid: string
let baseline: { refs: string; reflog: string }

beforeAll(async () => {
  dir = await tempDir('revisions')
  repo = join(dir, 'repo')
  await mkdir(join(repo, 'config'), { recursive: true })
  await writeFile(join(repo, 'config', 'notes.txt'), 'calibration notes\n')
  await writeFile(join(repo, 'weights.bin'), WEIGHTS)
  expect((await runCli(['init'], { cwd: repo })).code).toBe(0)
  const first = await runJson(['commit', 'config', 'weights.bin', '-m', 'one'], { cwd: repo })
  expect(first.code, first.stderr).toBe(0)
  c1 = first.json.cid
  const ls = await runJson(['ls', 'main'], { cwd: repo })
  smallCid = ls.json.find((e: { path: string }) => e.path === 'config/notes.txt').cid
  weightsCid = ls.json.find((e: { path: string }) => e.path === 'weights.bin').cid
  // A record linking to the file, the way provenance is written.
  RECORD.run = { '/': weightsCid }
  const second = await runJson(['commit', '--record', 'config/train.json=-', '-m', 'two'], { cwd: repo, input: JSON.stringify(RECORD) })
  expect(second.code, second.stderr).toBe(0)
  c2 = second.json.cid
  recordCid = (await runJson(['ls', 'main', 'config/train.json'], { cwd: repo })).json[0].cid
  expect((await runCli(['tag', 'v1', 'main~1', '-m', 'first release\nwith notes'], { cwd: repo })).code).toBe(0)
  baseline = await refState(repo)
}, 60_000)

afterAll(() => removeDir(dir))

describe('ref names that read as CIDs', { timeout: 30_000 }, () => {
  it('are refused (2, ERR_INVALID_REF_NAME) by ref set, commit -b and tag, and nothing moves', async () => {
    const prefix = c1.slice(0, 16)
    for (const args of [
      ['ref', 'set', c1, 'main'],
      ['ref', 'set', prefix, 'main'],
      ['commit', '-b', prefix, '--allow-empty', '-m', 'x'],
      ['tag', prefix, 'main'],
      ['tag', prefix, 'main', '-m', 'annotated'],
    ]) {
      const r = await runJson(args, { cwd: repo })
      expect(r.code, args.join(' ')).toBe(EXIT.invalid)
      expect(r.json.error.code).toBe('ERR_INVALID_REF_NAME')
      expect(r.json.error.message).toContain('reads as a CID')
    }
    expect(await refState(repo)).toEqual(baseline)
    // The prefix still names the commit.
    const log = await runJson(['log', prefix, '-n', '1'], { cwd: repo })
    expect(log.json[0].cid).toBe(c1)
  })

  it('one already in an older store hides nothing, and ref delete removes it', async () => {
    const prefix = c1.slice(0, 16)
    const store = await Repository.open(repo)
    try {
      // Below the refs layer, as a version without the rule could have written it.
      const planted = await store.store.refs.compareAndSwap(prefix, { old: null, new: c2, who: { name: 'old' }, time: Date.now(), message: 'older version' })
      expect(planted).toBe(true)
    } finally {
      await store.close()
    }
    const log = await runJson(['log', prefix, '-n', '1'], { cwd: repo })
    expect(log.json[0].cid).toBe(c1)
    const shown = await runJson(['show', prefix], { cwd: repo })
    expect(shown.json.cid).toBe(c1)
    const del = await runCli(['ref', 'delete', prefix], { cwd: repo })
    expect(del.code, del.stderr).toBe(0)
    expect(del.stdout).toContain(`deleted ${prefix} (was ${c2})`)
    expect((await runJson(['ref', 'list'], { cwd: repo })).json.map((r: { name: string }) => r.name)).not.toContain(prefix)
    expect((await refState(repo)).refs).toBe(baseline.refs)
  })
})

describe('malformed revisions are invalid input (2), not "not found" (3)', { timeout: 30_000 }, () => {
  it.each([
    ['main@{-1}', "'@{-1}' is not @{N}"],
    ['main@{x}', "'@{x}' is not @{N}"],
    ['main~-1', "'~-1' is not ~N or ^N"],
    ['main~1@{1}', '@{N} goes right after the ref name'],
  ])('%s', async (rev, detail) => {
    for (const cmd of [['log', rev], ['show', rev], ['show', `${rev}:config/train.json`], ['ls', rev]]) {
      const r = await runCli(cmd, { cwd: repo })
      expect(r.code, `${cmd.join(' ')}\n${r.stderr}`).toBe(EXIT.invalid)
      expect(r.stderr).toContain(`malformed revision '${rev}'`)
      expect(r.stderr).toContain(detail)
      expect(r.stdout).toBe('')
    }
    const json = await runJson(['log', rev], { cwd: repo })
    expect(json.json.error).toMatchObject({ code: 'ERR_INVALID_INPUT', data: { rev } })
  })
})

describe('show', { timeout: 30_000 }, () => {
  it('of a folder says it is a folder and how to list it (2)', async () => {
    for (const spec of ['main:config', 'main:config/']) {
      const r = await runCli(['show', spec], { cwd: repo })
      expect(r.code, r.stderr).toBe(EXIT.invalid)
      expect(r.stderr).toContain("'config")
      expect(r.stderr).toContain('is a folder')
      expect(r.stderr).toContain('pedigree ls main config/')
      expect(r.stderr).not.toContain('not found')
    }
    // A path that is nowhere is still not found.
    expect((await runCli(['show', 'main:nothing'], { cwd: repo })).code).toBe(EXIT.notFound)
  })

  it('of a record by CID or prefix prints it as REV:PATH does; --json gives its metadata', async () => {
    const byPath = await runCli(['show', 'main:config/train.json'], { cwd: repo })
    expect(byPath.code).toBe(0)
    expect(byPath.stdout).toBe(formatRecordJson({ lr: 0.1, run: { '/': weightsCid } } as never))
    for (const rev of [recordCid, recordCid.slice(0, 14)]) {
      const r = await runCli(['show', rev], { cwd: repo })
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdoutBytes.equals(byPath.stdoutBytes)).toBe(true)
    }
    const json = await runJson(['show', recordCid.slice(0, 14)], { cwd: repo })
    const pathJson = await runJson(['show', 'main:config/train.json'], { cwd: repo })
    expect(json.code).toBe(0)
    expect(json.json).toEqual({ type: 'record', cid: recordCid, size: pathJson.json.size, value: pathJson.json.value })
  })

  it('of a file by CID writes its exact bytes: a raw block, and a chunked file a record links to', async () => {
    const small = await runCli(['show', smallCid], { cwd: repo })
    expect(small.code, small.stderr).toBe(0)
    expect(small.stdout).toBe('calibration notes\n')
    // Follow the record's link to the file it names.
    const record = await runJson(['show', recordCid], { cwd: repo })
    const linked = record.json.value.run['/'] as string
    expect(linked).toBe(weightsCid)
    expect(linked.startsWith('bafyrei')).toBe(true) // a file node over chunks, not a raw block
    const big = await runCli(['show', linked], { cwd: repo })
    expect(big.code, big.stderr).toBe(0)
    expect(big.stdoutBytes.equals(WEIGHTS)).toBe(true)
    const meta = await runJson(['show', linked.slice(0, 20)], { cwd: repo })
    expect(meta.json).toEqual({ type: 'file', cid: weightsCid, size: WEIGHTS.length })
  })

  it('of an annotated tag prints the tag, then its commit; --json adds it under tag', async () => {
    const byName = await runCli(['show', 'tags/v1'], { cwd: repo })
    expect(byName.code, byName.stderr).toBe(0)
    expect(byName.stdout).toMatch(/^tag v1\nTagger: Test <t@example\.org>\nDate: {3}\S+\n\n {4}first release\n {4}with notes\n\ncommit /)
    expect(byName.stdout).toContain(`commit ${c1}\n`)
    const tagCid = JSON.parse((await runCli(['ref', 'list', '--json'], { cwd: repo })).stdout).find((r: { name: string }) => r.name === 'tags/v1').cid as string
    const byCid = await runCli(['show', tagCid], { cwd: repo })
    expect(byCid.stdout).toBe(byName.stdout)
    const json = await runJson(['show', 'v1'], { cwd: repo })
    expect(json.json.cid).toBe(c1)
    expect(json.json.tag).toMatchObject({ cid: tagCid, name: 'v1', message: 'first release\nwith notes', tagger: { name: 'Test', email: 't@example.org' } })
    // A commit shown directly has no tag.
    expect((await runJson(['show', c1], { cwd: repo })).json.tag).toBeUndefined()
  })

  it('a ref and a tag of the same name: the ref is shown, with a warning (text) or shadowedTag (--json)', async () => {
    expect((await runCli(['ref', 'set', 'v1', 'main'], { cwd: repo })).code).toBe(0)
    try {
      const text = await runCli(['show', 'v1'], { cwd: repo })
      expect(text.stdout.startsWith(`commit ${c2}\n`)).toBe(true)
      expect(text.stderr).toContain("warning: 'v1' names both a ref and the tag tags/v1; showing the ref")
      const json = await runJson(['show', 'v1'], { cwd: repo })
      expect(json.json.cid).toBe(c2)
      expect(json.json.shadowedTag).toBe('tags/v1')
      const log = await runCli(['log', 'v1', '--oneline'], { cwd: repo })
      expect(log.stderr).toContain('tags/v1')
      expect(log.stdout.split('\n')[0]).toContain(c2.slice(0, 16))
      expect((await runJson(['show', 'tags/v1'], { cwd: repo })).json.cid).toBe(c1)
    } finally {
      expect((await runCli(['ref', 'delete', 'v1'], { cwd: repo })).code).toBe(0)
    }
  })
})

describe('a fresh store', { timeout: 30_000 }, () => {
  it('log says there are no commits yet (3), not that main is not found', async () => {
    const fresh = join(dir, 'fresh')
    await mkdir(fresh)
    expect((await runCli(['init'], { cwd: fresh })).code).toBe(0)
    for (const args of [['log'], ['log', 'main'], ['show', 'main']]) {
      const r = await runCli(args, { cwd: fresh })
      expect(r.code, args.join(' ')).toBe(EXIT.notFound)
      expect(r.stderr).toContain("'main' has no commits yet: this store has no commits")
      expect(r.stderr).not.toContain('revision not found')
    }
    const json = await runJson(['log'], { cwd: fresh })
    expect(json.json.error).toMatchObject({ code: 'ERR_NOT_FOUND', data: { name: 'main', storeEmpty: true } })
  })
})
