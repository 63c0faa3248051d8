import { Args } from '@oclif/core'
import { resolve } from 'node:path'
import { BaseCommand } from '../../cli/base-command.js'
import { formatBytes } from '../../cli/progress.js'
import { cidToString } from '../../codec/cid.js'
import { createBundle } from '../../sync/bundle.js'
import { jsonOf } from '../../sync/json.js'
import { syncProgress } from '../push.js'

export default class BundleCreate extends BaseCommand<typeof BundleCreate> {
  static override summary = 'Write refs and everything they reach into a CAR file (for an air gap; importable by IPFS).'
  static override description = [
    'A CARv1 file whose first root is a small dag-cbor block {kind: "pedigree-refs", version: 1, refs: {name: link}}',
    'and whose other roots are the ref values. `ipfs dag import` accepts it; `pedigree bundle import` sets the refs.',
    'Without REF, every ref except remotes/… is bundled.',
  ].join('\n')
  static override examples = ['<%= config.bin %> bundle create campaign-7.car main tags/v7', '<%= config.bin %> bundle create everything.car']
  static override strict = false
  static override args = {
    file: Args.string({ description: 'the .car file to write', required: true }),
    ref: Args.string({ description: 'refs to bundle (default: all but remotes/…)' }),
  }

  async run(): Promise<unknown> {
    const { argv } = await this.parse(BundleCreate)
    const [file, ...refs] = argv as string[]
    const progress = syncProgress(this.interactive)
    const r = await createBundle(await this.repo(), resolve(file!), { refs, onProgress: progress.update })
    progress.done()
    for (const ref of r.refs) this.log(`  ${cidToString(ref.cid)}  ${ref.name}`)
    this.log(`wrote ${r.file}: ${r.blocks} blocks, ${formatBytes(r.bytes)}`)
    return jsonOf(r)
  }
}
