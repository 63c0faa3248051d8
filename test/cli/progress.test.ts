import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
const hasScript = spawnSync('script', ['--version']).status === 0
// vitest sets NODE_ENV=test, which puts oclif in development mode (it then warns on stderr).
const { NODE_ENV: _unused, ...cleanEnv } = process.env
const env = { ...cleanEnv, PEDIGREE_AUTHOR: 'T <t@x>' }

/** Run the CLI under a pseudo-terminal (util-linux `script`), returning everything the terminal showed. */
function onTerminal(args: string[], cwd: string): string {
  const cmd = [process.execPath, bin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
  return execFileSync('script', ['-qec', cmd, '/dev/null'], { cwd, env, encoding: 'utf8' })
}

describe.skipIf(!hasScript)('progress on a terminal', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pedigree-tty-'))
    execFileSync(process.execPath, [bin, 'init', dir], { env })
    const big = Buffer.alloc(48 << 20)
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i)
    await writeFile(join(dir, 'big.bin'), big)
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('draws bytes, rate and ETA while storing a large file on a terminal', () => {
    const shown = onTerminal(['commit', '-m', 'big', 'big.bin'], dir)
    expect(shown).toMatch(/storing [\d.]+ (B|KiB|MiB) \/ 48\.0 MiB \(\d+%\), [\d.]+ \w+\/s, ETA/)
    // The path, whole: \`script\`'s terminal reports a width of 0, which is no width at all.
    expect(shown).toMatch(/ETA \S+ {2}big\.bin/)
  })

  it('stays silent under --json on a terminal, and without a terminal', () => {
    const json = onTerminal(['checkout', 'main', '-o', 'out-json', '--json'], dir)
    expect(json).not.toMatch(/writing [\d.]+/)
    expect(JSON.parse(json.replace(/\r/g, '')).written[0].path).toBe('big.bin')
    const plain = spawnSync(process.execPath, [bin, 'checkout', 'main', '-o', 'out-plain'], { cwd: dir, env, encoding: 'utf8' })
    expect(plain.status).toBe(0)
    expect(plain.stderr).toBe('')
  })

  it('draws progress while writing a checkout on a terminal', () => {
    expect(onTerminal(['checkout', 'main', '-o', 'out-tty'], dir)).toMatch(/writing [\d.]+ (B|KiB|MiB) \/ 48\.0 MiB/)
  })
})
