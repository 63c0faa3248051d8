import type { CID } from '../codec/cid.js'
import type { Blockstore } from '../store/blockstore.js'
import { CidMap, CidSet, linksOfNode, verifyIncoming, type DagLink } from './dag.js'
import { IncompleteDagError, type MissingBlock } from './errors.js'
import { AdaptiveBatch, DEFAULT_BATCH, MAX_BATCH } from './negotiate.js'
import { VerifiedWriter } from './receive.js'
import type { SyncProgress, Transport } from './transport.js'

export interface DownloadOptions {
  /** Commits whose DAGs this store has whole (its ref values): never asked for, nor walked below. */
  known?: readonly CID[]
  /** Blocks this store is known to lack (an earlier check found them missing): fetched, and walked from. */
  lacking?: readonly MissingBlock[]
  /** Commits asked for in the first round (later rounds grow while all are new). */
  batchSize?: number
  /** Most CIDs per request. */
  maxBatch?: number
  /** Says which remote, for messages. */
  where: string
  onProgress?: (p: SyncProgress) => void
}

/**
 * Copy into `local` the blocks under `heads` that it lacks, from `remote`. Commits first,
 * a batch of history per round trip (`walkCommits`); then their contents a level at a time,
 * asking `getBlocks` only for what `local` does not have. Every block is verified against its
 * CID and checked for the shape its link says before it is stored (CorruptBlockError naming
 * it otherwise); a block the remote does not send fails with IncompleteDagError naming it.
 * Blocks that verified stay stored whatever happens; no ref is touched here.
 */
export async function download(local: Blockstore, remote: Transport, heads: readonly CID[], { known = [], lacking = [], batchSize = DEFAULT_BATCH, maxBatch = MAX_BATCH, where, onProgress }: DownloadOptions): Promise<{ blocks: number; bytes: number }> {
  const writer = new VerifiedWriter(local)
  const have = new CidSet(known)
  const progress = (): void => onProgress?.({ phase: 'receive', blocks: writer.blocks, bytes: writer.totalBytes })
  const missingFromRemote = (m: MissingBlock[]): never => {
    throw new IncompleteDagError(m, `${where} did not send everything under the refs it advertises`)
  }
  try {
    // 1. Commits and tag nodes. A commit this store has stands for its history ("has" is
    // trusted here; holes left by an interrupted transfer are found by the completeness check
    // that follows every download, and fetched then).
    const contents: DagLink[] = []
    const decided = new CidSet()
    let frontier = [...heads, ...lacking.filter((m) => m.as === 'commit').map((m) => m.cid)]
    const commitBatch = new AdaptiveBatch(batchSize)
    while (frontier.length > 0) {
      frontier = await absent(local, dedupe(frontier).filter((c) => !have.has(c) && !decided.has(c)))
      if (frontier.length === 0) break
      const limit = commitBatch.size
      const asked = frontier.slice(0, limit)
      const page = new CidMap<{ bytes: Uint8Array; links: DagLink[] }>()
      const pageCids: CID[] = []
      for await (const block of remote.walkCommits(asked, { have: known, limit })) {
        if (page.has(block.cid)) continue
        verifyIncoming(block.cid, block.bytes)
        page.set(block.cid, { bytes: block.bytes, links: linksOfNode(block.cid, block.bytes, 'commit') })
        pageCids.push(block.cid)
      }
      const notSent = asked.filter((c) => !page.has(c))
      if (notSent.length > 0) missingFromRemote(notSent.map((cid) => ({ cid, as: 'commit' })))
      // The page may run past commits this store has: keep what is reachable through ones it lacks.
      const present = await local.hasMany(pageCids)
      const localHas = new CidSet(pageCids.filter((_, i) => present[i]))
      const next: CID[] = frontier.slice(limit)
      let stored = 0
      const walk = [...asked]
      for (let w = 0; w < walk.length; w++) {
        const c = walk[w]!
        if (have.has(c) || decided.has(c)) continue
        const entry = page.get(c)
        if (!entry) {
          next.push(c) // beyond this page: the next round asks for it
          continue
        }
        decided.add(c)
        if (localHas.has(c)) continue
        stored++
        await writer.addVerified({ cid: c, bytes: entry.bytes })
        progress()
        for (const l of entry.links) {
          if (l.as === 'commit') walk.push(l.cid)
          else contents.push(l)
        }
      }
      commitBatch.record(pageCids.length, stored)
      frontier = next
    }

    // 2. Contents, a level at a time, each level in requests of at most maxBatch CIDs.
    let level: DagLink[] = [...contents, ...lacking.filter((m) => m.as !== 'commit').map((m) => ({ cid: m.cid, as: m.as, optional: false }))]
    const seen = new CidSet()
    while (level.length > 0) {
      const nextLevel: DagLink[] = []
      const fresh = level.filter((l) => seen.addNew(l.cid))
      for (let i = 0; i < fresh.length; i += maxBatch) {
        const slice = fresh.slice(i, i + maxBatch)
        const present = await local.hasMany(slice.map((l) => l.cid))
        const wanted = new CidMap<DagLink>()
        slice.forEach((l, j) => {
          if (!present[j]) wanted.set(l.cid, l)
        })
        if (wanted.size === 0) continue
        const got = new CidSet()
        for await (const block of remote.getBlocks([...wanted.values()].map((l) => l.cid))) {
          const l = wanted.get(block.cid)
          if (!l || !got.addNew(block.cid)) continue // not asked for: ignored
          verifyIncoming(block.cid, block.bytes)
          nextLevel.push(...linksOfNode(block.cid, block.bytes, l.as, l.optional))
          await writer.addVerified(block)
          progress()
        }
        const notSent = [...wanted.values()].filter((l) => !got.has(l.cid) && !l.optional)
        if (notSent.length > 0) missingFromRemote(notSent.map((l) => ({ cid: l.cid, as: l.as })))
      }
      level = nextLevel
    }
  } catch (e) {
    await writer.flush().catch(() => {})
    throw e
  }
  await writer.flush()
  return { blocks: writer.blocks, bytes: writer.totalBytes }
}

function dedupe(cids: CID[]): CID[] {
  const seen = new CidSet()
  return cids.filter((c) => seen.addNew(c))
}

/** Those of `cids` that `local` does not have. */
async function absent(local: Blockstore, cids: CID[]): Promise<CID[]> {
  if (cids.length === 0) return []
  const got = await local.hasMany(cids)
  return cids.filter((_, i) => !got[i])
}
