import type { Block } from '../codec/block.js'
import type { CID } from '../codec/cid.js'
import type { Blockstore } from '../store/blockstore.js'
import { IncompleteDagError } from './errors.js'
import type { SyncProgress } from './transport.js'

/** Most bytes of blocks the queue holds as read (beyond it, it keeps CIDs and reads them again when sending). */
const MAX_HELD_BYTES = 64 * 1024 * 1024
/** Blocks read from the local store at once. */
const READ_BATCH = 64

interface Item {
  cid: CID
  bytes?: Uint8Array
}

/**
 * The blocks a push sends, in the order they are added, while more are still being found:
 * negotiation adds blocks that link nowhere as soon as it learns the other side lacks them
 * (see `early` in negotiate.ts), then the rest in order once it is done. {@link blocks} is the
 * stream `putBlocks` reads; it ends after {@link close}.
 *
 * @example
 * const q = new SendQueue(); const sending = t.putBlocks(q.blocks(repo.blocks)); q.add(cid); q.close(); await sending
 */
export class SendQueue {
  private items: (Item | undefined)[] = []
  private head = 0
  private held = 0
  private closed = false
  private wake: (() => void) | undefined

  /** Send `cid` after the blocks added before it; `bytes` if already read (kept within a budget). */
  add(cid: CID, bytes?: Uint8Array): void {
    if (this.closed) throw new Error('SendQueue: add after close')
    if (bytes && this.held + bytes.length > MAX_HELD_BYTES) bytes = undefined
    if (bytes) this.held += bytes.length
    this.items.push(bytes ? { cid, bytes } : { cid })
    this.signal()
  }

  /** No more blocks: the stream ends once the queued ones are sent. */
  close(): void {
    this.closed = true
    this.signal()
  }

  /** The queued blocks in order, those not held read from `local` a few at a time. */
  async *blocks(local: Blockstore, onProgress?: (p: SyncProgress) => void): AsyncGenerator<Block> {
    let blocks = 0
    let bytes = 0
    for (;;) {
      if (this.head === this.items.length) {
        if (this.closed) return
        await new Promise<void>((resolve) => (this.wake = resolve))
        continue
      }
      const end = Math.min(this.items.length, this.head + READ_BATCH)
      const slice = this.items.slice(this.head, end) as Item[]
      this.items.fill(undefined, this.head, end)
      this.head = end
      if (this.head === this.items.length) {
        this.items = []
        this.head = 0
      } else if (this.head >= 4096 && this.head * 2 >= this.items.length) {
        this.items.splice(0, this.head)
        this.head = 0
      }
      const unread = slice.filter((it) => !it.bytes)
      const got = unread.length > 0 ? await local.getMany(unread.map((it) => it.cid)) : []
      let k = 0
      for (const it of slice) {
        let b = it.bytes
        if (b) this.held -= b.length
        else b = got[k++]
        if (!b) throw new IncompleteDagError([{ cid: it.cid, as: 'any' }], 'the local store lost a block while sending it')
        blocks++
        bytes += b.length
        yield { cid: it.cid, bytes: b }
        onProgress?.({ phase: 'send', blocks, bytes })
      }
    }
  }

  private signal(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }
}
