import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { cidToString } from '../../codec/cid.js'

export default class RefSet extends BaseCommand<typeof RefSet> {
  static override summary = 'Point a ref at a revision (the old value stays in the reflog).'
  static override examples = [
    '<%= config.bin %> ref set production models/braggnn~2 -m "roll back to v5"',
    '<%= config.bin %> ref set tags/v1 main --force',
    '<%= config.bin %> ref set main bafyreigh2akiscaildc --expect bafyreib5cbp2ynvq6q',
  ]
  static override args = {
    name: Args.string({ description: 'ref name', required: true }),
    rev: Args.string({ description: 'revision', required: true }),
  }
  static override flags = {
    message: Flags.string({ char: 'm', description: 'reason, kept in the reflog' }),
    force: Flags.boolean({ char: 'f', description: 'allow moving a tag' }),
    expect: Flags.string({ description: 'only if the ref currently points at this CID ("none": only if it does not exist)' }),
    author: Flags.string({ description: 'who, as "Name <email>"' }),
  }

  async run(): Promise<{ ref: string; old: string | null; new: string }> {
    const repo = await this.repo()
    const expect = this.flags.expect === undefined ? undefined : this.flags.expect === 'none' ? null : (await repo.resolve(this.flags.expect)).cid
    const r = await repo.setRef(this.args.name, this.args.rev, {
      who: this.person(this.flags.author),
      message: this.flags.message,
      force: this.flags.force,
      expect,
    })
    this.log(`${r.ref}: ${r.old ? cidToString(r.old) : '(new)'} → ${cidToString(r.new)}`)
    return { ref: r.ref, old: r.old ? cidToString(r.old) : null, new: cidToString(r.new) }
  }
}
