import { Args, Flags } from '@oclif/core'
import { join, resolve } from 'node:path'
import { BaseCommand } from '../cli/base-command.js'
import { Repository, STORE_DIRNAME } from '../repo/repository.js'
import { isS3Url } from '../store/s3/url.js'

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Create an empty store.'
  static override description =
    'Creates DIR/.pedigree (DIR defaults to the current directory), or the store named by --repo (a folder, or s3://bucket/prefix). ' +
    'With --store s3://bucket/prefix the blocks and refs live in that S3 bucket (created there; the bucket must exist) and .pedigree only points at it, ' +
    'so every command run below DIR uses the bucket. Endpoint, region and credentials come from the usual AWS environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE).'
  static override examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init /data/beamline7',
    '<%= config.bin %> init --repo /scratch/store.pedigree',
    '<%= config.bin %> init --store s3://lab-provenance/beamline7',
    '<%= config.bin %> init --repo s3://lab-provenance/beamline7',
  ]
  static override args = { dir: Args.string({ description: 'folder in which to create .pedigree' }) }
  static override flags = {
    store: Flags.string({ description: 'keep the store in S3 at this URL (s3://bucket/prefix); .pedigree points at it' }),
  }

  async run(): Promise<{ location: string; store?: string }> {
    const { repo: named, store } = this.flags
    if (named && isS3Url(named)) {
      const repo = await Repository.init(named, this.storeOptions())
      const location = repo.location
      await repo.close()
      this.log(`Initialized an empty pedigree store in ${location}`)
      return { location }
    }
    const location = named ? resolve(named) : join(resolve(this.args.dir ?? '.'), STORE_DIRNAME)
    const repo = await Repository.init(location, { ...this.storeOptions(), ...(store !== undefined ? { store } : {}) })
    const url = store !== undefined ? repo.location : undefined
    await repo.close()
    this.log(url ? `Initialized an empty pedigree store in ${url}, used from ${location}` : `Initialized an empty pedigree store in ${location}`)
    return url ? { location, store: url } : { location }
  }
}
