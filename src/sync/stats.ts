import type { Block } from '../codec/block.js'
import type { CID } from '../codec/cid.js'
import type { PutBlocksResult, RemoteRef, RemoteRefResult, RemoteRefUpdate, Transport, TransferStats } from './transport.js'

/**
 * A transport that counts what passes through it: one round trip per call, blocks and bytes
 * sent (putBlocks) and received (getBlocks, walkCommits). Every verb wraps its transport in one,
 * so the numbers are the same whatever the transport.
 */
export class CountingTransport implements Transport {
  roundTrips = 0
  negotiationRounds = 0
  sent = { blocks: 0, bytes: 0 }
  received = { blocks: 0, bytes: 0 }

  constructor(readonly inner: Transport) {}

  get url(): string {
    return this.inner.url
  }

  listRefs(): Promise<RemoteRef[]> {
    this.roundTrips++
    return this.inner.listRefs()
  }

  hasMany(cids: readonly CID[]): Promise<boolean[]> {
    this.roundTrips++
    this.negotiationRounds++
    return this.inner.hasMany(cids)
  }

  async *getBlocks(cids: readonly CID[]): AsyncIterable<Block> {
    this.roundTrips++
    for await (const block of this.inner.getBlocks(cids)) {
      this.received.blocks++
      this.received.bytes += block.bytes.length
      yield block
    }
  }

  async *walkCommits(heads: readonly CID[], options: { have?: readonly CID[]; limit: number }): AsyncIterable<Block> {
    this.roundTrips++
    for await (const block of this.inner.walkCommits(heads, options)) {
      this.received.blocks++
      this.received.bytes += block.bytes.length
      yield block
    }
  }

  putBlocks(blocks: AsyncIterable<Block>): Promise<PutBlocksResult> {
    this.roundTrips++
    const sent = this.sent
    return this.inner.putBlocks(
      (async function* () {
        for await (const block of blocks) {
          sent.blocks++
          sent.bytes += block.bytes.length
          yield block
        }
      })(),
    )
  }

  compareAndSwapRef(update: RemoteRefUpdate): Promise<RemoteRefResult> {
    this.roundTrips++
    return this.inner.compareAndSwapRef(update)
  }

  close(): Promise<void> {
    return this.inner.close()
  }

  /** The numbers for a result: blocks and bytes in the direction given. */
  stats(direction: 'sent' | 'received'): TransferStats {
    const { blocks, bytes } = this[direction]
    return { blocks, bytes, roundTrips: this.roundTrips, negotiationRounds: this.negotiationRounds }
  }
}
