import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { formatBytes } from '../cli/progress.js'
import { cidToString } from '../codec/cid.js'
import type { DuRef, DuStore } from '../repo/du.js'

interface DuRefJson extends Omit<DuRef, 'commit'> {
  commit: string
}

export default class Du extends BaseCommand<typeof Du> {
  static override summary = 'Show the bytes refs hold, in all their versions, and what the store spends on them.'
  static override description = [
    'For each ref (default: every ref) or revision given:',
    '  current       bytes of its tree (what a checkout writes)',
    '  all versions  the same summed over every commit of its history',
    '  unique        bytes of the distinct blocks of that history (after deduplication)',
    '  stored        what those blocks take in the store (after deduplication and compression)',
    '  ratio         all versions / stored',
    'and for the whole store: every block, reachable or not, and the bytes it takes.',
  ].join('\n')
  static override examples = [
    '<%= config.bin %> du',
    '<%= config.bin %> du models/braggnn tags/v1',
    '<%= config.bin %> du main --refs-only',
    '<%= config.bin %> du --json',
  ]
  static override strict = false
  static override args = { rev: Args.string({ description: 'ref or revision (repeatable; default: every ref)', required: false }) }
  static override flags = {
    'refs-only': Flags.boolean({ description: 'skip the scan of every block in the store' }),
  }

  async run(): Promise<{ refs: DuRefJson[]; store?: DuStore }> {
    const { argv, flags } = await this.parse(Du)
    const repo = await this.repo()
    const result = await repo.du({ revs: argv as string[], refsOnly: flags['refs-only'] })
    const rows = [['REF', 'COMMITS', 'CURRENT', 'ALL VERSIONS', 'UNIQUE', 'STORED', 'RATIO']]
    for (const r of result.refs) {
      rows.push([r.name, String(r.commits), formatBytes(r.logical), formatBytes(r.logicalAllVersions), formatBytes(r.unique), formatBytes(r.stored), `${r.ratio.toFixed(1)}x`])
    }
    if (result.refs.length > 0) {
      const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)))
      for (const row of rows) this.log(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '))
    } else {
      this.log('no refs')
    }
    for (const r of result.refs) if (r.missing > 0) this.warn(`${r.name}: ${r.missing} blocks of its history are missing from the store; run \`pedigree fsck\``)
    const s = result.store
    if (s) this.log(`store: ${s.blocks} blocks, ${formatBytes(s.stored)} stored (${formatBytes(s.size)} uncompressed)`)
    return { refs: result.refs.map((r) => ({ ...r, commit: cidToString(r.commit) })), ...(s ? { store: s } : {}) }
  }
}
