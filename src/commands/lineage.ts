import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { lineageDot, lineageMermaid, lineageText } from '../repo/graph-format.js'
import { provDocument } from '../repo/prov.js'

export default class Lineage extends BaseCommand<typeof Lineage> {
  static override summary = 'Show what went into a node (upstream) or what used it (downstream), following CID links.'
  static override description = [
    'Upstream follows the links inside records (the key names the relation: used, wasGeneratedBy, config, …);',
    'downstream uses the reverse-link index kept on every commit (rebuild it with `pedigree index rebuild`).',
    'Nodes derived from an invalidated node are marked TAINTED with the reason. DOT renders with Graphviz.',
  ].join('\n')
  static override examples = [
    '<%= config.bin %> lineage main:model/braggnn/m-7.json',
    '<%= config.bin %> lineage main:calibration/cal-11a.json --down --depth 3',
    '<%= config.bin %> lineage main:model/braggnn/m-7.json --format dot | dot -Tsvg > lineage.svg',
    '<%= config.bin %> lineage main:eval/e1.json --format prov-json > e1.prov.json',
  ]
  static override args = { node: Args.string({ description: 'REV:PATH (or a CID)', required: true }) }
  static override flags = {
    up: Flags.boolean({ description: 'what went into it (default)', exclusive: ['down', 'both'] }),
    down: Flags.boolean({ description: 'what used it', exclusive: ['up', 'both'] }),
    both: Flags.boolean({ description: 'both directions', exclusive: ['up', 'down'] }),
    depth: Flags.integer({ description: 'most links to follow', default: 50, min: 0 }),
    format: Flags.string({ description: 'output format', options: ['text', 'json', 'dot', 'mermaid', 'prov-json'], default: 'text' }),
  }

  async run(): Promise<unknown> {
    const repo = await this.repo()
    const direction = this.flags.down ? 'down' : this.flags.both ? 'both' : 'up'
    const graph = await repo.lineage(this.args.node, { direction, depth: this.flags.depth })
    const format = this.jsonEnabled() ? 'json' : this.flags.format
    if (format === 'json') return graph
    if (format === 'prov-json') process.stdout.write(JSON.stringify(provDocument(graph), null, 2) + '\n')
    else if (format === 'dot') process.stdout.write(lineageDot(graph))
    else if (format === 'mermaid') process.stdout.write(lineageMermaid(graph))
    else {
      const text = lineageText(graph)
      process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
    }
    return graph
  }
}
