import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { changeMark, diffJson, scalarText } from '../cli/format.js'
import { formatBytes } from '../cli/progress.js'
import { cidToString } from '../codec/cid.js'
import type { DiffItem } from '../repo/diff.js'

export default class Diff extends BaseCommand<typeof Diff> {
  static override summary = 'Show what changed between two revisions.'
  static override description = 'Records get a field-level diff, text files a unified diff, binary files a size and CID line.'
  static override examples = [
    '<%= config.bin %> diff main~1 main',
    '<%= config.bin %> diff tags/v3 tags/v7 --path config/',
    '<%= config.bin %> diff main@{1} main --stat',
  ]
  static override args = {
    from: Args.string({ description: 'old revision', required: true }),
    to: Args.string({ description: 'new revision', default: 'main' }),
  }
  static override flags = {
    path: Flags.string({ description: 'only this path or what is under it' }),
    stat: Flags.boolean({ description: 'only the list of changed paths with sizes' }),
  }

  async run(): Promise<void> {
    const repo = await this.repo()
    const items = repo.diff(this.args.from, this.args.to, { path: this.flags.path, stat: this.flags.stat })
    if (this.jsonEnabled()) return this.streamJson(items, diffJson)
    const counts = { added: 0, modified: 0, removed: 0 }
    for await (const d of items) {
      counts[d.type]++
      this.log(diffText(d, this.flags.stat))
    }
    this.log(`${counts.added} added, ${counts.modified} modified, ${counts.removed} removed`)
  }
}

function diffText(d: DiffItem, stat: boolean): string {
  const sizes = `${d.before ? formatBytes(d.before.size) : ''}${d.before && d.after ? ' → ' : ''}${d.after ? formatBytes(d.after.size) : ''}`
  const head = `${changeMark[d.type]}  ${d.path}  (${d.kind}, ${sizes})`
  if (stat) return head
  const lines = [head]
  for (const f of d.fields ?? []) lines.push(`     ${f.field}: ${scalarText(f.before)} → ${scalarText(f.after)}`)
  if (d.patch) {
    const body = d.patch.split('\n').slice(1).map((l) => l.replace(/\t$/, ''))
    if (body[body.length - 1] === '') body.pop()
    lines.push(...body.map((l) => `     ${l}`))
  }
  const cids = `${d.before ? cidToString(d.before.cid).slice(0, 20) : '∅'} → ${d.after ? cidToString(d.after.cid).slice(0, 20) : '∅'}`
  if (d.tooLargeForText) lines.push(`     too large for a line diff: ${cids}`)
  else if (d.binary) lines.push(`     binary: ${cids}`)
  if (d.storage) {
    const stored = d.storage.newStored !== undefined && d.storage.newStored < d.storage.newBytes ? `, ${formatBytes(d.storage.newStored)} stored` : ''
    lines.push(`     storage: ${d.storage.newChunks} of ${d.storage.chunks} chunks new (${formatBytes(d.storage.newBytes)}${stored})`)
  }
  if (d.note) lines.push(`     note: ${d.note}`)
  for (const t of d.tensors ?? []) {
    const shape = (x?: { dtype: string; shape: number[] }): string => (x ? `${x.dtype}[${x.shape.join('×')}]` : '')
    const detail = t.change === 'reshaped' ? `${shape(t.before)} → ${shape(t.after)}` : shape(t.after ?? t.before)
    lines.push(`     tensor ${t.change.padEnd(8)} ${t.name} ${detail}`)
  }
  return lines.join('\n')
}
