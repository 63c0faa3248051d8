import { Args, Flags } from '@oclif/core'
import { createReadStream, createWriteStream, existsSync, type WriteStream } from 'node:fs'
import { BaseCommand } from '../cli/base-command.js'
import { readLines } from '../cli/lines.js'
import { cidToString } from '../codec/cid.js'
import { InvalidInputError, NotFoundError } from '../errors.js'
import type { IngestReject } from '../repo/ingest.js'

export default class Ingest extends BaseCommand<typeof Ingest> {
  static override summary = 'Commit records from JSON Lines in batches, one commit per batch.'
  static override description = [
    'Reads one JSON record per line (Flowcept task documents, OpenLineage RunEvents, …) as a stream.',
    'Links are {"/": "<cid>"}; {"@": "<rev>:<path>"} is resolved to the CID at that path when the line is read.',
    'A bad line stops the ingest before anything of its batch is committed (earlier batches stay),',
    'unless --skip-bad, which writes bad lines to a rejects file and goes on; if every line is bad, it exits 2.',
    'Running the same ingest again (same input, path template and branch; after a crash, an error, or to',
    'add lines appended since) resumes it: the lines an earlier run committed are skipped, checked by the',
    'digest each ingest commit records in its meta, so nothing is committed twice or put back to an older value.',
  ].join('\n')
  static override examples = [
    '<%= config.bin %> ingest -b main --path-template "tasks/{workflow_id}/{task_id}.json" tasks.jsonl',
    'flowcept-export | <%= config.bin %> ingest -b campaigns/c42 --batch 5000 -',
    '<%= config.bin %> ingest -b main --skip-bad --rejects bad.jsonl events.jsonl',
    '<%= config.bin %> ingest -b main --batch 1000 tasks.jsonl   # again after a crash: committed batches are skipped',
  ]
  static override args = { file: Args.string({ description: 'JSON Lines file, or - for stdin', default: '-' }) }
  static override flags = {
    branch: Flags.string({ char: 'b', description: 'ref to commit to', default: 'main' }),
    'path-template': Flags.string({ description: 'tree path of each record: {field}, {a.b}, {_cid}, {_line}', default: 'records/{_cid}.json' }),
    batch: Flags.integer({ description: 'records per commit', default: 1000, min: 1 }),
    'skip-bad': Flags.boolean({ description: 'write bad lines to the rejects file and go on' }),
    rejects: Flags.string({ description: 'where --skip-bad writes bad lines (default: FILE.rejects.jsonl, or rejects.jsonl for stdin)' }),
    'allow-dangling': Flags.boolean({ description: 'accept links to CIDs that are not in the store' }),
    message: Flags.string({ char: 'm', description: 'commit message prefix', default: 'ingest' }),
    author: Flags.string({ description: 'author as "Name <email>"' }),
  }

  async run(): Promise<Record<string, unknown>> {
    const { file } = this.args
    if (file !== '-' && !existsSync(file)) throw new NotFoundError('input file', file)
    const input = file === '-' ? process.stdin : createReadStream(file)
    const lines = readLines(input)
    const repo = await this.repo()
    let rejects: WriteStream | undefined
    const rejectsPath = this.flags.rejects ?? (file === '-' ? 'rejects.jsonl' : `${file}.rejects.jsonl`)
    const interactive = this.interactive
    let firstReject: IngestReject | undefined
    const result = await repo.ingest(lines, {
      ref: this.flags.branch,
      author: this.person(this.flags.author),
      pathTemplate: this.flags['path-template'],
      batch: this.flags.batch,
      skipBad: this.flags['skip-bad'],
      allowDangling: this.flags['allow-dangling'],
      message: this.flags.message,
      onReject: (r) => {
        firstReject ??= r
        rejects ??= createWriteStream(rejectsPath)
        rejects.write(JSON.stringify(r) + '\n')
      },
      onProgress: (p) => {
        if (interactive) process.stderr.write(`\ringested ${p.records} records in ${p.commits} commits (line ${p.lines})`)
      },
    })
    if (interactive) process.stderr.write('\r\x1b[2K')
    if (rejects) await new Promise((resolve) => rejects!.end(resolve))
    this.log(`ingested ${result.records} records from ${result.lines} lines in ${result.commits.length} commit(s) on ${this.flags.branch}`)
    const ingested = result.skipped.filter((b) => b.reason === 'ingested')
    if (ingested.length) {
      const records = ingested.reduce((n, b) => n + b.records, 0)
      this.log(
        `skipped lines ${ingested[0]!.firstLine}–${ingested[ingested.length - 1]!.lastLine} (${records} records in ${ingested.length} commit(s)): ${this.flags.branch} has them from an earlier ingest of this input`,
      )
    }
    const unchanged = result.skipped.filter((b) => b.reason === 'unchanged')
    if (unchanged.length) {
      const records = unchanged.reduce((n, b) => n + b.records, 0)
      this.log(`skipped ${unchanged.length} batch(es) of ${records} records that ${this.flags.branch} already holds unchanged`)
    }
    if (result.rejected) this.log(`${result.rejected} bad line(s) written to ${rejectsPath}`)
    // Some bad lines are what --skip-bad is for; all of them is a wrong template or a wrong input.
    if (result.rejected > 0 && result.records === 0 && result.skipped.length === 0) {
      throw new InvalidInputError(
        `every line was rejected (${result.rejected} in ${rejectsPath}; the first, line ${firstReject?.line}: ${firstReject?.error}); nothing was committed`,
        { rejected: result.rejected, rejectsFile: rejectsPath },
      )
    }
    return {
      ref: this.flags.branch,
      lines: result.lines,
      records: result.records,
      rejected: result.rejected,
      ...(result.rejected ? { rejectsFile: rejectsPath } : {}),
      commits: result.commits.map((c) => ({ cid: cidToString(c.cid), records: c.records, firstLine: c.firstLine, lastLine: c.lastLine })),
      skipped: result.skipped,
    }
  }
}
