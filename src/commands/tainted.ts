import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { cidToString } from '../codec/cid.js'
import { taintText } from '../repo/taint-text.js'

export default class Tainted extends BaseCommand<typeof Tainted> {
  static override summary = 'List the entries of a revision that are invalidated or derived from something invalidated.'
  static override description = 'Each entry names every invalidation that reaches it: its own first (INVALIDATED), then those upstream of it in the order they were declared.'
  static override examples = [
    '<%= config.bin %> tainted',
    '<%= config.bin %> tainted models/braggnn --json',
    '<%= config.bin %> tainted main --root main:calibration/cal-11a.json',
  ]
  static override args = { rev: Args.string({ description: 'revision', default: 'main' }) }
  static override flags = {
    root: Flags.string({ description: 'only entries tainted by this invalidated node (REV:PATH, CID or CID prefix)' }),
  }

  async run(): Promise<Record<string, unknown>[]> {
    const repo = await this.repo()
    const list = await repo.tainted(this.args.rev, { root: this.flags.root })
    // Roots are named by their path in this revision when they are in it.
    const pathOf = new Map(list.map((t) => [cidToString(t.cid), t.path]))
    for (const t of list) this.log(`${t.path}  ${taintText(cidToString(t.cid), t.taint, { nameOf: (root) => pathOf.get(root) })}`)
    if (list.length === 0) this.log(`nothing in ${this.args.rev} is tainted${this.flags.root ? ` by ${this.flags.root}` : ''}`)
    return list.map((t) => ({ path: t.path, cid: cidToString(t.cid), ...t.taint }))
  }
}
