import type { Block } from '../codec/block.js'
import { DAG_CBOR, cidToString, sameCid, type CID } from '../codec/cid.js'
import { decodeDagCborFields } from '../codec/dag-cbor-decode.js'
import { ConflictError, RefusedError } from '../errors.js'
import { REMOTE_PREFIX, checkRefName } from '../refs/ref-name.js'
import { ensureIndexed } from '../repo/link-index.js'
import type { Repository } from '../repo/repository.js'
import type { Blockstore } from '../store/blockstore.js'
import { isAncestor } from './ancestry.js'
import { checkComplete } from './complete.js'
import { CidMap, verifyIncoming } from './dag.js'
import type { PutBlocksResult, RemoteRefResult, RemoteRefUpdate, SyncProgress } from './transport.js'

/** Verified blocks are written in batches of about this many bytes (or BATCH_BLOCKS blocks). */
const BATCH_BYTES = 8 * 1024 * 1024
const BATCH_BLOCKS = 1024
/** Most CIDs a store's {@link receivedMaps} holds (about 100 bytes each); then it starts again. */
const MAX_REMEMBERED = 512 * 1024
const NO_FIELDS: ReadonlySet<string> = new Set()
/** Blocks this big or bigger are not checked for being maps (records are small; a large node is read again when reached). */
const MAX_REMEMBERED_BLOCK = 64 * 1024
const remembered = new WeakMap<Blockstore, CidMap<number>>()

/**
 * Blocks this process received into `store` (from a push) and stored, each verified against its
 * CID and found to be a valid dag-cbor map, which is all a record must be, with its length (what
 * a tree entry of it must give as its size): the completeness check before a ref moves need not
 * read them again (a push of 100k records read, re-hashed and decoded every one of them a second
 * time). Bounded: the oldest are forgotten, which only means reading those again.
 */
export function receivedMaps(store: Blockstore): { sizeOf(cid: CID): number | undefined } | undefined {
  const map = remembered.get(store)
  return map && { sizeOf: (cid) => map.get(cid) }
}

function remember(store: Blockstore, blocks: readonly Block[]): void {
  let map = remembered.get(store)
  if (!map || map.size + blocks.length > MAX_REMEMBERED) remembered.set(store, (map = new CidMap()))
  for (const b of blocks) map.set(b.cid, b.bytes.length)
}

/**
 * Gathers verified blocks and writes them in batches. `flush` on every way out, so that
 * what verified before a failure stays (a resumed transfer does not send it again).
 *
 * One batch is written while the next one fills (at most one write in flight): receiving
 * (from a socket, a file) and writing (to disk, with its syncs) overlap instead of taking turns.
 *
 * Blocks are hashed here, on the caller's thread. Hashing large ones on the hashing worker
 * (codec/hash-worker.ts) was tried for pushes of a 512 MiB file: staging each block for the
 * worker and posting it cost the server's main thread as much as hashing it (~0.5 s), and the
 * process ~0.3–0.5 s more CPU, with no gain in wall time on this 2-core machine.
 */
export class VerifiedWriter {
  private batch: Block[] = []
  private bytes = 0
  private writing: Promise<void> | undefined
  /** Blocks of the batch that validated as dag-cbor maps, remembered once it is stored. */
  private batchMaps: Block[] = []
  blocks = 0
  totalBytes = 0

  /**
   * @param rememberMaps check each small dag-cbor block for being a valid map, and remember the
   *   ones that are once stored ({@link receivedMaps}): for a receiver whose ref update follows.
   */
  constructor(
    private readonly store: Blockstore,
    private readonly rememberMaps = false,
  ) {}

  /** Verify one incoming block (CID form and hash) and queue it; throws CorruptBlockError naming it. */
  async add(block: Block): Promise<void> {
    verifyIncoming(block.cid, block.bytes)
    const map = this.rememberMaps && block.cid.code === DAG_CBOR && block.bytes.length < MAX_REMEMBERED_BLOCK && decodeDagCborFields(block.bytes, NO_FIELDS) !== undefined
    await this.accept(block, map)
  }

  /** Queue a block the caller has already verified against its CID (with {@link verifyIncoming}). */
  async addVerified(block: Block): Promise<void> {
    await this.accept(block)
  }

  /** Write everything queued, and wait until every write has finished. */
  async flush(): Promise<void> {
    await this.startWrite()
    await this.settle()
  }

  private async accept(block: Block, map = false): Promise<void> {
    this.batch.push(block)
    if (map) this.batchMaps.push(block)
    this.bytes += block.bytes.length
    this.blocks++
    this.totalBytes += block.bytes.length
    if (this.bytes >= BATCH_BYTES || this.batch.length >= BATCH_BLOCKS) await this.startWrite()
  }

