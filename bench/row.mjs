// Runs one benchmark row in its own process: node bench/row.mjs commit|diff|log SIZES_JSON
// Progress goes to stderr; the row's result is printed to stdout as JSON. bench/run.mjs
// starts one of these per row so that no row inherits another's heap.
import { commitRow } from './rows/commit.mjs'
import { diffRow } from './rows/diff.mjs'
import { logRow } from './rows/log.mjs'

const ROWS = { commit: commitRow, diff: diffRow, log: logRow }
const [name, sizes] = process.argv.slice(2)
if (!ROWS[name]) {
  console.error('usage: node bench/row.mjs commit|diff|log SIZES_JSON')
  process.exit(2)
}
const result = await ROWS[name]({ ...JSON.parse(sizes ?? '{}'), log: (s) => process.stderr.write(s + '\n') })
process.stdout.write(JSON.stringify(result))
