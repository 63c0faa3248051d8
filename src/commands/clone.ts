import { Args } from '@oclif/core'
import { constants } from 'node:os'
import { join, resolve } from 'node:path'
import { BaseCommand } from '../cli/base-command.js'
import { formatBytes } from '../cli/progress.js'
import { cidToString } from '../codec/cid.js'
import { STORE_DIRNAME } from '../repo/repository.js'
import { clone, defaultCloneDir } from '../sync/clone.js'
import { jsonOf } from '../sync/json.js'
import { plural, syncProgress } from './push.js'

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

export default class Clone extends BaseCommand<typeof Clone> {
  static override summary = 'Make a new store holding everything another store has; it becomes the remote "origin".'
  static override description = 'URL is a path to another store (or file://), an http(s):// URL of a `pedigree serve` (send PEDIGREE_TOKEN when it requires one for reads), or s3://bucket/prefix. The new store is DIR/.pedigree (DIR defaults to the name of the source: its last path segment, or the host name of a bare http URL), or the folder named by --repo. Every block is verified. If the clone fails, what it made is removed; if it is interrupted (Ctrl-C, SIGTERM), what was received is kept and running the same clone again resumes it, fetching only what is missing.'
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
    // Ctrl-C or SIGTERM: stop the transfer, let the store keep what it received, say how to go
    // on, then end by the signal. A second signal ends the process at once.
    const stop = new AbortController()
    let interrupted: NodeJS.Signals | undefined
    const onSignal = (signal: NodeJS.Signals): void => {
      interrupted = signal
      for (const s of SIGNALS) process.off(s, onSignal)
      stop.abort()
      setTimeout(() => process.kill(process.pid, signal), 10_000).unref()
    }
    for (const s of SIGNALS) process.on(s, onSignal)
    let r
    try {
      r = await clone(this.args.url, location, { who: this.person(), open: this.storeOptions(), base: process.cwd(), onProgress: progress.update, signal: stop.signal })
    } catch (e) {
      if (!interrupted) throw e
      progress.done()
      process.stderr.write(`clone interrupted; run the same \`pedigree clone\` again to resume it (what was received is kept in ${location})\n`)
      process.kill(process.pid, interrupted)
      // The signal ends the process; should someone else be listening for it, exit as it would have.
      return new Promise(() => setTimeout(() => process.exit(128 + (constants.signals[interrupted!] ?? 0)), 2_000))
    } finally {
      for (const s of SIGNALS) process.off(s, onSignal)
    }
    progress.done()
    for (const ref of r.refs) this.log(`  ${cidToString(ref.cid)}  ${ref.ref}`)
    this.log(`${r.resumed ? 'resumed the clone of' : 'cloned'} ${r.url} into ${r.location}: ${plural(r.blocks, 'block')}, ${formatBytes(r.bytes)}, ${plural(r.roundTrips, 'round trip')}`)
    return jsonOf(r)
  }
}
