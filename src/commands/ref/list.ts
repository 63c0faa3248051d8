import { Args } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { cidToString } from '../../codec/cid.js'

export default class RefList extends BaseCommand<typeof RefList> {
  static override summary = 'List refs and the commits they point at.'
  static override examples = ['<%= config.bin %> ref list', '<%= config.bin %> ref list models/', '<%= config.bin %> ref list --json']
  static override args = { prefix: Args.string({ description: 'only refs starting with this' }) }

  async run(): Promise<{ name: string; cid: string }[]> {
    const repo = await this.repo()
    const out: { name: string; cid: string }[] = []
    for await (const { name, cid } of repo.refs.list(this.args.prefix ?? '')) {
      out.push({ name, cid: cidToString(cid) })
      this.log(`${cidToString(cid)}  ${name}`)
    }
    return out
  }
}
