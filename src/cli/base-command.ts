import { Command, Flags, type Interfaces } from '@oclif/core'
import { userInfo, hostname } from 'node:os'
import { InvalidInputError, PedigreeError } from '../errors.js'
import type { Person } from '../model/commit.js'
import { parsePerson } from '../model/commit.js'
import { Repository } from '../repo/repository.js'
import { clearProgress } from './progress.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/** Exit codes by error code; documented in the README. */
const EXIT_CODES: Record<string, number> = {
  ERR_INVALID_INPUT: 2,
  ERR_INVALID_REF_NAME: 2,
  ERR_UNSAFE_PATH: 2,
  ERR_AMBIGUOUS: 2,
  ERR_NOT_FOUND: 3,
  ERR_CONFLICT: 4,
  ERR_REFUSED: 4,
  ERR_NOTHING_TO_COMMIT: 4,
  ERR_EXISTS: 4,
  ERR_CORRUPT: 5,
  ERR_INCOMPLETE: 5,
  ERR_UNSUPPORTED: 2,
  ERR_LOCKED: 6,
  ERR_UNAUTHORIZED: 7,
  ERR_FORBIDDEN: 7,
  ERR_UNREACHABLE: 8,
  ERR_TOO_LARGE: 2,
  // Stopped by the caller (Ctrl-C): the shell's code for SIGINT.
  ERR_INTERRUPTED: 130,
}

/**
 * Shared flags (--repo, --json), opening the store, and turning library errors into a
 * message on stderr (or a JSON error object) and a non-zero exit code.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    repo: Flags.string({
      description: 'the store: a .pedigree folder or a folder containing one (default: found upward from the current directory)',
      env: 'PEDIGREE_REPO',
      helpGroup: 'GLOBAL',
    }),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  private openRepo?: Repository

  override async init(): Promise<void> {
    await super.init()
    // oclif fills a missing argument from piped stdin (after a 10 ms wait). No pedigree command
    // takes an argument that way, and stdin must stay untouched for `--record DEST=-`.
    for (const arg of Object.values(this.ctor.args ?? {})) arg.ignoreStdin = true
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
  }

  /** Open the store named by --repo / PEDIGREE_REPO, or the nearest .pedigree upward. */
  protected async repo(): Promise<Repository> {
    if (this.openRepo) return this.openRepo
    const dir = this.flags.repo ?? Repository.find(process.cwd())
    if (!dir) {
      throw new PedigreeError('ERR_NOT_FOUND', `no pedigree store here or in any parent of ${process.cwd()}; run \`pedigree init\` or pass --repo`)
    }
    this.openRepo = await Repository.open(dir, this.storeOptions())
    return this.openRepo
  }

  protected storeOptions(): { lockTimeoutMs: number; onWait: (m: string) => void; holder: string } {
    const seconds = Number(process.env.PEDIGREE_LOCK_TIMEOUT ?? 30)
    return {
      lockTimeoutMs: Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 30_000,
      onWait: (message) => {
        if (!this.jsonEnabled()) process.stderr.write(`${message}\n`)
      },
      holder: `pedigree ${this.id ?? ''}`.trim(),
    }
  }

  /** Who is acting: --author, else PEDIGREE_AUTHOR ("Name <email>"), else the login name. */
  protected person(flag?: string): Person {
    if (flag !== undefined && flag.trim() === '') throw new InvalidInputError("--author is empty: expected 'Name <email>' or 'Name'")
    const text = flag ?? process.env.PEDIGREE_AUTHOR
    if (text) return parsePerson(text)
    let name = 'unknown'
    try {
      name = userInfo().username
    } catch {
      // no passwd entry (containers): keep 'unknown'
    }
    return { name, email: `${name}@${hostname()}` }
  }

  /** True when progress bars may be drawn: a terminal on stderr and no --json. */
  protected get interactive(): boolean {
    return Boolean(process.stderr.isTTY) && !this.jsonEnabled()
  }

  override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    // The reader of stdout went away (`pedigree show … | head`): stop quietly, as git does.
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return
    if (!(err instanceof PedigreeError)) {
      if (err.oclif) {
        // A usage error (unknown flag, bad flag value, missing argument). oclif's own --json
        // output dumps the whole parser context with no code, and exits 1; give it our shape.
        if (this.jsonEnabled() && (err as { code?: string }).code !== 'EEXIT') {
          return this.report(new PedigreeError('ERR_INVALID_INPUT', err.message), err.oclif.exit ?? 2)
        }
        return super.catch(err)
      }
      // An unexpected failure: still a clear message, never a silent success.
      const wrapped = new PedigreeError('ERR_INTERNAL', err.message || String(err), {}, { cause: err })
      return this.report(wrapped, 1)
    }
    return this.report(err, EXIT_CODES[err.code] ?? 1)
  }

  private report(err: PedigreeError, code: number): void {
    process.exitCode = code
    clearProgress()
    if (this.jsonEnabled()) {
      process.stdout.write(JSON.stringify({ error: { code: err.code, message: err.message, data: err.data } }, null, 2) + '\n')
    } else {
      process.stderr.write(`error: ${err.message}\n`)
      if (process.env.PEDIGREE_DEBUG && err.cause) process.stderr.write(`cause: ${(err.cause as Error).stack ?? err.cause}\n`)
    }
  }

  override async finally(err: Error | undefined): Promise<unknown> {
    if (this.openRepo) {
      try {
        await this.openRepo.close()
      } catch (closeError) {
        // After a failure (a full disk, say) closing may fail for the same reason: the first
        // error is the one to report. A close that fails after success is reported itself.
        if (!err) await this.catch(closeError as Error)
      }
    }
    return super.finally(err)
  }

  /** Write a JSON array item by item, so long listings never sit in memory. */
  protected async streamJson<I>(items: AsyncIterable<I>, toJson: (item: I) => unknown): Promise<void> {
    // Nothing is written before the first item arrives: an error while resolving the revision
    // (the usual failure) then leaves stdout holding only the error object, which parses.
    const it = items[Symbol.asyncIterator]()
    let next = await it.next()
    process.stdout.write('[')
    let first = true
    while (!next.done) {
      process.stdout.write((first ? '\n  ' : ',\n  ') + JSON.stringify(toJson(next.value)))
      first = false
      next = await it.next()
    }
    process.stdout.write(first ? ']\n' : '\n]\n')
  }
}
