import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { cidToString } from '../codec/cid.js'

export default class Ls extends BaseCommand<typeof Ls> {
  static override summary = 'List the entries of a revision\'s tree.'
  static override examples = ['<%= config.bin %> ls main', '<%= config.bin %> ls main~3 runs/', '<%= config.bin %> ls main --long', '<%= config.bin %> ls tags/v1 --json']
  static override args = {
    rev: Args.string({ description: 'revision', default: 'main' }),
    prefix: Args.string({ description: 'only paths starting with this' }),
  }
  static override flags = { long: Flags.boolean({ char: 'l', description: 'show kind, size and CID' }) }

  async run(): Promise<void> {
    const repo = await this.repo()
    const entries = repo.ls(this.args.rev, { prefix: this.args.prefix ?? '' })
    if (this.jsonEnabled()) return this.streamJson(entries, (e) => ({ path: e.path, kind: e.kind, size: e.size, cid: cidToString(e.cid) }))
    for await (const e of entries) {
      this.log(this.flags.long ? `${e.kind.padEnd(6)} ${String(e.size).padStart(12)}  ${cidToString(e.cid)}  ${e.path}` : e.path)
    }
  }
}
