import { Args, Flags } from '@oclif/core'
import { resolve } from 'node:path'
import { BaseCommand } from '../../cli/base-command.js'
import { formatBytes } from '../../cli/progress.js'
import { cidToString } from '../../codec/cid.js'
import { importBundle } from '../../sync/bundle.js'
import { jsonOf } from '../../sync/json.js'
import { syncProgress } from '../push.js'

export default class BundleImport extends BaseCommand<typeof BundleImport> {
  static override summary = "Import a bundle: verify it, then set remotes/bundle/<ref>, and local refs where new or a fast-forward."
  static override description = 'Every block is verified before it is stored and every ref\'s DAG checked whole before any ref moves; a truncated or corrupt bundle changes no ref.'
  static override examples = ['<%= config.bin %> bundle import campaign-7.car', '<%= config.bin %> bundle import campaign-7.car --remote beamline']
  static override args = { file: Args.string({ description: 'the .car file', required: true }) }
  static override flags = {
    remote: Flags.string({ description: 'name under remotes/ for the tracking refs', default: 'bundle' }),
    author: Flags.string({ description: 'who, as "Name <email>" (kept in the reflog)' }),
  }

  async run(): Promise<unknown> {
    const progress = syncProgress(this.interactive)
    const r = await importBundle(await this.repo(), resolve(this.args.file), { who: this.person(this.flags.author), remote: this.flags.remote, onProgress: progress.update })
    progress.done()
    for (const ref of r.refs) this.log(`  ${cidToString(ref.cid)}  ${ref.ref} (${ref.local}; ${ref.tracking})`)
    this.log(`imported ${r.file}: ${r.blocks} blocks, ${formatBytes(r.bytes)}`)
    return jsonOf(r)
  }
}
