import { describe, expect, it } from 'vitest'
import { encodeNode, rawBlock, type Block } from '../../src/codec/block.js'
import { openMemoryStore } from '../../src/store/memory.js'
import { receiveBlocks } from '../../src/sync/receive.js'
import { pseudoRandom } from '../helpers/random.js'

/*
 * Receiving blocks from outside: a forged block, large or small, ends the transfer naming it;
 * what verified before it stays (a resumed transfer does not send it again), nothing after it
 * is stored.
 */

async function* from(blocks: Block[]): AsyncGenerator<Block> {
  yield* blocks
}

function forged(block: Block): Block {
  const bytes = block.bytes.slice()
  bytes[bytes.length >> 1]! ^= 1
  return { cid: block.cid, bytes }
}

describe('receiveBlocks', () => {
  it('stores every block that verifies, large and small, in order', async () => {
    const store = openMemoryStore()
    const blocks = [encodeNode({ a: 1 }), rawBlock(pseudoRandom(1, 300_000)), encodeNode({ b: 2 }), rawBlock(pseudoRandom(2, 1024 * 1024)), rawBlock(pseudoRandom(3, 70_000))]
    const r = await receiveBlocks(store.blocks, from(blocks))
    expect(r.blocks).toBe(5)
    expect(r.bytes).toBe(blocks.reduce((n, b) => n + b.bytes.length, 0))
    for (const b of blocks) expect(Buffer.compare(await store.blocks.get(b.cid), b.bytes)).toBe(0)
  })

  it('a forged large block fails the transfer naming it; blocks before it stay, none after it is stored', async () => {
    const store = openMemoryStore()
    const before = [encodeNode({ a: 1 }), rawBlock(pseudoRandom(4, 200_000)), encodeNode({ b: 2 })]
    const bad = rawBlock(pseudoRandom(5, 500_000))
    const after = [encodeNode({ c: 3 }), rawBlock(pseudoRandom(6, 100_000)), encodeNode({ d: 4 })]
    let err: { code?: string; message?: string } | undefined
    try {
      await receiveBlocks(store.blocks, from([...before, forged(bad), ...after]))
    } catch (e) {
      err = e as typeof err
    }
    expect(err?.code).toBe('ERR_CORRUPT')
    expect(err?.message).toContain(bad.cid.toString())
    for (const b of before) expect(await store.blocks.has(b.cid)).toBe(true)
    expect(await store.blocks.has(bad.cid)).toBe(false)
    for (const b of after) expect(await store.blocks.has(b.cid)).toBe(false)
  })

  it('a forged small block after large ones fails naming it; the large ones before it stay', async () => {
    const store = openMemoryStore()
    const large = [rawBlock(pseudoRandom(7, 400_000)), rawBlock(pseudoRandom(8, 400_000))]
    const bad = encodeNode({ e: 5 })
    let err: { code?: string; message?: string } | undefined
    try {
      await receiveBlocks(store.blocks, from([...large, forged(bad), encodeNode({ f: 6 })]))
    } catch (e) {
      err = e as typeof err
    }
    expect(err?.code).toBe('ERR_CORRUPT')
    expect(err?.message).toContain(bad.cid.toString())
    for (const b of large) expect(await store.blocks.has(b.cid)).toBe(true)
    expect(await store.blocks.has(encodeNode({ f: 6 }).cid)).toBe(false)
  })
})
