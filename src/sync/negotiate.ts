import type { Block } from '../codec/block.js'
import { RAW, type CID } from '../codec/cid.js'
import type { Blockstore } from '../store/blockstore.js'
import { cidKey } from '../codec/cid.js'
import { CidMap, CidSet, linkKey, linksOfLocalNode, type DagLink } from './dag.js'
import { forEachConcurrently } from '../util/concurrently.js'
import { IncompleteDagError, type MissingBlock } from './errors.js'
import type { SyncProgress, Transport } from './transport.js'

/** Commits asked about in the first round trip (later rounds grow while all are new). */
export const DEFAULT_BATCH = 256
/** Most CIDs in one request (about 300 KiB of CIDs; a DAG level wider than this takes several). */
export const MAX_BATCH = 8192
/** Requests about one DAG level in flight at once (a level wider than MAX_BATCH takes several). */
const LEVEL_REQUESTS_IN_FLIGHT = 4

/**
 * How many commits to read ahead through a history and ask about in one round: it starts
 * small and doubles (up to {@link MAX_BATCH}) while every commit asked about is new, as in a
 * first push of a long history, so round trips grow with the logarithm of its length; a round
 * in which the other side had some falls back to the start.
 */
export class AdaptiveBatch {
  size: number
  constructor(private readonly initial: number) {
    this.size = initial
  }
  record(asked: number, lacking: number): void {
    if (asked === 0) return
    this.size = lacking === asked ? Math.min(this.size * 2, Math.max(MAX_BATCH, this.initial)) : this.initial
  }
}

export interface NegotiateOptions {
  /**
   * CIDs the other side is known to have with their whole DAGs (its ref values, which never
   * point at incomplete DAGs): pruned without asking.
   */
  known?: Iterable<CID>
  /**
   * Blocks the other side is known to lack (a receiver's IncompleteDagError after an earlier
   * transfer was cut short): sent, and walked from, without asking.
   */
  lacking?: readonly MissingBlock[]
  /** Commits asked about in the first round (default {@link DEFAULT_BATCH}). */
  batchSize?: number
  /** Most CIDs per request (default {@link MAX_BATCH}). */
  maxBatch?: number
  /**
   * Where to keep the bytes of blocks read while negotiating that link nowhere (records), for
   * {@link readBlocks} to send without reading them again; at most `keepBytes` in all.
   */
  keep?: CidMap<Uint8Array>
  /** Default {@link KEEP_BYTES}. */
  keepBytes?: number
  onProgress?: (p: SyncProgress) => void
}

/** Bytes of blocks negotiation keeps for sending (a 100k-record push reads ~37 MiB of records). */
export const KEEP_BYTES = 64 * 1024 * 1024

export interface Negotiation {
  /** The blocks to send, every block after the blocks it links to (children first). */
  order: CID[]
  /** CIDs asked about in all. */
  asked: number
  /** `hasMany` round trips. */
  rounds: number
}

interface Needed {
  links: DagLink[]
}

/**
 * Find the blocks under `heads` that the other side lacks, asking it in batches and pruning
 * every subtree it has: a commit it has stands for its whole history, a tree node for its
 * subtree, a file node for its chunks.
 *
 * Commits first: the local history is read ahead (a batch of commits per round, the batch
 * doubling while all are new), so a long run of new commits costs a few round trips rather
 * than one per commit. Then the contents of the new commits, a level at a time, each level in
 * one request (of at most `maxBatch` CIDs): the tree roots, the nodes under the ones it lacks,
 * and so on down to records, file nodes and chunks. Round trips grow with the depth of the
 * DAG, not with its size: one changed record in a tree of a million costs one round per tree
 * level, plus one for the commit and one for the record.
 *
 * The order returned puts children before parents, so a transfer cut short leaves the other
 * side holding only blocks whose DAGs it has whole, and "has it" stays a safe reason to prune.
 *
 * @example
 * const { order } = await negotiate(repo.blocks, transport, [head], { known: remoteValues })
 */
