import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { ProgressLine, formatBytes } from '../cli/progress.js'
import { cidToString } from '../codec/cid.js'
import { jsonOf } from '../sync/json.js'
import { push } from '../sync/push.js'
import type { SyncProgress } from '../sync/transport.js'

export default class Push extends BaseCommand<typeof Push> {
  static override summary = 'Send refs to a remote: only the blocks it lacks; fast-forward only unless --force.'
  static override description = [
    'Each REF is pushed to the same name on the remote (default: main). The remote verifies every',
    'block and that the whole history is present before it moves a ref, and the move is a',
    'compare-and-swap against the value this push saw: if someone else pushed meanwhile, this push',
    'fails (exit 4) and their commit stays. --force replaces a ref that is not an ancestor.',
  ].join('\n')
  static override examples = ['<%= config.bin %> push', '<%= config.bin %> push hpc main models/braggnn', '<%= config.bin %> push hpc main --force']
  static override strict = false
  static override args = {
    remote: Args.string({ description: 'remote name (default: origin)' }),
    ref: Args.string({ description: 'refs to push (default: main)' }),
  }
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'replace remote refs even when not a fast-forward (and move tags)' }),
    author: Flags.string({ description: 'who, as "Name <email>" (kept in the remote reflog)' }),
  }

  async run(): Promise<unknown> {
    const { argv } = await this.parse(Push)
    const [remote = 'origin', ...refs] = argv as string[]
    const repo = await this.repo()
    const progress = syncProgress(this.interactive)
    const r = await push(repo, {
      remote,
      refs: refs.length > 0 ? refs : undefined,
      force: this.flags.force,
      who: this.person(this.flags.author),
      open: this.storeOptions(),
      onProgress: progress.update,
    })
    progress.done()
    for (const p of r.refs) this.log(`  ${p.ref}: ${p.old ? cidToString(p.old) : '(new)'} → ${cidToString(p.new)} (${p.status})`)
    if (r.refs.every((p) => p.status === 'up-to-date')) this.log(`everything up to date on ${r.remote} (${r.url}); ${plural(r.roundTrips, 'round trip')}`)
    else this.log(`pushed to ${r.remote} (${r.url}): ${plural(r.blocks, 'block')}, ${formatBytes(r.bytes)}, ${plural(r.roundTrips, 'round trip')}`)
    return jsonOf(r)
  }
}

/** One progress line per phase, drawn only when `enabled` (a terminal, no --json). */
export function syncProgress(enabled: boolean): { update: (p: SyncProgress) => void; done: () => void } {
  const labels: Record<SyncProgress['phase'], string> = { negotiate: 'negotiating', send: 'sending', receive: 'receiving', verify: 'verifying', write: 'writing' }
  let phase: string | undefined
  let line: ProgressLine | undefined
  return {
    update: (p) => {
      if (p.phase !== phase) {
        line?.done()
        phase = p.phase
        line = new ProgressLine(labels[p.phase], enabled)
      }
      line!.update(p.bytes, undefined, `${p.blocks} blocks`)
    },
    done: () => line?.done(),
  }
}

/** `1 round trip`, `2 round trips`. */
export function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`
}
