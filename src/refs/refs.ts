import { CID, parseCid, sameCid } from '../codec/cid.js'
import { ConflictError, NotFoundError, RefusedError } from '../errors.js'
import type { Person } from '../model/commit.js'
import type { RefCells, RefLogRecord } from '../store/ref-cells.js'
import { REMOTE_PREFIX, TAG_PREFIX, checkRefName, checkRefNameFormat } from './ref-name.js'

/** One line of a ref's reflog, with CIDs parsed. `index` is N in `ref@{N}` (0 = newest). */
export interface ReflogEntry {
  ref: string
  index: number
  old: CID | null
  new: CID | null
  who: Person
  time: number
  message: string
}

export interface RefUpdate {
  /** New value, or null to delete the ref. */
  next: CID | null
  /**
   * The value the writer read: the update happens only if the ref still has it
   * (null: the ref must not exist). Undefined: whatever it has now (still atomic).
   */
  expect?: CID | null
  who: Person
  message: string
  time?: number
  /** Allow moving or deleting a tag. */
  force?: boolean
  /** Allow writing `remotes/…` (sync does; users do not). */
  remoteTracking?: boolean
}

/**
 * Named pointers to commits. Every change is a compare-and-swap written atomically with
 * its reflog line; the reflog is append-only and never pruned.
 */
export class Refs {
  constructor(private readonly cells: RefCells) {}

  /** The ref's value, or undefined if it does not exist. Throws on a malformed name. */
  async get(name: string): Promise<CID | undefined> {
    const v = await this.cells.get(checkRefNameFormat(name))
    return v === undefined ? undefined : parseCid(v)
  }

  /** The ref's value; NotFoundError if it does not exist. */
  async resolve(name: string): Promise<CID> {
    const v = await this.get(name)
    if (!v) throw new NotFoundError('ref', name)
    return v
  }

  /** All refs (optionally under a prefix), sorted by name. */
  async *list(prefix = ''): AsyncGenerator<{ name: string; cid: CID }> {
    for await (const [name, value] of this.cells.list(prefix)) yield { name, cid: parseCid(value) }
  }

  /**
   * Compare-and-swap `name` to `next`. Throws ConflictError if the ref moved since the
   * writer read it, RefusedError for a tag without force, InvalidRefNameError for a name a
   * ref may not be given (one already in the store with such a name may still be deleted);
   * the ref is unchanged then.
   */
  async update(name: string, update: RefUpdate): Promise<{ old: CID | null; new: CID | null }> {
    if (update.next === null) checkRefNameFormat(name)
    else checkRefName(name)
    if (name.startsWith(REMOTE_PREFIX) && !update.remoteTracking) {
      throw new RefusedError(`refusing to write '${name}': remotes/… refs are written only by fetch, pull and push`, { ref: name })
    }
    // With `expect` given, the compare-and-swap below decides: reading the ref first would say
    // the same one request earlier (a LIST on S3). Only a no-op update (next = expect) reads it,
    // so as not to report success for an expectation that is stale.
    const current = update.expect !== undefined && !sameCid(update.expect, update.next) ? update.expect : await this.current(name)
    const expect = update.expect === undefined ? current : update.expect
    if (!sameCid(expect, current)) throw staleError(name, expect, current)
    if (name.startsWith(TAG_PREFIX) && current !== null && !update.force && !sameCid(current, update.next)) {
      throw new RefusedError(
        `refusing to ${update.next ? 'move' : 'delete'} tag '${name}' (it points at ${current}); use --force`,
        { ref: name, current: current.toString() },
      )
    }
    // Nothing changes (including deleting a ref that does not exist): nothing to log.
    if (sameCid(current, update.next)) return { old: current, new: current }
    const record: RefLogRecord = {
      old: expect?.toString() ?? null,
      new: update.next?.toString() ?? null,
      who: update.who.email ? { name: update.who.name, email: update.who.email } : { name: update.who.name },
      time: update.time ?? Date.now(),
      message: update.message,
    }
    if (!(await this.cells.compareAndSwap(name, record))) {
      const now = await this.cells.get(name)
      throw staleError(name, expect, now ? parseCid(now) : null)
    }
    return { old: expect, new: update.next }
  }

  private async current(name: string): Promise<CID | null> {
    const text = (await this.cells.get(name)) ?? null
    return text === null ? null : parseCid(text)
  }

  /** The reflog of `name`, newest first (index 0 is the latest update). */
  async reflog(name: string): Promise<ReflogEntry[]> {
    checkRefNameFormat(name)
    const lines: RefLogRecord[] = []
    for await (const r of this.cells.log(name)) lines.push(r)
    return lines.reverse().map((r, index) => ({
      ref: name,
      index,
      old: r.old ? parseCid(r.old) : null,
      new: r.new ? parseCid(r.new) : null,
      who: r.who,
      time: r.time,
      message: r.message,
    }))
  }

  /** Names of every ref that has a reflog, including deleted ones. */
  async *logged(): AsyncGenerator<string> {
    yield* this.cells.logged()
  }
}

function staleError(name: string, expected: CID | null | undefined, actual: CID | null): ConflictError {
  return new ConflictError(
    `ref '${name}' changed: expected ${expected ?? '(absent)'} but it is ${actual ?? '(absent)'}; nothing was written to it`,
    { ref: name, expected: expected?.toString() ?? null, actual: actual?.toString() ?? null },
  )
}
