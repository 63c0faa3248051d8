import type { Block } from '../codec/block.js'
import { cidKey, type CID } from '../codec/cid.js'
import { NotFoundError } from '../errors.js'
import { cidToString } from '../codec/cid.js'
import type { Blockstore, BlockstoreSupports } from '../store/blockstore.js'

/**
 * A blockstore that reads through to `base` and keeps what is written in memory, never in
 * `base`: for checks that build something only to compare it (the canonical tree of received
 * entries), on stores that must not gain blocks from it or cannot be written (a bundle).
 */
export class ScratchBlockstore implements Blockstore {
  private readonly written = new Map<string, Uint8Array>()

  constructor(private readonly base: Blockstore) {}

  get supports(): BlockstoreSupports {
    return this.base.supports
  }

  async get(cid: CID): Promise<Uint8Array> {
    const bytes = await this.tryGet(cid)
    if (!bytes) throw new NotFoundError('block', cidToString(cid), undefined, { cid: cidToString(cid) })
    return bytes
  }

  async tryGet(cid: CID): Promise<Uint8Array | undefined> {
    return this.written.get(cidKey(cid)) ?? (await this.base.tryGet(cid))
  }

  async getMany(cids: readonly CID[]): Promise<(Uint8Array | undefined)[]> {
    const out = cids.map((c) => this.written.get(cidKey(c)))
    const rest = cids.filter((_, i) => !out[i])
    if (rest.length === 0) return out
    const got = await this.base.getMany(rest)
    let j = 0
    return out.map((b) => b ?? got[j++])
  }

  async has(cid: CID): Promise<boolean> {
    return this.written.has(cidKey(cid)) || (await this.base.has(cid))
  }

  async hasMany(cids: readonly CID[]): Promise<boolean[]> {
    const got = await this.base.hasMany(cids)
    return cids.map((c, i) => this.written.has(cidKey(c)) || got[i]!)
  }

  async put(block: Block): Promise<void> {
    this.written.set(cidKey(block.cid), block.bytes)
  }

  async putMany(blocks: readonly Block[]): Promise<void> {
    for (const b of blocks) this.written.set(cidKey(b.cid), b.bytes)
  }

  cids(options?: { prefix?: string }): AsyncIterable<CID> {
    return this.base.cids(options)
  }
}
