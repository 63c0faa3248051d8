import { Args, Flags } from '@oclif/core'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { BaseCommand } from '../cli/base-command.js'
import { changeJson, changeMark, commitJson, commitText } from '../cli/format.js'
import { cidToString } from '../codec/cid.js'
import { formatPerson } from '../model/commit.js'
import { formatRecordJson, toDagJson } from '../model/record.js'
import { taintText } from '../repo/taint-text.js'
import type { ShownTag } from '../repo/show-block.js'

export default class Show extends BaseCommand<typeof Show> {
  static override summary = 'Show a commit and the paths it changed, the record or file at REV:PATH, or any record or file by its CID.'
  static override description =
    'A record prints as pretty DAG-JSON; a file\'s bytes go to stdout exactly as stored (redirect them to a file). ' +
    'A CID (or a unique prefix of 12+ characters) may name any block: a commit, an annotated tag (printed before its commit), a record or a file, ' +
    'so a link {"/": CID} in a record can be followed. A folder is listed with `ls`.'
  static override examples = [
    '<%= config.bin %> show main',
    '<%= config.bin %> show main~1:config/train.json',
    '<%= config.bin %> show models/braggnn@{2}:model/weights.pt > weights-old.pt',
    '<%= config.bin %> show bafyreigh2akiscai --json',
    '<%= config.bin %> show tags/v7',
  ]
  static override args = { rev: Args.string({ description: 'REV, REV:PATH, or a CID', required: true }) }
  static override flags = {
    limit: Flags.integer({ description: 'list at most N changed paths of a commit', default: 1000, min: 0 }),
  }

  async run(): Promise<unknown> {
    const repo = await this.repo()
    const r = await repo.show(this.args.rev, { limit: this.flags.limit })
    if (r.type === 'commit') {
      if (!this.jsonEnabled()) {
        if (r.shadowedTag) process.stderr.write(`warning: '${this.args.rev}' names both a ref and the tag ${r.shadowedTag}; showing the ref (write ${r.shadowedTag} for the tag)\n`)
        if (r.tag) this.log(`${tagText(r.tag)}\n`)
        this.log(commitText(r.cid, r.commit))
        this.log('')
        for (const c of r.changes) this.log(`${changeMark[c.type]}  ${c.path}`)
        if (r.truncated) this.log(`… and more: ${r.counts.added} added, ${r.counts.modified} modified, ${r.counts.removed} removed in all`)
      }
      return {
        type: 'commit',
        ...commitJson(r.cid, r.commit),
        counts: r.counts,
        changes: r.changes.map(changeJson),
        truncated: r.truncated,
        ...(r.tag ? { tag: tagJson(r.tag) } : {}),
        ...(r.shadowedTag ? { shadowedTag: r.shadowedTag } : {}),
      }
    }
    const about = {
      type: r.type,
      ...(r.path === undefined ? {} : { path: r.path }),
      cid: cidToString(r.cid),
      ...(r.commit ? { commit: cidToString(r.commit) } : {}),
      size: r.size,
      ...(r.tainted ? { tainted: r.tainted } : {}),
    }
    // The warning goes to stderr so that stdout stays the exact content.
    if (r.tainted && !this.jsonEnabled()) {
      process.stderr.write(`warning: ${r.path ?? about.cid} is ${taintText(cidToString(r.cid), r.tainted, { nameOf: (root) => root })}\n`)
    }
    if (r.type === 'record') {
      if (!this.jsonEnabled()) process.stdout.write(formatRecordJson(r.value))
      return { ...about, value: toDagJson(r.value) }
    }
    if (!this.jsonEnabled()) await pipeline(Readable.from(r.content()), process.stdout, { end: false })
    return about
  }
}

/** An annotated tag's header, the way git prints one above the commit. */
function tagText({ tag }: ShownTag): string {
  return [`tag ${tag.name}`, `Tagger: ${formatPerson(tag.tagger)}`, `Date:   ${new Date(tag.time).toISOString()}`, '', ...tag.message.split('\n').map((l) => `    ${l}`)].join('\n')
}

function tagJson({ cid, tag }: ShownTag): Record<string, unknown> {
  return { cid: cidToString(cid), name: tag.name, tagger: tag.tagger, date: new Date(tag.time).toISOString(), time: tag.time, message: tag.message }
}
