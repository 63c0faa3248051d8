#!/usr/bin/env node
// Start-up cost of modules: imports each argument in turn (package names or paths relative to
// the checkout) and prints the time each adds. Run it several times; the first import of
// anything pays for what it shares with later ones.
//
//   node bench/perf/imports.mjs @oclif/core dist/repo/repository.js dist/commands/log.js
import { pathToFileURL } from 'node:url'
import { resolve } from 'node:path'
import { ROOT } from './util.mjs'

let last = performance.now()
const out = []
for (const m of process.argv.slice(2)) {
  await import(m.startsWith('dist/') || m.startsWith('./') ? pathToFileURL(resolve(ROOT, m)).href : m)
  const now = performance.now()
  out.push(`${m} +${(now - last).toFixed(1)}`)
  last = now
}
console.log(out.join('  '), ` total ${performance.now().toFixed(0)} ms since process start`)
