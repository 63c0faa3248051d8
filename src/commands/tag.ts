import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { cidToString } from '../codec/cid.js'

export default class Tag extends BaseCommand<typeof Tag> {
  static override summary = 'Name a commit under tags/ (annotated with -m). Tags never move without --force.'
  static override examples = [
    '<%= config.bin %> tag braggnn-v7 models/braggnn -m "deployed to the beamline"',
    '<%= config.bin %> tag calib-2026-11 main~2',
  ]
  static override args = {
    name: Args.string({ description: 'tag name (tags/ is added)', required: true }),
    rev: Args.string({ description: 'revision', default: 'main' }),
  }
  static override flags = {
    message: Flags.string({ char: 'm', description: 'annotation; makes an annotated tag' }),
    force: Flags.boolean({ char: 'f', description: 'move an existing tag' }),
    author: Flags.string({ description: 'tagger, as "Name <email>"' }),
  }

  async run(): Promise<Record<string, unknown>> {
    const repo = await this.repo()
    const r = await repo.tag(this.args.name, this.args.rev, { tagger: this.person(this.flags.author), message: this.flags.message, force: this.flags.force })
    this.log(`${r.ref} → ${cidToString(r.commit)}${r.annotated ? ` (annotated, tag node ${cidToString(r.cid)})` : ''}`)
    return { ref: r.ref, cid: cidToString(r.cid), commit: cidToString(r.commit), annotated: r.annotated, previous: r.previous ? cidToString(r.previous) : null }
  }
}
