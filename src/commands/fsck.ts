import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { PedigreeError } from '../errors.js'
import type { FsckResult } from '../repo/fsck.js'

export default class Fsck extends BaseCommand<typeof Fsck> {
  static override summary = 'Verify every block reachable from every ref and reflog entry.'
  static override description =
    "Checks each block's hash, that it decodes, its shape, and that every link is present. Exits 5 when anything is wrong, naming each bad CID and the refs that reach it. " +
    'Records whose links name blocks not in this store (accepted by commit and ingest with --allow-dangling) are listed apart and are not an error unless --strict.'
  static override examples = ['<%= config.bin %> fsck', '<%= config.bin %> fsck --strict', '<%= config.bin %> fsck --json']
  static override flags = {
    strict: Flags.boolean({ description: 'fail (exit 5) on records that link to blocks not in this store, too' }),
  }

  async run(): Promise<FsckResult> {
    const repo = await this.repo()
    const r = await repo.fsck({ strict: this.flags.strict })
    const { commits, trees, records, files } = r.checked
    if (!this.jsonEnabled()) {
      this.log(`checked ${r.roots} roots: ${commits} commits, ${trees} tree nodes, ${records} records, ${files} files`)
      for (const p of r.problems) this.log(`BAD ${p.as} ${p.cid}${p.path ? ` at ${p.path}` : ''}: ${p.problem}\n    reached from: ${p.refs.join(', ')}`)
      if (r.danglingCount > 0) {
        this.log(`note: ${r.danglingCount} record(s) link to blocks not in this store (accepted with --allow-dangling; not an error unless --strict):`)
        for (const d of r.dangling) this.log(`  ${d.path ?? d.cid}: ${d.links.join(', ')}`)
        if (r.danglingCount > r.dangling.length) this.log(`  … and ${r.danglingCount - r.dangling.length} more`)
      }
      if (r.unindexed) this.log(`note: ${r.unindexed} commit(s) not yet in the reverse-link index (lineage catches up on its own; or run pedigree index rebuild)`)
      if (r.ok) this.log('ok')
    }
    if (!r.ok) {
      // Under --json the error object is the whole output (one JSON document), so it carries the report.
      const first = r.problems[0]!
      throw new PedigreeError('ERR_CORRUPT', `fsck found ${r.problems.length} problem(s), first ${first.cid} (reached from ${first.refs.join(', ')})`, { ...r })
    }
    return r
  }
}
