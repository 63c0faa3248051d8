// Times ProllyTree.diff in a fresh process: node bench/rows/diff-worker.mjs ROOT CID_A CID_B RUNS CHANGES
// The store was built and closed by bench/rows/diff.mjs; this process opens it with a small
// heap (nothing left over from building a 1M-entry tree) and a fresh ProllyTree per run.
import { Repository, parseCid } from '../../dist/index.js'
import { ProllyTree } from '../../dist/model/tree.js'
import { msSince, now } from '../lib.mjs'

const [root, aText, bText, runsText, changesText] = process.argv.slice(2)
const a = parseCid(aText)
const b = parseCid(bText)
const runs = Number(runsText)
const changes = Number(changesText)
const repo = await Repository.open(root)
const times = []
for (let r = 0; r < runs; r++) {
  const trees = new ProllyTree(repo.blocks)
  const t0 = now()
  let count = 0
  for await (const c of trees.diff(a, b)) {
    if (c.type !== 'modified') throw new Error(`unexpected ${c.type} ${c.path}`)
    count++
  }
  times.push(msSince(t0))
  if (count !== changes) throw new Error(`pedigree diff found ${count} changes, expected ${changes}`)
}
// For context (not the row): how many nodes the diff reads, and the same diff on a warm node cache.
let nodeReads = 0
let nodeBytes = 0
const counting = {
  get: async (cid) => {
    const x = await repo.blocks.get(cid)
    nodeReads++
    nodeBytes += x.length
    return x
  },
  getMany: async (cids) => {
    const xs = await repo.blocks.getMany(cids)
    for (const x of xs) if (x) (nodeReads++, (nodeBytes += x.length))
    return xs
  },
}
for await (const _ of new ProllyTree(counting).diff(a, b));
const warm = new ProllyTree(repo.blocks, { cacheNodes: 1 << 20 })
for await (const _ of warm.diff(a, b));
const t0 = now()
for await (const _ of warm.diff(a, b));
const warmMs = msSince(t0)
await repo.close()
process.stdout.write(JSON.stringify({ times, nodeReads, nodeBytes, warmMs }))
