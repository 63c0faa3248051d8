import { cidToString, type CID } from '../codec/cid.js'
import { verifyBlock } from '../codec/block.js'
import { NotFoundError } from '../errors.js'
import type { Blockstore } from '../store/blockstore.js'
import { CidSet, linksOfNode } from './dag.js'

/**
 * True if `ancestor` is `descendant` or reachable from it through parents (and tag targets),
 * walking `descendant`'s history in `blocks` a generation at a time. The walk ends as soon as
 * it meets `ancestor`; when it is not an ancestor the whole history is read (there are no
 * generation numbers to stop earlier yet).
 *
 * @example
 * if (!(await isAncestor(repo.blocks, remoteValue, localValue))) throw new RefusedError('not a fast-forward')
 */
export async function isAncestor(blocks: Blockstore, ancestor: CID, descendant: CID): Promise<boolean> {
  if (ancestor.equals(descendant)) return true
  const seen = new CidSet([descendant])
  let level: CID[] = [descendant]
  while (level.length > 0) {
    const got = await blocks.getMany(level)
    const next: CID[] = []
    for (let i = 0; i < level.length; i++) {
      const cid = level[i]!
      const bytes = got[i]
      if (!bytes) throw new NotFoundError('block', cidToString(cid), 'a commit in the history being compared', { cid: cidToString(cid) })
      verifyBlock(cid, bytes)
      for (const link of linksOfNode(cid, bytes, 'commit')) {
        if (link.as !== 'commit') continue
        if (link.cid.equals(ancestor)) return true
        if (seen.addNew(link.cid)) next.push(link.cid)
      }
    }
    level = next
  }
  return false
}
