import { Args } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { addRemote, type Remote } from '../../sync/remote.js'

export default class RemoteAdd extends BaseCommand<typeof RemoteAdd> {
  static override summary = 'Remember another store under a name, for push, fetch and pull.'
  static override description = 'URL is a path to another store (kept absolute), or a file:// URL. Nothing is contacted.'
  static override examples = ['<%= config.bin %> remote add hpc /mnt/hpc/beamline7/.pedigree', '<%= config.bin %> remote add backup ../backup']
  static override args = {
    name: Args.string({ description: 'remote name', required: true }),
    url: Args.string({ description: 'path to the other store (or file:// URL)', required: true }),
  }

  async run(): Promise<Remote> {
    const repo = await this.repo()
    const r = await addRemote(repo, this.args.name, this.args.url, { base: process.cwd() })
    this.log(`${r.name}\t${r.url}`)
    return r
  }
}