export async function negotiate(
  local: Blockstore,
  remote: Pick<Transport, 'hasMany'>,
  heads: readonly CID[],
  { known = [], lacking = [], batchSize = DEFAULT_BATCH, maxBatch = MAX_BATCH, keep, keepBytes = KEEP_BYTES, onProgress }: NegotiateOptions = {},
): Promise<Negotiation> {
  const had = new CidSet(known)
  const answers = new CidMap<boolean>()
  for (const m of lacking) answers.set(m.cid, false)
  const needed = new CidMap<Needed>()
  let asked = 0
  let rounds = 0
  let examined = 0
  const ask = async (cids: CID[], keys = cids.map(cidKey)): Promise<void> => {
    if (cids.length === 0) return
    const got = await remote.hasMany(cids)
    rounds++
    asked += cids.length
    keys.forEach((k, i) => answers.setKey(k, got[i] === true))
    examined += cids.length
    onProgress?.({ phase: 'negotiate', blocks: examined, bytes: 0 })
  }
  let keptBytes = 0
  const read = async (links: readonly DagLink[]): Promise<(DagLink[] | undefined)[]> => {
    const got = await local.getMany(links.map((l) => l.cid))
    return links.map((l, i) => {
      const bytes = got[i]
      if (!bytes) return undefined
      const out = linksOfLocalNode(l.cid, bytes, l.as, l.optional)
      // Blocks that link nowhere (records, mostly) are kept to be sent as read, up to a budget:
      // readBlocks would read them all again.
      if (keep && out.length === 0 && keptBytes + bytes.length <= keepBytes) {
        keep.setKey(linkKey(l), bytes)
        keptBytes += bytes.length
      }
      return out
    })
  }
  const localMissing = (m: MissingBlock[]): never => {
    throw new IncompleteDagError(m, 'the local store is missing part of what is being sent (run `pedigree fsck`)')
  }

  // 1. Commits (and tag nodes).
  const contents: DagLink[] = []
  const commitLinks = new CidMap<DagLink[]>()
  const linksOfCommit = async (cid: CID): Promise<DagLink[]> => {
    let links = commitLinks.get(cid)
    if (!links) {
      const [l] = await read([{ cid, as: 'commit', optional: false }])
      if (!l) localMissing([{ cid, as: 'commit' }])
      links = l!
      commitLinks.set(cid, links)
    }
    return links
  }
  const startCommits = [...heads, ...lacking.filter((m) => m.as === 'commit').map((m) => m.cid)]
  let frontier = startCommits.filter((c) => !had.has(c))
  const decided = new CidSet()
  const commitBatch = new AdaptiveBatch(batchSize)
  while (frontier.length > 0) {
    // Read ahead through the local history, gathering up to a batch of commits not yet asked about.
    const batch: CID[] = []
    const inBatch = new CidSet()
    const queue = [...frontier]
    for (let i = 0; i < queue.length && batch.length < commitBatch.size; i++) {
      const c = queue[i]!
      if (had.has(c) || answers.has(c) || !inBatch.addNew(c)) continue
      batch.push(c)
      for (const l of await linksOfCommit(c)) if (l.as === 'commit') queue.push(l.cid)
    }
    // Ask about their trees in the same round (phase 2 uses the answers): one round trip less.
    const trees = batch.flatMap((c) => commitLinks.get(c) ?? []).filter((l) => l.as === 'tree' && !had.has(l.cid) && !answers.has(l.cid))
    await ask([...batch, ...trees.map((l) => l.cid)])
    commitBatch.record(batch.length, batch.filter((c) => answers.get(c) === false).length)
    // Keep what is reachable from the frontier through commits it lacks; stop at the rest.
    const next: CID[] = []
    const inNext = new CidSet()
    const walk = [...frontier]
    for (let w = 0; w < walk.length; w++) {
      const c = walk[w]!
      if (had.has(c) || decided.has(c)) continue
      const answer = answers.get(c)
      if (answer === undefined) {
        if (inNext.addNew(c)) next.push(c)
        continue
      }
      decided.add(c)
      if (answer) continue
      const links = await linksOfCommit(c)
      needed.set(c, { links })
      for (const l of links) {
        if (l.as === 'commit') walk.push(l.cid)
        else contents.push(l)
      }
    }
    frontier = next
  }

  // 2. Contents, a level at a time: every CID of a level is asked about at once (answers within
  // a level cannot prune each other), in requests of at most maxBatch CIDs.
  let level: DagLink[] = [...contents, ...lacking.filter((m) => m.as !== 'commit').map((m) => ({ cid: m.cid, as: m.as, optional: false }))]
  const seen = new CidSet()
  while (level.length > 0) {
    const nextLevel: DagLink[] = []
    const fresh = level.filter((l) => {
      const k = linkKey(l)
      return !had.hasKey(k) && seen.addNewKey(k)
    })
    const slices: DagLink[][] = []
    for (let i = 0; i < fresh.length; i += maxBatch) slices.push(fresh.slice(i, i + maxBatch))
    // The requests of one level are independent: a few in flight at once, so that the other
    // side's lookups, the network and the local reads overlap instead of taking turns.
    await forEachConcurrently(slices, LEVEL_REQUESTS_IN_FLIGHT, async (whole) => {
      let slice = whole
      // A record may link to blocks this store never had (committed with allowDangling): skip those.
      const optional = slice.filter((l) => l.optional)
      if (optional.length > 0) {
        const present = await local.hasMany(optional.map((l) => l.cid))
        const absent = new CidSet(optional.filter((_, j) => !present[j]).map((l) => l.cid))
        slice = slice.filter((l) => !absent.has(l.cid))
      }
      const unasked = slice.filter((l) => !answers.hasKey(linkKey(l)))
      await ask(
        unasked.map((l) => l.cid),
        unasked.map((l) => l.key!),
      )
      const lacks = slice.filter((l) => answers.getKey(l.key!) === false)
      // Raw blocks link nowhere: no need to read them now.
      const structured = lacks.filter((l) => l.cid.code !== RAW)
      const children = await read(structured)
      const missing: MissingBlock[] = []
      structured.forEach((l, j) => {
        const links = children[j]
        if (!links) {
          if (!l.optional) missing.push({ cid: l.cid, as: l.as })
          return
        }
        needed.setKey(l.key!, { links })
        for (const c of links) nextLevel.push(c)
      })
      if (missing.length > 0) localMissing(missing)
      for (const l of lacks) if (l.cid.code === RAW) needed.setKey(l.key!, { links: [] })
    })
    level = nextLevel
  }

  return { order: postOrder(needed, [...startCommits, ...lacking.map((m) => m.cid)]), asked, rounds }
}

