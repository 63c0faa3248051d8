import { Args } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { addRemote, type Remote } from '../../sync/remote.js'

export default class RemoteAdd extends BaseCommand<typeof RemoteAdd> {
  static override summary = 'Remember another store under a name, for push, fetch and pull.'
  static override description = 'URL is a path to another store (kept absolute) or a file:// URL; an http(s):// URL of a `pedigree serve` (push sends the token in PEDIGREE_TOKEN); or s3://bucket/prefix, a store in an S3-compatible object store (create it first with `pedigree init --repo s3://…`; endpoint and keys from the usual AWS environment). Nothing is contacted.'
  static override examples = [
    '<%= config.bin %> remote add hpc /mnt/hpc/beamline7/.pedigree',
    '<%= config.bin %> remote add backup ../backup',
    '<%= config.bin %> remote add facility https://pedigree.facility.example',
    '<%= config.bin %> remote add archive s3://lab-provenance/archive',
  ]
  static override args = {
    name: Args.string({ description: 'remote name', required: true }),
    url: Args.string({ description: 'the other store: a path, file://, http(s):// or s3:// URL', required: true }),
  }

  async run(): Promise<Remote> {
    const repo = await this.repo()
    const r = await addRemote(repo, this.args.name, this.args.url, { base: process.cwd() })
    this.log(`${r.name}\t${r.url}`)
    return r
  }
}
