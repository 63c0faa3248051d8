import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { formatBytes } from '../cli/progress.js'
import { cidToString } from '../codec/cid.js'
import { fetch } from '../sync/fetch.js'
import { jsonOf } from '../sync/json.js'
import { plural, syncProgress } from './push.js'

export default class Fetch extends BaseCommand<typeof Fetch> {
  static override summary = "Copy what this store lacks of a remote's refs; record them as remotes/<remote>/<ref>."
  static override description = 'Every block is verified as it arrives and the whole DAG under each ref is checked before any ref moves. Local branches are not changed (see pull).'
  static override examples = ['<%= config.bin %> fetch', '<%= config.bin %> fetch hpc', '<%= config.bin %> fetch hpc main tags/v7']
  static override strict = false
  static override args = {
    remote: Args.string({ description: 'remote name (default: origin)' }),
    ref: Args.string({ description: "the remote's refs to fetch (default: all)" }),
  }
  static override flags = { author: Flags.string({ description: 'who, as "Name <email>" (kept in the reflog)' }) }

  async run(): Promise<unknown> {
    const { argv } = await this.parse(Fetch)
    const [remote = 'origin', ...refs] = argv as string[]
    const progress = syncProgress(this.interactive)
    const r = await fetch(await this.repo(), {
      remote,
      refs: refs.length > 0 ? refs : undefined,
      who: this.person(this.flags.author),
      open: this.storeOptions(),
      onProgress: progress.update,
    })
    progress.done()
    for (const f of r.refs) this.log(`  ${f.tracking}: ${f.old ? cidToString(f.old) : '(new)'} → ${cidToString(f.new)} (${f.status})`)
    this.log(`fetched from ${r.remote} (${r.url}): ${plural(r.blocks, 'block')}, ${formatBytes(r.bytes)}, ${plural(r.roundTrips, 'round trip')}`)
    return jsonOf(r)
  }
}
