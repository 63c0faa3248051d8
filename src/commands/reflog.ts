import { Args } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { cidToString } from '../codec/cid.js'
import { NotFoundError } from '../errors.js'
import { formatPerson } from '../model/commit.js'

export default class Reflog extends BaseCommand<typeof Reflog> {
  static override summary = 'Show every value a ref has had, newest first: who moved it, when and why.'
  static override examples = ['<%= config.bin %> reflog main', '<%= config.bin %> reflog production --json']
  static override args = { ref: Args.string({ description: 'ref name', default: 'main' }) }

  async run(): Promise<Record<string, unknown>[]> {
    const repo = await this.repo()
    const entries = await repo.reflog(this.args.ref)
    // A ref that never existed has no reflog; an empty success would hide a mistyped name.
    if (entries.length === 0) throw new NotFoundError('ref', this.args.ref, 'it has no reflog: it never existed in this store')
    for (const e of entries) {
      const value = e.new ? cidToString(e.new).slice(0, 16) : '(deleted)'.padEnd(16)
      this.log(`${value} ${e.ref}@{${e.index}} ${new Date(e.time).toISOString()} ${formatPerson(e.who)}: ${e.message}`)
    }
    return entries.map((e) => ({
      ref: e.ref,
      index: e.index,
      old: e.old ? cidToString(e.old) : null,
      new: e.new ? cidToString(e.new) : null,
      who: e.who,
      time: e.time,
      date: new Date(e.time).toISOString(),
      message: e.message,
    }))
  }
}
