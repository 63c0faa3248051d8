import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { removeRemote, type Remote } from '../../sync/remote.js'

export default class RemoteRemove extends BaseCommand<typeof RemoteRemove> {
  static override summary = 'Forget a remote and delete the refs that track it (their reflogs remain).'
  static override examples = ['<%= config.bin %> remote remove hpc']
  static override args = { name: Args.string({ description: 'remote name', required: true }) }
  static override flags = { author: Flags.string({ description: 'who, as "Name <email>" (kept in the reflog)' }) }

  async run(): Promise<Remote & { removedRefs: string[] }> {
    const r = await removeRemote(await this.repo(), this.args.name, { who: this.person(this.flags.author) })
    this.log(`removed remote ${r.name} (${r.url})${r.removedRefs.length ? `, and ${r.removedRefs.length} tracking ref(s)` : ''}`)
    return r
  }
}
