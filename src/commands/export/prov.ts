import { Args, Flags } from '@oclif/core'
import { writeFile } from 'node:fs/promises'
import { BaseCommand } from '../../cli/base-command.js'
import { InvalidInputError } from '../../errors.js'
import { PROV_RELATIONS, type ProvJson } from '../../repo/prov.js'

export default class ExportProv extends BaseCommand<typeof ExportProv> {
  static override summary = 'Export the provenance of a revision as W3C PROV-JSON.'
  static override description = [
    'Records and files of the revision (or under the given paths) become PROV entities; task-like records (type task, activity, run, job, step or workflow, or started_at/ended_at without a type) become activities. ' +
      'Links become used, wasGeneratedBy, wasDerivedFrom… by the key they sit under; commit authors become agents credited with what they committed; ' +
      'earlier versions of a path are linked by wasRevisionOf; records in the `invalidations` ref become wasInvalidatedBy.',
    'The document goes to stdout, or to --output.',
  ].join('\n\n')
  static override examples = [
    '<%= config.bin %> export prov main -o main.prov.json',
    '<%= config.bin %> export prov tags/v7 model/ task/ -o model-v7.prov.json',
    '<%= config.bin %> export prov main --json | jq \'.wasGeneratedBy\'',
    '<%= config.bin %> export prov main -o prov.json && python3 -c \'import prov.model as m; print(m.ProvDocument.deserialize("prov.json", format="json").get_provn())\'',
  ]
  static override strict = false
  static override args = {
    rev: Args.string({ description: 'revision', required: true }),
    path: Args.string({ description: 'paths to export (entries or folders; default: everything)' }),
  }
  static override flags = {
    output: Flags.string({ char: 'o', description: 'write the document to this file instead of stdout' }),
    'max-commits': Flags.integer({ description: 'most commits of history to walk for revisions and authors', default: 10_000, min: 0 }),
  }

  async run(): Promise<ProvJson> {
    const { argv } = await this.parse(ExportProv)
    const [rev, ...paths] = argv as string[]
    const repo = await this.repo()
    const doc = await repo.exportProv(rev!, { paths, maxCommits: this.flags['max-commits'] })
    const text = JSON.stringify(doc, null, 2) + '\n'
    if (this.flags.output) {
      await writeFile(this.flags.output, text).catch((e: NodeJS.ErrnoException) => {
        throw new InvalidInputError(`cannot write ${this.flags.output}: ${e.message}`, { path: this.flags.output }, { cause: e })
      })
      this.log(`wrote ${this.flags.output}: ${summary(doc)}`)
    } else if (!this.jsonEnabled()) {
      process.stdout.write(text)
    }
    return doc
  }
}

function summary(doc: ProvJson): string {
  const count = (section: keyof ProvJson): number => Object.keys(doc[section] ?? {}).length
  const relations = PROV_RELATIONS.reduce((n, r) => n + count(r), 0)
  return `${count('entity')} entities, ${count('activity')} activities, ${count('agent')} agents, ${relations} relations`
}
