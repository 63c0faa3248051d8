import { Args } from '@oclif/core'
import { resolve } from 'node:path'
import { BaseCommand } from '../../cli/base-command.js'
import { formatBytes } from '../../cli/progress.js'
import { cidToString } from '../../codec/cid.js'
import { verifyBundle } from '../../sync/bundle.js'
import { jsonOf } from '../../sync/json.js'
import { syncProgress } from '../push.js'

export default class BundleVerify extends BaseCommand<typeof BundleVerify> {
  static override summary = "Check a bundle offline: every block's hash, and that the DAG under every ref is whole."
  static override description = 'Needs no store. Exits non-zero naming the first bad or missing CID, or saying the file is truncated.'
  static override examples = ['<%= config.bin %> bundle verify campaign-7.car']
  static override args = { file: Args.string({ description: 'the .car file', required: true }) }

  async run(): Promise<unknown> {
    const progress = syncProgress(this.interactive)
    const r = await verifyBundle(resolve(this.args.file), { onProgress: progress.update })
    progress.done()
    for (const ref of r.refs) this.log(`  ${cidToString(ref.cid)}  ${ref.name}`)
    this.log(`${r.file}: ok, ${r.blocks} blocks, ${formatBytes(r.bytes)}, ${r.commits} commits`)
    return jsonOf({ ok: true, ...r })
  }
}
