#!/usr/bin/env node
// Target 1: add a large checkpoint to a LevelDB store (writeFile, including the final flush)
// and check it out again (readFile into a file). Prints MB/s and CPU seconds per thread for
// each run, medians, the peak RSS of the process and the load average.
//
//   node bench/perf/checkpoint.mjs [--gib=1] [--runs=3] [--root=DIR] [--no-checkout] [--source=stream]
//
// The file is read the way `pedigree commit` reads it (readLocalFile, when the build has it;
// `--source=stream` or an older build: fs.createReadStream with 1 MiB pieces). The input is
// float32 "weights" (normally distributed, seeded), written once to $PERF_SCRATCH and reused,
// so the page cache holds it and the runs measure pedigree rather than the disk the input
// comes from. Each run writes into a fresh store. `--root` measures another checkout.
import { createReadStream, createWriteStream, existsSync, rmSync, statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { cpuSince, join, load, median, parseArgs, scratchDir, targetRoot, threadCpu } from './util.mjs'

const args = parseArgs()
const GiB = 2 ** 30
const gib = Number(args.gib ?? 1)
const runs = Number(args.runs ?? 3)
const root = targetRoot(args)
const scratch = scratchDir()
const { openLevelStore } = await import(pathToFileURL(join(root, 'dist/store/level.js')).href)
const { writeFile, readFile, readLocalFile } = await import(pathToFileURL(join(root, 'dist/model/file.js')).href)
const useStream = args.source === 'stream' || !readLocalFile
const openSource = (path) => (useStream ? createReadStream(path, { highWaterMark: 1 << 20 }) : readLocalFile(path))

const input = join(scratch, `weights-${gib}g.bin`)
if (!existsSync(input) || statSync(input).size !== gib * GiB) await makeWeights(input, gib * GiB)
const mbps = (bytes, ms) => bytes / 1e6 / (ms / 1000)

console.log(`checkpoint ${gib} GiB, ${runs} runs, ${root}, source ${useStream ? 'createReadStream' : 'readLocalFile'}; load at start ${load()}`)
const add = []
const out = []
for (let r = 0; r < runs; r++) {
  const dir = join(scratch, `store-${process.pid}`)
  rmSync(dir, { recursive: true, force: true })
  const store = await openLevelStore(dir)
  let cpu0 = threadCpu()
  let t0 = performance.now()
  const { cid, size } = await writeFile(store.blocks, openSource(input))
  await store.blocks.flush()
  const addMs = performance.now() - t0
  add.push(mbps(size, addMs))
  let line = `run ${r + 1}: add ${mbps(size, addMs).toFixed(0)} MB/s (${addMs.toFixed(0)} ms; cpu s: ${cpuSince(cpu0)})`
  if (!args['no-checkout']) {
    const target = join(scratch, `checkout-${process.pid}.bin`)
    cpu0 = threadCpu()
    t0 = performance.now()
    await pipeline(Readable.from(readFile(store.blocks, cid)), createWriteStream(target))
    const outMs = performance.now() - t0
    out.push(mbps(size, outMs))
    line += `\n       checkout ${mbps(size, outMs).toFixed(0)} MB/s (${outMs.toFixed(0)} ms; cpu s: ${cpuSince(cpu0)})`
    rmSync(target, { force: true })
  }
  console.log(line)
  await store.close()
  rmSync(dir, { recursive: true, force: true })
}
console.log(
  `median: add ${median(add).toFixed(0)} MB/s` +
    (out.length ? `, checkout ${median(out).toFixed(0)} MB/s` : '') +
    `; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB; load at end ${load()}`,
)

/** Seeded normally distributed float32 values, like the weights of a trained model. */
async function makeWeights(path, bytes) {
  const fh = await open(path, 'w')
  const buf = new Float32Array(1 << 20)
  let a = 12345
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297
  }
  for (let done = 0; done < bytes; done += buf.byteLength) {
    for (let i = 0; i < buf.length; i += 2) {
      const r = Math.sqrt(-2 * Math.log(rand())) * 0.02
      const th = 2 * Math.PI * rand()
      buf[i] = r * Math.cos(th)
      buf[i + 1] = r * Math.sin(th)
    }
    await fh.write(new Uint8Array(buf.buffer), 0, Math.min(buf.byteLength, bytes - done))
  }
  await fh.close()
}
