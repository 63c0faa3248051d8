import { Args, Flags } from '@oclif/core'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { BaseCommand } from '../cli/base-command.js'
import { changeJson, changeMark, commitJson, commitText } from '../cli/format.js'
import { cidToString } from '../codec/cid.js'
import { formatRecordJson, toDagJson } from '../model/record.js'
import { taintText } from '../repo/taint-text.js'

export default class Show extends BaseCommand<typeof Show> {
  static override summary = 'Show a commit and the paths it changed, or the record or file at REV:PATH.'
  static override description = 'A record prints as pretty DAG-JSON; a file\'s bytes go to stdout exactly as stored (redirect them to a file).'
  static override examples = [
    '<%= config.bin %> show main',
    '<%= config.bin %> show main~1:config/train.json',
    '<%= config.bin %> show models/braggnn@{2}:model/weights.pt > weights-old.pt',
    '<%= config.bin %> show bafyreigh2akiscai --json',
  ]
  static override args = { rev: Args.string({ description: 'REV or REV:PATH', required: true }) }
  static override flags = {
    limit: Flags.integer({ description: 'list at most N changed paths of a commit', default: 1000, min: 0 }),
  }

  async run(): Promise<unknown> {
    const repo = await this.repo()
    const r = await repo.show(this.args.rev, { limit: this.flags.limit })
    if (r.type === 'commit') {
      if (!this.jsonEnabled()) {
        this.log(commitText(r.cid, r.commit))
        this.log('')
        for (const c of r.changes) this.log(`${changeMark[c.type]}  ${c.path}`)
        if (r.truncated) this.log(`… and more: ${r.counts.added} added, ${r.counts.modified} modified, ${r.counts.removed} removed in all`)
      }
      return { type: 'commit', ...commitJson(r.cid, r.commit), counts: r.counts, changes: r.changes.map(changeJson), truncated: r.truncated }
    }
    const about = { type: r.type, path: r.path, cid: cidToString(r.cid), commit: cidToString(r.commit), size: r.size, ...(r.tainted ? { tainted: r.tainted } : {}) }
    // The warning goes to stderr so that stdout stays the exact content.
    if (r.tainted && !this.jsonEnabled()) {
      process.stderr.write(`warning: ${r.path} is ${taintText(cidToString(r.cid), r.tainted, { nameOf: (root) => root })}\n`)
    }
    if (r.type === 'record') {
      if (!this.jsonEnabled()) process.stdout.write(formatRecordJson(r.value))
      return { ...about, value: toDagJson(r.value) }
    }
    if (!this.jsonEnabled()) await pipeline(Readable.from(r.content()), process.stdout, { end: false })
    return about
  }
}
