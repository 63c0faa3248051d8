import { Args } from '@oclif/core'
import { join, resolve } from 'node:path'
import { BaseCommand } from '../cli/base-command.js'
import { Repository, STORE_DIRNAME } from '../repo/repository.js'

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Create an empty store.'
  static override description = 'Creates DIR/.pedigree (DIR defaults to the current directory), or the folder named by --repo.'
  static override examples = ['<%= config.bin %> init', '<%= config.bin %> init /data/beamline7', '<%= config.bin %> init --repo /scratch/store.pedigree']
  static override args = { dir: Args.string({ description: 'folder in which to create .pedigree' }) }

  async run(): Promise<{ location: string }> {
    const location = this.flags.repo ? resolve(this.flags.repo) : join(resolve(this.args.dir ?? '.'), STORE_DIRNAME)
    const repo = await Repository.init(location, this.storeOptions())
    await repo.close()
    this.log(`Initialized an empty pedigree store in ${location}`)
    return { location }
  }
}
