import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { cidToString } from '../../src/codec/cid.js'
import { encodeNode, rawBlock } from '../../src/codec/block.js'
import { StoreLockedError } from '../../src/errors.js'
import { openLevelStore } from '../../src/store/level.js'
import type { Store } from '../../src/store/store.js'
import { collect, fingerprint, rejectionOf } from './fixture.js'

/** The module a child process imports, found relative to this file so any clone works. */
const LEVEL_MODULE = new URL('../../src/store/level.ts', import.meta.url).href
/** tsx as an --import hook, resolved from this project rather than from the child's cwd. */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href

/** Opens the store in a child process and reports on stdout, one JSON object a line. */
const OPENER = `
const [levelModule, root, timeoutMs] = process.argv.slice(2)
const { openLevelStore } = await import(levelModule)
const say = (event) => process.stdout.write(JSON.stringify(event) + '\\n')
const waits = []
const started = Date.now()
try {
  const store = await openLevelStore(root, {
    lockTimeoutMs: Number(timeoutMs),
    holder: 'child opener',
    onWait: (message) => { waits.push(message); say({ event: 'waiting', message }) },
  })
  const elapsed = Date.now() - started
  const main = await store.refs.get('main')
  await store.close()
  say({ event: 'opened', elapsed, waits, main })
} catch (e) {
  say({ event: 'failed', elapsed: Date.now() - started, waits, name: e.name, code: e.code, message: e.message, data: e.data })
}
`

interface OpenerReport {
  event: 'waiting' | 'opened' | 'failed'
  message?: string
  elapsed?: number
  waits?: string[]
  main?: string
  name?: string
  code?: string
  data?: Record<string, unknown>
}

const block = rawBlock(new TextEncoder().encode('calibration run 17\n'))
const node = encodeNode({ type: 'record', name: 'scan', used: block.cid })
const head = cidToString(node.cid)

