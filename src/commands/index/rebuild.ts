import { BaseCommand } from '../../cli/base-command.js'

export default class IndexRebuild extends BaseCommand<typeof IndexRebuild> {
  static override summary = 'Drop and rebuild the derived indexes (reverse links for downstream lineage, paths) from blocks and refs.'
  static override examples = ['<%= config.bin %> index rebuild']

  async run(): Promise<{ commits: number }> {
    const repo = await this.repo()
    const commits = await repo.rebuildIndex()
    this.log(`indexed ${commits} commit(s)`)
    return { commits }
  }
}
