import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { removeDir, runCli, tempDir } from './run-cli.js'

/** Commands as oclif finds them: one per file under src/commands, topics as folders. */
const COMMANDS_DIR = fileURLToPath(new URL('../../src/commands/', import.meta.url))
const entries = readdirSync(COMMANDS_DIR, { withFileTypes: true })
const topLevel = entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => e.name.slice(0, -3))
const topics = entries.filter((e) => e.isDirectory()).map((e) => e.name)

let cwd: string
beforeAll(async () => {
  cwd = await tempDir('help')
})
afterAll(() => removeDir(cwd))

describe('help', { timeout: 20_000 }, () => {
  it('pedigree --help lists every command and topic', async () => {
    const r = await runCli(['--help'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(topLevel).toEqual(expect.arrayContaining(['init', 'commit', 'log', 'show', 'ls', 'diff', 'checkout', 'tag', 'reflog', 'fsck']))
    for (const name of [...topLevel, ...topics]) expect(r.stdout, name).toMatch(new RegExp(`^  ${name} +\\S`, 'm'))
  })

  it('pedigree <topic> --help lists its commands', async () => {
    for (const topic of topics) {
      const r = await runCli([topic, '--help'], { cwd })
      expect(r.code, r.stderr).toBe(0)
      const names = readdirSync(join(COMMANDS_DIR, topic))
        .filter((n) => n.endsWith('.ts'))
        .map((n) => n.slice(0, -3))
      for (const name of names) expect(r.stdout, `${topic} ${name}`).toMatch(new RegExp(`^  ${topic} ${name} +\\S`, 'm'))
    }
  })

  it('pedigree commit --help shows usage, flags and examples', async () => {
    const r = await runCli(['commit', '--help'], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('USAGE\n  $ pedigree commit')
    expect(r.stdout).toMatch(/--record=<value>/)
    expect(r.stdout).toContain('EXAMPLES')
    expect(r.stdout).toContain('$ pedigree commit -b main -m "calibration run 42"')
    expect(r.stdout).toContain('--record metrics/7.json=-')
  })
})
