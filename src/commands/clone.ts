import { Args } from '@oclif/core'
import { basename, join, resolve } from 'node:path'
import { BaseCommand } from '../cli/base-command.js'
import { formatBytes } from '../cli/progress.js'
import { cidToString } from '../codec/cid.js'
import { STORE_DIRNAME } from '../repo/repository.js'
import { clone } from '../sync/clone.js'
import { jsonOf } from '../sync/json.js'
import { syncProgress } from './push.js'

export default class Clone extends BaseCommand<typeof Clone> {
  static override summary = 'Make a new store holding everything another store has; it becomes the remote "origin".'
  static override description = 'The new store is DIR/.pedigree (DIR defaults to the name of the source folder), or the folder named by --repo. Every block is verified; on failure nothing is left behind.'
  static override examples = ['<%= config.bin %> clone /mnt/beamline7 mirror', '<%= config.bin %> clone ../campaign --repo /scratch/campaign.pedigree']
  static override args = {
    url: Args.string({ description: 'path to the store to clone (or file:// URL)', required: true }),
    dir: Args.string({ description: 'folder in which to create .pedigree' }),
  }

  async run(): Promise<unknown> {
    const location = this.flags.repo ? resolve(this.flags.repo) : join(resolve(this.args.dir ?? defaultDir(this.args.url)), STORE_DIRNAME)
    const progress = syncProgress(this.interactive)
    const r = await clone(this.args.url, location, { who: this.person(), open: this.storeOptions(), base: process.cwd(), onProgress: progress.update })
    progress.done()
    for (const ref of r.refs) this.log(`  ${cidToString(ref.cid)}  ${ref.ref}`)
    this.log(`cloned ${r.url} into ${r.location}: ${r.blocks} blocks, ${formatBytes(r.bytes)}, ${r.roundTrips} round trips`)
    return jsonOf(r)
  }
}

/** `/data/beamline7/.pedigree` and `/data/beamline7` both give `beamline7`. */
function defaultDir(url: string): string {
  const path = url.replace(/^file:\/\//i, '').replace(/\/+$/, '')
  const name = basename(path) === STORE_DIRNAME ? basename(path.slice(0, -STORE_DIRNAME.length - 1)) : basename(path)
  return name.replace(/\.pedigree$/, '') || 'clone'
}
