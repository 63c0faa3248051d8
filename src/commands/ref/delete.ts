import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { cidToString } from '../../codec/cid.js'

export default class RefDelete extends BaseCommand<typeof RefDelete> {
  static override summary = 'Delete a ref. Its commits stay in the store and its reflog keeps every value (NAME@{1} still resolves).'
  static override examples = ['<%= config.bin %> ref delete experiments/lr-sweep', '<%= config.bin %> ref delete tags/v0 --force']
  static override args = { name: Args.string({ description: 'ref name', required: true }) }
  static override flags = {
    message: Flags.string({ char: 'm', description: 'reason, kept in the reflog' }),
    force: Flags.boolean({ char: 'f', description: 'allow deleting a tag' }),
    author: Flags.string({ description: 'who, as "Name <email>"' }),
  }

  async run(): Promise<{ ref: string; old: string }> {
    const repo = await this.repo()
    const r = await repo.deleteRef(this.args.name, { who: this.person(this.flags.author), message: this.flags.message, force: this.flags.force })
    this.log(`deleted ${r.ref} (was ${cidToString(r.old)})`)
    return { ref: r.ref, old: cidToString(r.old) }
  }
}
