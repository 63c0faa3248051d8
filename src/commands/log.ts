import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { commitJson, commitText, short } from '../cli/format.js'
import { markTainted, type MarkedLogEntry } from '../repo/log-taint.js'
import { taintText } from '../repo/taint-text.js'

export default class Log extends BaseCommand<typeof Log> {
  static override summary = 'Show the history of a revision, newest first.'
  static override examples = [
    '<%= config.bin %> log',
    '<%= config.bin %> log models/braggnn -n 5 --oneline',
    '<%= config.bin %> log main --path config/train.json',
    '<%= config.bin %> log main --json -n 20',
  ]
  static override args = { rev: Args.string({ description: 'revision to start from', default: 'main' }) }
  static override flags = {
    'max-count': Flags.integer({ char: 'n', description: 'show at most N commits', min: 0 }),
    path: Flags.string({ description: 'only commits that changed this path (or anything under it)' }),
    oneline: Flags.boolean({ description: 'one line per commit' }),
  }

  async run(): Promise<void> {
    const repo = await this.repo()
    const entries = markTainted(repo, repo.log({ from: this.args.rev, limit: this.flags['max-count'], path: this.flags.path }))
    const shadowed = this.jsonEnabled() ? undefined : await repo.shadowedTag(this.args.rev)
    if (shadowed) process.stderr.write(`warning: '${this.args.rev}' names both a ref and the tag ${shadowed}; showing the ref (write ${shadowed} for the tag)\n`)
    if (this.jsonEnabled()) {
      return this.streamJson(entries, (e) => ({
        ...commitJson(e.cid, e.commit),
        ...(e.tainted ? { tainted: e.tainted, taintedCount: e.taintedCount, taintedTruncated: e.taintedTruncated } : {}),
      }))
    }
    let first = true
    // One write per 64 KiB rather than two console.log calls per commit: on a cold start those
    // cost ~2.5 ms of CPU for 20 commits (against ~0.8), and a long history still streams.
    let out = ''
    try {
      for await (const entry of entries) {
        const { cid, commit, taintedCount } = entry
        if (this.flags.oneline) out += `${short(cid)} ${commit.message.split('\n', 1)[0]}${taintedCount ? ` [tainted: ${taintedCount}]` : ''}\n`
        else out += `${first ? '' : '\n'}${commitText(cid, commit)}\n${taintedCount ? `${taintedList(entry)}\n` : ''}`
        first = false
        if (out.length >= 65536) {
          process.stdout.write(out)
          out = ''
        }
      }
    } finally {
      // What was read before a failure is printed before the error, as it was line by line.
      if (out !== '') process.stdout.write(out)
    }
  }
}

/** The tainted entries a commit introduced (the first ones, and how many more), each with its causes. */
function taintedList({ tainted = [], taintedCount = 0 }: MarkedLogEntry): string {
  const lines = ['', '    Tainted (invalidated, or derived from something invalidated):']
  // Roots introduced by this same commit are named by path.
  const pathOf = new Map(tainted.map((t) => [t.cid, t.path]))
  for (const t of tainted) lines.push(`      ! ${t.path}: ${taintText(t.cid, t.taint, { nameOf: (root) => pathOf.get(root) })}`)
  if (taintedCount > tainted.length) lines.push(`      … and ${taintedCount - tainted.length} more`)
  return lines.join('\n')
}
