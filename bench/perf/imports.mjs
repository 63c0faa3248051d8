#!/usr/bin/env node
// Start-up cost of modules: imports each argument in turn (package names or paths relative to
// the checkout) and prints the wall and CPU time (ms) each adds. Run it several times; the first
// import of anything pays for what it shares with later ones.
//
//   node bench/perf/imports.mjs [--root=DIR] @oclif/core dist/repo/repository.js dist/commands/log.js
//
// --root=DIR measures another checkout (its dist/ and its node_modules).
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT } from './util.mjs'

const argv = process.argv.slice(2)
const rootArg = argv.find((a) => a.startsWith('--root='))
const root = rootArg ? resolve(rootArg.slice('--root='.length)) : ROOT
const requireFromRoot = createRequire(resolve(root, 'package.json'))
const cpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

let last = performance.now()
let lastCpu = cpu()
const out = []
for (const m of argv.filter((a) => !a.startsWith('--'))) {
  const url = m.startsWith('dist/') || m.startsWith('./') ? pathToFileURL(resolve(root, m)).href : m.startsWith('node:') ? m : pathToFileURL(requireFromRoot.resolve(m)).href
  await import(url)
  const now = performance.now()
  const nowCpu = cpu()
  out.push(`${m} +${(now - last).toFixed(1)} (CPU ${(nowCpu - lastCpu).toFixed(1)})`)
  last = now
  lastCpu = nowCpu
}
console.log(out.join('  '), ` total ${performance.now().toFixed(0)} ms since process start`)
