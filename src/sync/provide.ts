import type { Block } from '../codec/block.js'
import type { CID } from '../codec/cid.js'
import type { Repository } from '../repo/repository.js'
import { CidSet, linksOfNode } from './dag.js'
import type { RemoteRef } from './transport.js'

/*
 * The serving side of the read operations of a Transport, over an open repository: the path
 * transport calls these directly, and `pedigree serve` will answer its HTTP routes with them.
 */

/** Blocks read from the store at once while serving. */
const READ_BATCH = 64

/** Every ref, sorted by name. */
export async function serveRefs(repo: Repository): Promise<RemoteRef[]> {
  const out: RemoteRef[] = []
  for await (const { name, cid } of repo.refs.list()) out.push({ name, cid })
  return out
}

/** The blocks present among `cids`, in order, absent ones left out. */
export async function* serveBlocks(repo: Repository, cids: readonly CID[]): AsyncGenerator<Block> {
  for (let i = 0; i < cids.length; i += READ_BATCH) {
    const slice = cids.slice(i, i + READ_BATCH)
    const got = await repo.blocks.getMany(slice)
    for (let j = 0; j < slice.length; j++) {
      const bytes = got[j]
      if (bytes) yield { cid: slice[j]!, bytes }
    }
  }
}

/**
 * Commit and tag nodes reachable from `heads`, breadth first, never below a CID in `have`,
 * at most `limit`. Blocks that are absent or do not read as commits end that line of the walk
 * (the receiver notices what it did not get).
 */
export async function* serveCommits(repo: Repository, heads: readonly CID[], { have = [], limit }: { have?: readonly CID[]; limit: number }): AsyncGenerator<Block> {
  const stop = new CidSet(have)
  const seen = new CidSet()
  let level = heads.filter((h) => !stop.has(h) && seen.addNew(h))
  let sent = 0
  while (level.length > 0 && sent < limit) {
    const got = await repo.blocks.getMany(level)
    const next: CID[] = []
    for (let i = 0; i < level.length && sent < limit; i++) {
      const bytes = got[i]
      if (!bytes) continue
      const cid = level[i]!
      yield { cid, bytes }
      sent++
      let links
      try {
        links = linksOfNode(cid, bytes, 'commit')
      } catch {
        continue
      }
      for (const l of links) if (l.as === 'commit' && !stop.has(l.cid) && seen.addNew(l.cid)) next.push(l.cid)
    }
    level = next
  }
}