/** The needed blocks, each after the needed blocks it links to (iterative depth-first walk). */
function postOrder(needed: CidMap<Needed>, starts: readonly CID[]): CID[] {
  const out: CID[] = []
  const done = new CidSet()
  for (const start of starts) {
    if (!needed.has(start) || done.has(start)) continue
    done.add(start)
    const stack: { cid: CID; links: DagLink[]; next: number }[] = [{ cid: start, links: needed.get(start)!.links, next: 0 }]
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!
      if (top.next < top.links.length) {
        const link = top.links[top.next++]!
        const k = linkKey(link)
        const n = needed.getKey(k)
        if (n && done.addNewKey(k)) stack.push({ cid: link.cid, links: n.links, next: 0 })
        continue
      }
      stack.pop()
      out.push(top.cid)
    }
  }
  return out
}

/**
 * Read blocks from the local store in order, a few at a time, for `putBlocks`; blocks in
 * `kept` (see {@link NegotiateOptions.keep}) are sent from there, and let go of.
 */
export async function* readBlocks(local: Blockstore, order: readonly CID[], onProgress?: (p: SyncProgress) => void, kept?: CidMap<Uint8Array>): AsyncGenerator<Block> {
  let blocks = 0
  let bytes = 0
  for (let i = 0; i < order.length; i += 64) {
    const slice = order.slice(i, i + 64)
    let got: (Uint8Array | undefined)[]
    if (kept && kept.size > 0) {
      got = slice.map((c) => kept.take(c))
      const missing = slice.filter((_, j) => got[j] === undefined)
      if (missing.length > 0) {
        const read = await local.getMany(missing)
        let k = 0
        got = got.map((b) => b ?? read[k++])
      }
    } else got = await local.getMany(slice)
    for (let j = 0; j < slice.length; j++) {
      const b = got[j]
      if (!b) throw new IncompleteDagError([{ cid: slice[j]!, as: 'any' }], 'the local store lost a block while sending it')
      blocks++
      bytes += b.length
      yield { cid: slice[j]!, bytes: b }
      onProgress?.({ phase: 'send', blocks, bytes })
    }
  }
}
