import { BaseCommand } from '../../cli/base-command.js'
import { listRemotes, type Remote } from '../../sync/remote.js'

export default class RemoteList extends BaseCommand<typeof RemoteList> {
  static override summary = 'List remotes and their URLs.'
  static override examples = ['<%= config.bin %> remote list', '<%= config.bin %> remote list --json']

  async run(): Promise<Remote[]> {
    const remotes = await listRemotes(await this.repo())
    for (const r of remotes) this.log(`${r.name}\t${r.url}`)
    return remotes
  }
}
