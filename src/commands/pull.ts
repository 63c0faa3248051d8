import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { formatBytes } from '../cli/progress.js'
import { cidToString } from '../codec/cid.js'
import { jsonOf } from '../sync/json.js'
import { pull } from '../sync/pull.js'
import { plural, syncProgress } from './push.js'

export default class Pull extends BaseCommand<typeof Pull> {
  static override summary = 'Fetch a ref from a remote and fast-forward the local ref to it.'
  static override description = 'If the histories have diverged, nothing local changes and the error says how to go on (exit 4).'
  static override examples = ['<%= config.bin %> pull', '<%= config.bin %> pull hpc main', '<%= config.bin %> pull hpc models/braggnn']
  static override args = {
    remote: Args.string({ description: 'remote name (default: origin)' }),
    ref: Args.string({ description: 'ref to pull (default: main)' }),
  }
  static override flags = { author: Flags.string({ description: 'who, as "Name <email>" (kept in the reflog)' }) }

  async run(): Promise<unknown> {
    const progress = syncProgress(this.interactive)
    const r = await pull(await this.repo(), {
      remote: this.args.remote ?? 'origin',
      ref: this.args.ref ?? 'main',
      who: this.person(this.flags.author),
      open: this.storeOptions(),
      onProgress: progress.update,
    })
    progress.done()
    this.log(`${r.ref}: ${r.old ? cidToString(r.old) : '(new)'} → ${cidToString(r.new)} (${r.status})`)
    this.log(`fetched from ${r.remote} (${r.url}): ${plural(r.fetch.blocks, 'block')}, ${formatBytes(r.fetch.bytes)}, ${plural(r.fetch.roundTrips, 'round trip')}`)
    return jsonOf(r)
  }
}
