import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ProgressLine, formatBytes } from '../cli/progress.js'
import { cidToString } from '../codec/cid.js'

export default class Checkout extends BaseCommand<typeof Checkout> {
  static override summary = 'Write the files and records of a revision into a directory, byte-exact.'
  static override description = 'Existing files that differ are refused unless --force; tree paths that would escape the directory are refused.'
  static override examples = [
    '<%= config.bin %> checkout main -o ./restore',
    '<%= config.bin %> checkout models/braggnn~3 model/weights.pt -o ./old-model',
    '<%= config.bin %> checkout tags/v7 config/ -o . --force',
  ]
  static override strict = false
  static override args = {
    rev: Args.string({ description: 'revision', required: true }),
    path: Args.string({ description: 'paths to write (entries or folders; default: everything)' }),
  }
  static override flags = {
    output: Flags.string({ char: 'o', description: 'directory to write into', required: true }),
    force: Flags.boolean({ char: 'f', description: 'overwrite files that differ' }),
  }

  async run(): Promise<Record<string, unknown>> {
    const { argv } = await this.parse(Checkout)
    const [rev, ...paths] = argv as string[]
    const repo = await this.repo()
    const progress = new ProgressLine('writing', this.interactive)
    const r = await repo.checkout(rev!, {
      outDir: this.flags.output,
      paths,
      force: this.flags.force,
      onProgress: (p) => progress.update(p.bytes, p.totalBytes, p.path),
    })
    progress.done()
    const bytes = r.written.reduce((n, w) => n + w.size, 0)
    this.log(`checked out ${r.written.length} ${r.written.length === 1 ? 'entry' : 'entries'} (${formatBytes(bytes)}) of ${cidToString(r.commit)} into ${r.outDir}${r.unchanged ? `; ${r.unchanged} already up to date` : ''}`)
    return {
      commit: cidToString(r.commit),
      outDir: r.outDir,
      written: r.written.map((w) => ({ path: w.path, kind: w.kind, size: w.size, cid: cidToString(w.cid) })),
      unchanged: r.unchanged,
    }
  }
}
