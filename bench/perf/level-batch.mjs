#!/usr/bin/env node
// Main-thread cost of LevelDB batches as the blockstore writes them: 100k puts of ~330-byte
// values under 59-character keys, in batches of 10k, through a sublevel with string keys (as
// level.ts does) and with other key/value forms, to see what the per-operation cost is.
//   node bench/perf/level-batch.mjs
import { rmSync } from 'node:fs'
import { Level } from 'level'
import { join, scratchDir } from './util.mjs'

const dir = join(scratchDir(), `level-batch-${process.pid}`)
const N = 100_000
const BATCH = 10_000
const keys = Array.from({ length: N }, (_, i) => `bafyrei${String(i).padStart(10, '0')}abcdefghijklmnopqrstuvwxyz234567abcdefghij`)
const value = new Uint8Array(331).fill(7)
const cpuMs = (c) => ((c.user + c.system) / 1000).toFixed(0)

async function run(name, makeOps, open) {
  rmSync(dir, { recursive: true, force: true })
  const db = new Level(dir, { keyEncoding: 'utf8', valueEncoding: 'json' })
  await db.open()
  const target = open(db)
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  let main = 0
  for (let i = 0; i < N; i += BATCH) {
    const ops = makeOps(target, i, Math.min(N, i + BATCH))
    const m0 = performance.now()
    const p = db.batch(ops)
    main += performance.now() - m0
    await p
  }
  const t1 = performance.now()
  console.log(`${name}: ${(t1 - t0).toFixed(0)} ms wall, ${main.toFixed(0)} ms in the batch() call, cpu ${cpuMs(process.cpuUsage(c0))} ms`)
  await db.close()
}

const sub = (db) => db.sublevel('b', { valueEncoding: 'view' })
for (let r = 0; r < 2; r++) {
  await run('sublevel ops, string keys, view values', (s, a, b) => keys.slice(a, b).map((key) => ({ type: 'put', sublevel: s, key, value })), sub)
  await run('root ops, prefixed string keys, view encoding per op', (s, a, b) => keys.slice(a, b).map((key) => ({ type: 'put', key: `!b!${key}`, value, valueEncoding: 'view' })), () => null)
  await run('root ops, prefixed keys as Buffers made per op (latin1), view encodings per op', (s, a, b) => keys.slice(a, b).map((key) => ({ type: 'put', key: Buffer.from(`!b!${key}`, 'latin1'), value, keyEncoding: 'view', valueEncoding: 'view' })), () => null)
  await run('sublevel chained batch', (s, a, b) => keys.slice(a, b).map((key) => ({ type: 'put', sublevel: s, key, value })), sub)
}
rmSync(dir, { recursive: true, force: true })
