import { Args } from '@oclif/core'
import { BaseCommand } from '../../cli/base-command.js'
import { cidToString } from '../../codec/cid.js'
import { showRemote } from '../../sync/remote.js'

export default class RemoteShow extends BaseCommand<typeof RemoteShow> {
  static override summary = 'Show a remote: its URL and what it had when last seen (from the tracking refs; not contacted).'
  static override examples = ['<%= config.bin %> remote show hpc']
  static override args = { name: Args.string({ description: 'remote name', required: true }) }

  async run(): Promise<{ name: string; url: string; refs: { ref: string; tracking: string; cid: string }[] }> {
    const r = await showRemote(await this.repo(), this.args.name)
    this.log(`remote ${r.name}\n  url: ${r.url}`)
    for (const t of r.refs) this.log(`  ${cidToString(t.cid)}  ${t.ref}  (${t.tracking})`)
    if (r.refs.length === 0) this.log('  (nothing fetched or pushed yet)')
    return { name: r.name, url: r.url, refs: r.refs.map((t) => ({ ref: t.ref, tracking: t.tracking, cid: cidToString(t.cid) })) }
  }
}