describe('level store lock', () => {
  let dir: string
  let opened: Store[]
  let children: ChildProcess[]

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pedigree-lock-'))
    opened = []
    children = []
  })
  afterEach(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill()
    for (const store of opened) await store.close().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  async function openHolder(): Promise<Store> {
    const store = await openLevelStore(dir, { holder: 'lock test holder' })
    opened.push(store)
    return store
  }

  /** The holder's contents, as a reader would check them. */
  async function fill(store: Store): Promise<void> {
    await store.blocks.putMany([block, node])
    expect(await store.refs.compareAndSwap('main', { old: null, new: head, who: { name: 'holder' }, time: 1, message: 'create' })).toBe(true)
    await store.config.set('remote.hpc', { url: 'https://hpc.example.org' })
  }
  async function expectContents(store: Store): Promise<void> {
    expect((await collect(store.blocks.cids())).map(cidToString).sort()).toEqual([cidToString(block.cid), head].sort())
    expect(fingerprint(await store.blocks.get(node.cid))).toBe(fingerprint(node.bytes))
    expect(await store.refs.get('main')).toBe(head)
    expect((await collect(store.refs.log('main'))).map((r) => r.message)).toEqual(['create'])
    expect(await store.config.get('remote.hpc')).toEqual({ url: 'https://hpc.example.org' })
  }

  function runOpener(timeoutMs: number, onReport: (report: OpenerReport) => void = () => {}): Promise<OpenerReport> {
    return (async () => {
      const script = join(dir, 'opener.mjs')
      await writeFile(script, OPENER)
      const child = spawn(process.execPath, ['--import', TSX_LOADER, script, LEVEL_MODULE, dir, String(timeoutMs)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      children.push(child)
      let stderr = ''
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
      return new Promise<OpenerReport>((resolve, reject) => {
        let buffered = ''
        let final: OpenerReport | undefined
        child.stdout!.on('data', (d: Buffer) => {
          buffered += d.toString()
          let nl: number
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const report = JSON.parse(buffered.slice(0, nl)) as OpenerReport
            buffered = buffered.slice(nl + 1)
            onReport(report)
            if (report.event !== 'waiting') final = report
          }
        })
        child.on('error', reject)
        child.on('close', (code) => {
          if (final) resolve(final)
          else reject(new Error(`opener exited with ${code} and no report; stderr:\n${stderr}`))
        })
      })
    })()
  }

  describe('a second opener in the same process', () => {
    it('waits about lockTimeoutMs, then throws StoreLockedError naming the store and the holder pid', async () => {
      const holder = await openHolder()
      await fill(holder)
      const onWait = vi.fn()
      const started = Date.now()
      const err = await rejectionOf(openLevelStore(dir, { lockTimeoutMs: 600, onWait }))
      const waited = Date.now() - started

      expect(err).toBeInstanceOf(StoreLockedError)
      expect(err.code).toBe('ERR_LOCKED')
      expect(err.message).toContain(dir)
      expect(err.message).toContain(`pid ${process.pid}`)
      expect(err.message).toContain('lock test holder')
      expect(err.data).toMatchObject({ location: dir })
      expect(waited).toBeGreaterThanOrEqual(600)
      expect(waited).toBeLessThan(600 + 1500)
      expect(onWait).toHaveBeenCalledTimes(1)
      expect(onWait.mock.calls[0]![0]).toEqual(expect.stringContaining(dir))

      // The refused opener changed nothing: the holder still reads and writes, a later
      // opener is still told who holds the store, and the contents survive reopening.
      await expectContents(holder)
      await holder.blocks.put(rawBlock(new Uint8Array([1, 2, 3])))
      const again = await rejectionOf(openLevelStore(dir, { lockTimeoutMs: 100 }))
      expect(again.message).toContain('lock test holder')
      await holder.close()
      opened = []
      const reopened = await openLevelStore(dir)
      opened.push(reopened)
      expect(await reopened.refs.get('main')).toBe(head)
      expect((await collect(reopened.refs.log('main'))).map((r) => r.message)).toEqual(['create'])
      expect(await reopened.blocks.has(rawBlock(new Uint8Array([1, 2, 3])).cid)).toBe(true)
    })

    it('succeeds once the holder closes within the timeout, and sees its contents', async () => {
      const holder = await openHolder()
      await fill(holder)
      const onWait = vi.fn()
      const started = Date.now()
      const waiting = openLevelStore(dir, { lockTimeoutMs: 5_000, onWait })
      setTimeout(() => void holder.close(), 300)
      const store = await waiting
      opened = [store]
      const waited = Date.now() - started
      expect(waited).toBeGreaterThanOrEqual(250)
      expect(waited).toBeLessThan(5_000)
      expect(onWait).toHaveBeenCalledTimes(1)
      expect(onWait.mock.calls[0]![0]).toEqual(expect.stringContaining(dir))
      await expectContents(store)
    })

    it('does not call onWait when the store is free', async () => {
      const onWait = vi.fn()
      const store = await openLevelStore(dir, { lockTimeoutMs: 1_000, onWait })
      opened.push(store)
      expect(onWait).not.toHaveBeenCalled()
    })
  })

  describe('a second opener in another process', () => {
    it('is refused after about lockTimeoutMs with StoreLockedError naming the store and this process as holder', async () => {
      const holder = await openHolder()
      await fill(holder)
      const report = await runOpener(700)

      expect(report.event).toBe('failed')
      expect(report.name).toBe('StoreLockedError')
      expect(report.code).toBe('ERR_LOCKED')
      expect(report.message).toContain(dir)
      expect(report.message).toContain(`pid ${process.pid}`)
      expect(report.data).toMatchObject({ location: dir })
      expect(report.elapsed).toBeGreaterThanOrEqual(700)
      expect(report.elapsed).toBeLessThan(700 + 1500)
      expect(report.waits).toHaveLength(1)
      expect(report.waits![0]).toContain(dir)
      await expectContents(holder)
    }, 15_000)

    it('opens once this process closes the store within the timeout', async () => {
      const holder = await openHolder()
      await fill(holder)
      const report = await runOpener(8_000, (r) => {
        if (r.event === 'waiting') void holder.close()
      })

      expect(report.event).toBe('opened')
      expect(report.main).toBe(head)
      expect(report.waits).toHaveLength(1)
      expect(report.waits![0]).toContain(`pid ${process.pid}`)
      expect(report.elapsed).toBeLessThan(8_000)
    }, 15_000)
  })
})
