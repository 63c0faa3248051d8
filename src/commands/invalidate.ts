import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { cidToString } from '../codec/cid.js'

export default class Invalidate extends BaseCommand<typeof Invalidate> {
  static override summary = 'Declare a node wrong. Nothing is deleted: an invalidation record is committed to the `invalidations` ref.'
  static override description = 'Everything downstream of the node then reports as tainted (show, lineage, tainted) until superseded by a new version.'
  static override examples = ['<%= config.bin %> invalidate main:calibration/run-17.json --reason "detector gain mis-set"']
  static override args = { target: Args.string({ description: 'REV:PATH of the bad node', required: true }) }
  static override flags = {
    reason: Flags.string({ char: 'r', description: 'why it is wrong', required: true }),
    author: Flags.string({ description: 'who, as "Name <email>"' }),
  }

  async run(): Promise<Record<string, unknown>> {
    const repo = await this.repo()
    const r = await repo.invalidate(this.args.target, { reason: this.flags.reason, who: this.person(this.flags.author) })
    const downstream = (await repo.tainted('main').catch(() => [])).length
    this.log(`invalidated ${r.path} (${cidToString(r.target)}); recorded in invalidations ${cidToString(r.commit)}`)
    if (downstream) this.log(`${downstream} entr${downstream === 1 ? 'y' : 'ies'} of main now tainted: pedigree tainted main`)
    return { target: cidToString(r.target), path: r.path, commit: cidToString(r.commit), reason: this.flags.reason }
  }
}
