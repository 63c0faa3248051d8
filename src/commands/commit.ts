import { Args, Flags } from '@oclif/core'
import { readFile } from 'node:fs/promises'
import { BaseCommand } from '../cli/base-command.js'
import { ProgressLine } from '../cli/progress.js'

import { cidToString } from '../codec/cid.js'
import { InvalidInputError, NotFoundError } from '../errors.js'
import { fromDagJson, parseRecordJson } from '../model/record.js'
import type { CommitEdit } from '../repo/commit.js'

export default class Commit extends BaseCommand<typeof Commit> {
  static override summary = 'Record files, directories and JSON records as a new commit on a ref.'
  static override description = [
    'Each SPEC is DEST=SRC: the file or directory SRC (recursively) is stored at tree path DEST.',
    'A SPEC without "=" stores SRC under its own relative path. The new tree is the ref\'s current',
    'tree with these edits; the ref is created if new. Links inside records are written {"/": "<cid>"}.',
  ].join('\n')
  static override examples = [
    '<%= config.bin %> commit -b main -m "calibration run 42" raw/run42.h5=/data/run42.h5',
    '<%= config.bin %> commit -b models/braggnn -m "epoch 30" model/weights.pt=./ckpt/e30.pt --record config/train.json=train.json',
    'echo \'{"loss":0.12}\' | <%= config.bin %> commit -b main --record metrics/7.json=- --meta site=aps --meta workflow_id=wf-17',
    '<%= config.bin %> commit -b main -m "drop the bad run" --rm runs/13.json',
  ]
  static override strict = false
  static override args = { spec: Args.string({ description: 'DEST=SRC (a file or directory)', required: false }) }
  static override flags = {
    branch: Flags.string({ char: 'b', description: 'ref to commit to (created if new)', default: 'main' }),
    message: Flags.string({ char: 'm', description: 'commit message', default: '' }),
    author: Flags.string({ description: 'author as "Name <email>" (default: PEDIGREE_AUTHOR or the login name)' }),
    meta: Flags.string({ description: 'workflow context KEY=VALUE (repeatable; VALUE may be JSON)', multiple: true, multipleNonGreedy: true }),
    record: Flags.string({ description: 'a JSON record DEST=FILE (FILE "-" reads stdin; repeatable)', multiple: true, multipleNonGreedy: true }),
    rm: Flags.string({ description: 'remove a path, or everything under it (repeatable)', multiple: true, multipleNonGreedy: true }),
    'allow-empty': Flags.boolean({ description: 'commit even if the tree does not change' }),
    'allow-dangling': Flags.boolean({ description: 'accept links to CIDs that are not in the store' }),
  }

  async run(): Promise<Record<string, unknown>> {
    const { flags, argv } = await this.parse(Commit)
    const edits: CommitEdit[] = []
    for (const spec of argv as string[]) edits.push(fileSpec(spec))
    let stdinUsed = false
    for (const spec of flags.record ?? []) {
      const { dest, src } = splitSpec(spec, '--record')
      if (src === '-') {
        if (stdinUsed) throw new InvalidInputError('only one --record can read stdin')
        stdinUsed = true
      }
      const bytes = src === '-' ? await readStdin() : await readFile(src).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') throw new NotFoundError('record file', src)
        throw new InvalidInputError(`cannot read ${src}: ${e.message}`)
      })
      const text = utf8Text(bytes, src === '-' ? '<stdin>' : src)
      edits.push({ type: 'record', path: dest, value: parseRecordJson(text, src === '-' ? '<stdin>' : src) })
    }
    for (const path of flags.rm ?? []) edits.push({ type: 'remove', path: path.replace(/\/+$/, '') })
    const repo = await this.repo()
    const progress = new ProgressLine('storing', this.interactive)
    const result = await repo.commit({
      ref: flags.branch,
      edits,
      message: flags.message,
      author: this.person(flags.author),
      meta: parseMeta(flags.meta ?? []),
      allowEmpty: flags['allow-empty'],
      allowDangling: flags['allow-dangling'],
      onProgress: (p) => (p.phase === 'store' ? progress.update(p.bytes, p.totalBytes, p.path) : progress.done()),
    })
    progress.done()
    const { added, modified, removed } = result.changes
    this.log(`[${result.ref} ${cidToString(result.cid)}] ${result.commit.message.split('\n', 1)[0]}`)
    this.log(` ${added} added, ${modified} modified, ${removed} removed`)
    if (result.skipped.length > 0) {
      const shown = result.skipped.slice(0, 20).map((s) => `${s.path} (${s.reason})`)
      const more = result.skipped.length > shown.length ? `, … and ${result.skipped.length - shown.length} more` : ''
      process.stderr.write(`warning: not committed: ${shown.join(', ')}${more} (symbolic links, special files and stores' .pedigree folders are skipped; commit what a link names with its own DEST=SRC)\n`)
    }
    return {
      cid: cidToString(result.cid),
      ref: result.ref,
      parent: result.parent ? cidToString(result.parent) : null,
      tree: cidToString(result.commit.tree),
      changes: result.changes,
      skipped: result.skipped,
    }
  }
}

function splitSpec(spec: string, what: string): { dest: string; src: string } {
  const eq = spec.indexOf('=')
  if (eq <= 0 || eq === spec.length - 1) throw new InvalidInputError(`bad ${what} '${spec}': expected DEST=SRC`, { spec })
  return { dest: spec.slice(0, eq).replace(/\/+$/, ''), src: spec.slice(eq + 1) }
}

function fileSpec(spec: string): CommitEdit {
  if (spec.includes('=')) {
    const { dest, src } = splitSpec(spec, 'spec')
    return { type: 'file', path: dest, source: src }
  }
  // `.` (or `./`) is the current folder at the root of the tree, as `git add .`.
  const path = spec.replace(/^(\.\/)+/, '').replace(/\/+$/, '')
  return { type: 'file', path: path === '.' ? '' : path, source: spec }
}

function parseMeta(pairs: string[]): Record<string, unknown> {
  const meta: Record<string, unknown> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new InvalidInputError(`bad --meta '${pair}': expected KEY=VALUE`)
    const raw = pair.slice(eq + 1)
    let value: unknown = raw
    if (/^[[{"\d-]|^(true|false|null)$/.test(raw)) {
      try {
        value = fromDagJson(JSON.parse(raw))
      } catch {
        value = raw
      }
      // A number that would not print back as written (`1.10`, a 20-digit id) stays text.
      if (typeof value === 'number' && String(value) !== raw) value = raw
    }
    meta[pair.slice(0, eq)] = value
  }
  return meta
}

async function readStdin(): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of process.stdin) parts.push(chunk as Buffer)
  return Buffer.concat(parts)
}

/** JSON is UTF-8: other bytes (Latin-1 text, say) are refused, not turned into U+FFFD. */
function utf8Text(bytes: Buffer, source: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    let at = 0
    // The first offending byte: the longest prefix that decodes.
    for (let lo = 0, hi = bytes.length; lo <= hi; ) {
      const mid = (lo + hi) >> 1
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, mid))
        at = mid
        lo = mid + 1
      } catch {
        hi = mid - 1
      }
    }
    const line = bytes.subarray(0, at).toString('utf8').split('\n').length
    throw new InvalidInputError(`${source}: not UTF-8 at byte ${at} (line ${line}); JSON must be UTF-8`, { source, byte: at, line })
  }
}
