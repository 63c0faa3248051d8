import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildFixtureStore, FIXTURE_PATHS } from '../../fixtures/build-fixture-store.js'
import { cidToString } from '../../src/codec/cid.js'
import { Repository } from '../../src/repo/repository.js'
import { removeDir, runCli, runJson, tempDir } from './run-cli.js'

// Spawns the built CLI (bin/run.js → dist/): run `npm run build` first, as `npm test` does.
let cwd: string
let bestModel: string
let winningTask: string

beforeAll(async () => {
  cwd = await tempDir('export-prov')
  const repo = await Repository.init(join(cwd, '.pedigree'))
  try {
    const { paths } = await buildFixtureStore(repo)
    bestModel = `cid:${cidToString(paths.get(FIXTURE_PATHS.bestModel)!)}`
    winningTask = `cid:${cidToString(paths.get(FIXTURE_PATHS.winningTask)!)}`
  } finally {
    await repo.close()
  }
})
afterAll(() => removeDir(cwd))

describe('pedigree export prov', { timeout: 30_000 }, () => {
  it('writes the PROV-JSON document of a revision to a file', async () => {
    const r = await runCli(['export', 'prov', 'main', '-o', 'out.json'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe('wrote out.json: 48 entities, 15 activities, 3 agents, 442 relations\n')
    const doc = JSON.parse(await readFile(join(cwd, 'out.json'), 'utf8'))
    expect(doc.prefix).toEqual({ cid: 'urn:cid:', pedigree: 'urn:pedigree:', agent: 'urn:pedigree:agent:' })
    expect(Object.values(doc.wasGeneratedBy)).toContainEqual({ 'prov:entity': bestModel, 'prov:activity': winningTask })
  })

  it('prints the document with --json, or on stdout without -o', async () => {
    const j = await runJson(['export', 'prov', 'main', 'model/'], { cwd })
    expect(j.code, j.stderr).toBe(0)
    expect(Object.keys(j.json.entity)).toContain(bestModel)
    expect(Object.keys(j.json.activity)).toEqual([winningTask])
    const plain = await runCli(['export', 'prov', 'main', 'model/'], { cwd })
    expect(plain.code, plain.stderr).toBe(0)
    expect(JSON.parse(plain.stdout)).toEqual(j.json)
  })

  it('fails with exit 3 and nothing written for an unknown revision or path', async () => {
    const r = await runCli(['export', 'prov', 'no-such-rev', '-o', 'missing.json'], { cwd })
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/^error: revision not found: no-such-rev/)
    expect(r.stdout).toBe('')
    expect(existsSync(join(cwd, 'missing.json'))).toBe(false)
    const j = await runJson(['export', 'prov', 'no-such-rev'], { cwd })
    expect(j.code).toBe(3)
    expect(j.json.error.code).toBe('ERR_NOT_FOUND')
    const p = await runCli(['export', 'prov', 'main', 'nope/'], { cwd })
    expect(p.code).toBe(3)
    expect(p.stderr).toMatch(/path not found: nope/)
  })

  it('explains itself in --help, with examples', async () => {
    const r = await runCli(['export', 'prov', '--help'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('USAGE\n  $ pedigree export prov')
    expect(r.stdout).toContain('EXAMPLES')
    expect(r.stdout).toContain('$ pedigree export prov main -o main.prov.json')
  })
})
