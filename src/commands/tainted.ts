import { Args } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { cidToString } from '../codec/cid.js'

export default class Tainted extends BaseCommand<typeof Tainted> {
  static override summary = 'List the entries of a revision that are invalidated or derived from something invalidated.'
  static override examples = ['<%= config.bin %> tainted', '<%= config.bin %> tainted models/braggnn --json']
  static override args = { rev: Args.string({ description: 'revision', default: 'main' }) }

  async run(): Promise<Record<string, unknown>[]> {
    const repo = await this.repo()
    const list = await repo.tainted(this.args.rev)
    for (const t of list) {
      const self = t.cid.toString() === t.taint.root
      this.log(`${t.path}  ${self ? 'INVALIDATED' : 'TAINTED'}: ${t.taint.reason}${self ? '' : ` (root cause ${t.taint.root.slice(0, 20)}…)`}`)
    }
    if (list.length === 0) this.log(`nothing in ${this.args.rev} is tainted`)
    return list.map((t) => ({ path: t.path, cid: cidToString(t.cid), ...t.taint }))
  }
}
