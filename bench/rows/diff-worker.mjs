// Times ProllyTree.diff in a fresh process for bench/rows/diff.mjs, which built the store and
// closed it; this process opens it with a small heap (nothing left over from building a
// 1M-entry tree). Prints JSON.
//
//   node bench/rows/diff-worker.mjs ROOT CHANGES cold A B
//       one diff of A and B, the first thing the process does after opening the store (as the
//       `pedigree diff` command does): { times: [ms] }
//   node bench/rows/diff-worker.mjs ROOT CHANGES warm A B K X1 … Xn
//       diffs A and each of X1…XK untimed (compiling the code), then A and each later Xi, each
//       with a fresh ProllyTree, so no node of the differing paths is cached in the process:
//       { times: [ms × (n - K)] }; and for context the nodes a diff of A and B reads, and that
//       diff repeated on a warm node cache (nothing read or decoded).
import { Repository, parseCid } from '../../dist/index.js'
import { ProllyTree } from '../../dist/model/tree.js'
import { msSince, now } from '../lib.mjs'

const [root, changesText, mode, aText, bText, ...rest] = process.argv.slice(2)
const changes = Number(changesText)
const a = parseCid(aText)
const repo = await Repository.open(root)

async function timedDiff(x, y) {
  const trees = new ProllyTree(repo.blocks)
  const t0 = now()
  let count = 0
  for await (const c of trees.diff(x, y)) {
    if (c.type !== 'modified') throw new Error(`unexpected ${c.type} ${c.path}`)
    count++
  }
  const ms = msSince(t0)
  if (count !== changes) throw new Error(`pedigree diff found ${count} changes, expected ${changes}`)
  return ms
}

const out = {}
if (mode === 'cold') out.times = [await timedDiff(a, parseCid(bText))]
else {
  const warmups = Number(rest[0])
  const trees = rest.slice(1).map(parseCid)
  for (const x of trees.slice(0, warmups)) await timedDiff(a, x)
  out.times = []
  for (const x of trees.slice(warmups)) out.times.push(await timedDiff(a, x))
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
  const b = parseCid(bText)
  for await (const _ of new ProllyTree(counting).diff(a, b));
  const cached = new ProllyTree(repo.blocks, { cacheNodes: 1 << 20 })
  for await (const _ of cached.diff(a, b));
  const t0 = now()
  for await (const _ of cached.diff(a, b));
  Object.assign(out, { nodeReads, nodeBytes, cachedMs: msSince(t0) })
}
await repo.close()
process.stdout.write(JSON.stringify(out))
