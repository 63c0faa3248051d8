import type { Block } from '../codec/block.js'
import type { CID } from '../codec/cid.js'
import type { Person } from '../model/commit.js'

/** A ref as the other side has it. */
export interface RemoteRef {
  name: string
  cid: CID
}

/** A request to move a ref on the other side; see {@link Transport.compareAndSwapRef}. */
export interface RemoteRefUpdate {
  name: string
  /** The value the pusher saw (null: the ref must not exist there yet). */
  expected: CID | null
  next: CID
  /** Recorded in the receiver's reflog. */
  who: Person
  message: string
  /** Allow a move that is not a fast-forward of `expected` (and moving a tag). Still a compare-and-swap. */
  force?: boolean
}

export interface RemoteRefResult {
  name: string
  old: CID | null
  new: CID
}

/** What a receiver stored from one `putBlocks` call. */
export interface PutBlocksResult {
  /** Blocks received and verified (including ones it already had). */
  blocks: number
  bytes: number
}

/**
 * The other side of a sync: another store, reached through a path today and through
 * `pedigree serve` (HTTP, CAR streams) or an S3 bucket later. Push, fetch, pull and clone
 * speak only this interface, so a new transport is one new class and one line in
 * open-transport.ts.
 *
 * Trust: nothing that arrives through a transport is trusted. Blocks from `getBlocks` and
 * `walkCommits` are verified by the caller before use; blocks given to `putBlocks` are
 * verified by the receiver before it stores them, and `compareAndSwapRef` checks that the
 * whole DAG under the new value is present there before the ref moves.
 *
 * Every method is one round trip (tests and benchmarks count them; see stats.ts).
 */
export interface Transport {
  /** Where the other side is, for messages (a path, a URL). */
  readonly url: string

  /** Every ref the other side has, sorted by name (including its own `remotes/…`, which fetch skips). */
  listRefs(): Promise<RemoteRef[]>

  /**
   * Which of these blocks the other side has, in order. A receiver answers `true` only for
   * blocks it stores; a sender treats `true` as "and everything under it" (see negotiate.ts).
   */
  hasMany(cids: readonly CID[]): Promise<boolean[]>

  /**
   * The blocks it has among `cids`, in any order; absent ones are left out (the caller notices).
   * Over HTTP: one request answered by a CAR stream. Not verified: the caller verifies.
   */
  getBlocks(cids: readonly CID[]): AsyncIterable<Block>

  /**
   * Commit and annotated-tag nodes reachable from `heads` (themselves included), walking
   * parents on the other side, newest first, never below a CID in `have`, at most `limit`.
   * It lets a fetch learn a long history in a few round trips instead of one per commit.
   * Not verified: the caller verifies.
   */
  walkCommits(heads: readonly CID[], options: { have?: readonly CID[]; limit: number }): AsyncIterable<Block>

  /**
   * Send blocks. The receiver verifies each against its CID before it stores it and fails
   * naming the first bad one; blocks that verified before it stay stored (an interrupted
   * transfer resumes without resending them) but nothing becomes reachable from a ref.
   * Over HTTP: one request whose body is a CAR stream.
   */
  putBlocks(blocks: AsyncIterable<Block>): Promise<PutBlocksResult>

  /**
   * Move a ref on the other side, which first checks that the whole DAG under `next` is in its
   * store (IncompleteDagError naming the missing CIDs otherwise), that the move is a
   * fast-forward of `expected` unless `force` (RefusedError), and then compare-and-swaps
   * against `expected` (ConflictError if the ref moved since the pusher read it). On any error
   * the ref is unchanged.
   */
  compareAndSwapRef(update: RemoteRefUpdate): Promise<RemoteRefResult>

  /** Release what the transport holds (an open store, connections). */
  close(): Promise<void>
}

/** Progress of a sync operation, for `onProgress` callbacks (the CLI draws it on a terminal). */
export interface SyncProgress {
  /**
   * `negotiate`: blocks examined while finding what the other side lacks; `send`: blocks and
   * bytes sent; `receive`: received and verified; `verify`: blocks checked for completeness;
   * `write`: written to a bundle.
   */
  phase: 'negotiate' | 'send' | 'receive' | 'verify' | 'write'
  blocks: number
  bytes: number
}

/** How much a transfer cost, returned by push, fetch, pull and clone (tests and benchmarks assert on it). */
export interface TransferStats {
  /** Blocks sent (push) or received (fetch). */
  blocks: number
  bytes: number
  /** Transport calls made (each one round trip). */
  roundTrips: number
  /** Of those, `hasMany` calls made to find what the other side lacks. */
  negotiationRounds: number
}