  /** Wait for the write in flight (rethrowing its failure), then start writing the queued batch. */
  private async startWrite(): Promise<void> {
    await this.settle()
    if (this.batch.length === 0) return
    const batch = this.batch
    this.batch = []
    this.bytes = 0
    const maps = this.batchMaps
    this.batchMaps = []
    // Remembered only once stored: a block remembered is one the store has.
    const writing = this.store.putMany(batch).then(() => {
      if (maps.length > 0) remember(this.store, maps)
    })
    // A failure is reported by the next add or flush; until then it must not go unhandled.
    writing.catch(() => {})
    this.writing = writing
  }

  private async settle(): Promise<void> {
    const writing = this.writing
    this.writing = undefined
    if (writing) await writing
  }
}

/**
 * Store blocks that arrive from outside, each verified against its CID first. The first bad
 * block ends the transfer with CorruptBlockError naming it; the blocks verified before it are
 * kept (nothing reaches them until a ref update has checked its whole DAG).
 *
 * @example
 * await receiveBlocks(repo.blocks, carBlocks)
 */
export async function receiveBlocks(
  store: Blockstore,
  source: AsyncIterable<Block>,
  { onProgress }: { onProgress?: (p: SyncProgress) => void } = {},
): Promise<PutBlocksResult> {
  const writer = new VerifiedWriter(store, true)
  try {
    for await (const block of source) {
      await writer.add(block)
      onProgress?.({ phase: 'receive', blocks: writer.blocks, bytes: writer.totalBytes })
    }
  } catch (e) {
    // Keep what verified (a second attempt then sends only the rest); report the first failure.
    await writer.flush().catch(() => {})
    throw e
  }
  await writer.flush()
  return { blocks: writer.blocks, bytes: writer.totalBytes }
}

/** The values of every ref in the store: DAGs known to be complete there. */
export async function refValues(repo: Repository): Promise<CID[]> {
  const out: CID[] = []
  for await (const { cid } of repo.refs.list()) out.push(cid)
  return out
}

/**
 * The receiving side of a push: move ref `name` from `expected` to `next` after checking
 * that the whole DAG under `next` is in this store, and that the move is a fast-forward
 * (unless forced). A compare-and-swap: if the ref no longer has `expected`, ConflictError and
 * nothing changes. New commits are then indexed for lineage.
 *
 * @example
 * await receiveRefUpdate(remoteRepo, { name: 'main', expected: seen, next: head, who, message: 'push' })
 */
export interface ReceiveRefOptions {
  /**
   * Index the new commits for lineage through this instead of before returning (a server
   * answers the pusher first and indexes after, in its own queue). The index is derived:
   * lineage and taint catch it up themselves if it lags.
   */
  deferIndex?: (index: () => Promise<unknown>) => void
  /**
   * Ref values this caller already read from the store (a push's listing of the remote's
   * refs): the completeness check stops at them instead of listing every ref again. Blocks
   * are never deleted, so a DAG complete under a ref then is complete now.
   */
  known?: readonly CID[]
}

export async function receiveRefUpdate(repo: Repository, update: RemoteRefUpdate, { deferIndex, known }: ReceiveRefOptions = {}): Promise<RemoteRefResult> {
  const { name, expected, next, who, message, force = false } = update
  checkRefName(name)
  if (name.startsWith(REMOTE_PREFIX)) {
    throw new RefusedError(`refusing to push to '${name}': remotes/… refs record what a store saw elsewhere and are written only by fetch`, { ref: name })
  }
  // A stale expectation fails early here (and, atomically, in refs.update below if the ref moves meanwhile).
  const current = (await repo.refs.get(name)) ?? null
  if (!sameCid(current, expected)) {
    throw new ConflictError(
      `ref '${name}' changed: expected ${expected ? cidToString(expected) : '(absent)'} but it is ${current ? cidToString(current) : '(absent)'}; nothing was written to it`,
      { ref: name, expected: expected ? cidToString(expected) : null, actual: current ? cidToString(current) : null },
    )
  }
  await checkComplete(repo.blocks, [next], {
    known: known ?? (await refValues(repo)),
    checked: receivedMaps(repo.blocks),
    where: `the store at ${repo.location} cannot move '${name}' to ${cidToString(next)}`,
  })
  if (expected && !force && !(await isAncestor(repo.blocks, expected, next))) {
    throw new RefusedError(`refusing to move '${name}' from ${cidToString(expected)} to ${cidToString(next)}: not a fast-forward (use --force to replace it)`, {
      ref: name,
      old: cidToString(expected),
      new: cidToString(next),
    })
  }
  await repo.refs.update(name, { next, expect: expected, who, message, force })
  // The ref has moved: the push succeeded. The index is derived; lineage catches up on its own if this fails.
  if (deferIndex) deferIndex(() => ensureIndexed(repo, { heads: [next] }))
  else await ensureIndexed(repo, { heads: [next] }).catch(() => {})
  return { name, old: expected, new: next }
}
