// Runs one benchmark row in its own process: node bench/row.mjs NAME SIZES_JSON (NAME: a key of ROWS)
// Progress goes to stderr; the row's result is printed to stdout as JSON. bench/run.mjs
// starts one of these per row so that no row inherits another's heap.
import { commitRow } from './rows/commit.mjs'
import { diffRow } from './rows/diff.mjs'
import { logRow } from './rows/log.mjs'
import { ckptBigRow, ckptCheckoutRow, ckptCommitRow, ckptDeltaRow, ckptDeltaTensorsRow } from './rows/checkpoint.mjs'
import { ingestRow, queryRow } from './rows/records.mjs'
import { lineageRow } from './rows/lineage.mjs'

const ROWS = {
  commit: commitRow,
  diff: diffRow,
  diffFlat: diffRow,
  log: logRow,
  ckptCommit: ckptCommitRow,
  ckptDelta: ckptDeltaRow,
  ckptDeltaTensors: ckptDeltaTensorsRow,
  ckptCheckout: ckptCheckoutRow,
  ckptBig: ckptBigRow,
  ingest: ingestRow,
  query: queryRow,
  lineage: lineageRow,
}
const [name, sizes] = process.argv.slice(2)
if (!ROWS[name]) {
  console.error('usage: node bench/row.mjs ' + Object.keys(ROWS).join('|') + ' SIZES_JSON')
  process.exit(2)
}
const result = await ROWS[name]({ ...JSON.parse(sizes ?? '{}'), log: (s) => process.stderr.write(s + '\n') })
process.stdout.write(JSON.stringify(result))
