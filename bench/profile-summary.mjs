#!/usr/bin/env node
// Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by
// package/file, and inclusive time of the functions named on the command line.
//   node bench/profile-summary.mjs PROFILE.cpuprofile [--top=25] [--filter=substring]
import { readFileSync } from 'node:fs'

const [file, ...rest] = process.argv.slice(2)
if (!file) {
  console.error('usage: node bench/profile-summary.mjs PROFILE.cpuprofile [--top=25] [--filter=substring]')
  process.exit(2)
}
const top = Number(rest.find((a) => a.startsWith('--top='))?.slice(6) ?? 25)
const filter = rest.find((a) => a.startsWith('--filter='))?.slice(9)
const prof = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(prof.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const self = new Map()
const dt = prof.timeDeltas
for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (dt[i] ?? 0))
const total = [...self.values()].reduce((a, b) => a + b, 0)

const where = (cf) => {
  const url = cf.url || ''
  const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/)
  if (m) return m[1]
  if (url.includes('/dist/')) return 'pedigree ' + url.slice(url.indexOf('/dist/') + 6)
  if (url.startsWith('node:')) return url
  return url ? url.split('/').slice(-2).join('/') : '(native/VM)'
}
const label = (cf) => `${cf.functionName || '(anonymous)'} ${where(cf)}:${cf.lineNumber + 1}`
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms`

const fnSelf = new Map()
const pkgSelf = new Map()
for (const [id, us] of self) {
  const cf = byId.get(id).callFrame
  fnSelf.set(label(cf), (fnSelf.get(label(cf)) ?? 0) + us)
  pkgSelf.set(where(cf), (pkgSelf.get(where(cf)) ?? 0) + us)
}
// inclusive time per function label (counted once per sample stack)
const incl = new Map()
for (const [id, us] of self) {
  const seen = new Set()
  for (let n = id; n !== undefined; n = parent.get(n)) {
    const l = label(byId.get(n).callFrame)
    if (seen.has(l)) continue
    seen.add(l)
    incl.set(l, (incl.get(l) ?? 0) + us)
  }
}
const show = (title, map) => {
  console.log(`\n${title}`)
  for (const [k, v] of [...map].filter(([k]) => !filter || k.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`)
}
console.log(`total sampled ${(total / 1000).toFixed(0)} ms`)
show('self time by package/file', pkgSelf)
show('self time by function', fnSelf)
show('inclusive time by function', incl)
