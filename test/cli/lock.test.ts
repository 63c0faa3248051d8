import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { openLevelStore } from '../../src/store/level.js'
import type { Store } from '../../src/store/store.js'
import { removeDir, runCli, tempDir } from './run-cli.js'

/**
 * LevelDB admits one process at a time. While another process holds the store, a command
 * waits (saying so) and, past PEDIGREE_LOCK_TIMEOUT seconds, gives up with exit 6 naming
 * the store and who holds it.
 */

let dir: string
let root: string
let holder: Store | undefined

beforeAll(async () => {
  dir = await tempDir('lock')
  root = join(dir, '.pedigree')
  expect((await runCli(['init'], { cwd: dir })).code).toBe(0)
  expect((await runCli(['commit', '--record', 'runs/1.json=-', '-m', 'first'], { cwd: dir, input: '{"n": 1}' })).code).toBe(0)
}, 30_000)

afterEach(async () => {
  await holder?.close().catch(() => {})
  holder = undefined
})

afterAll(() => removeDir(dir))

describe('a store held by another process', { timeout: 20_000 }, () => {
  it('exits 6 after PEDIGREE_LOCK_TIMEOUT, naming the store and the holder', async () => {
    holder = await openLevelStore(root, { holder: 'test-holder' })
    const started = Date.now()
    const r = await runCli(['log'], { cwd: dir, env: { PEDIGREE_LOCK_TIMEOUT: '1' } })
    const elapsed = Date.now() - started
    expect(r.code, r.stderr).toBe(6)
    expect(r.stderr).toContain(`the store at ${root} is locked by another process`)
    expect(r.stderr).toContain('test-holder')
    expect(r.stderr).toContain('PEDIGREE_LOCK_TIMEOUT')
    expect(r.stdout).toBe('')
    expect(elapsed).toBeGreaterThanOrEqual(1000)
    expect(elapsed).toBeLessThan(8000)
  })

  it('waits, saying so, and succeeds once the holder lets go', async () => {
    const held = await openLevelStore(root, { holder: 'test-holder' })
    holder = held
    let closing: Promise<void> | undefined
    const r = await runCli(['log', '--oneline'], {
      cwd: dir,
      env: { PEDIGREE_LOCK_TIMEOUT: '15' },
      // Let go about 300 ms after the command reports that it is waiting.
      onStderr: (soFar) => {
        if (!closing && soFar.includes('waiting for the store')) {
          closing = new Promise((resolve) => setTimeout(resolve, 300)).then(() => held.close())
        }
      },
    })
    await closing
    holder = undefined
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`waiting for the store at ${root}, held by test-holder`)
    expect(r.stdout).toMatch(/^baf[a-z2-7]{13} first\n$/)
  })
})
