import { Args } from '@oclif/core'
import { join, resolve } from 'node:path'
import { BaseCommand } from '../cli/base-command.js'
import { formatBytes } from '../cli/progress.js'
import { cidToString } from '../codec/cid.js'
import { STORE_DIRNAME } from '../repo/repository.js'
import { clone, defaultCloneDir } from '../sync/clone.js'
import { jsonOf } from '../sync/json.js'
import { syncProgress } from './push.js'

export default class Clone extends BaseCommand<typeof Clone> {
  static override summary = 'Make a new store holding everything another store has; it becomes the remote "origin".'
  static override description = 'URL is a path to another store (or file://), an http(s):// URL of a `pedigree serve` (send PEDIGREE_TOKEN when it requires one for reads), or s3://bucket/prefix. The new store is DIR/.pedigree (DIR defaults to the name of the source: its last path segment, or the host name of a bare http URL), or the folder named by --repo. Every block is verified; on failure nothing is left behind.'
  static override examples = [
    '<%= config.bin %> clone /mnt/beamline7 mirror',
    '<%= config.bin %> clone ../campaign --repo /scratch/campaign.pedigree',
    '<%= config.bin %> clone http://beamline7.lab.example:8080 beamline7',
    '<%= config.bin %> clone s3://lab-provenance/campaigns/2026',
  ]
  static override args = {
    url: Args.string({ description: 'the store to clone: a path, file://, http(s):// or s3:// URL', required: true }),
    dir: Args.string({ description: 'folder in which to create .pedigree' }),
  }

  async run(): Promise<unknown> {
    const location = this.flags.repo ? resolve(this.flags.repo) : join(resolve(this.args.dir ?? defaultCloneDir(this.args.url)), STORE_DIRNAME)
    const progress = syncProgress(this.interactive)
    const r = await clone(this.args.url, location, { who: this.person(), open: this.storeOptions(), base: process.cwd(), onProgress: progress.update })
    progress.done()
    for (const ref of r.refs) this.log(`  ${cidToString(ref.cid)}  ${ref.ref}`)
    this.log(`cloned ${r.url} into ${r.location}: ${r.blocks} blocks, ${formatBytes(r.bytes)}, ${r.roundTrips} round trips`)
    return jsonOf(r)
  }
}
