import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { Block } from '../../src/codec/block.js'
import { decodeBlock, encodeNode } from '../../src/codec/block.js'
import { CHUNKER, cutPoint } from '../../src/codec/chunk.js'
import { CID, DAG_CBOR, MAX_BLOCK_SIZE, RAW, cidFor, cidToString } from '../../src/codec/cid.js'
import { CorruptBlockError, InvalidInputError, NotFoundError } from '../../src/errors.js'
import type { FileNode } from '../../src/model/file.js'
import { MAX_NODE_ENTRIES, fileSize, isFileNode, readFile, writeFile, writeFileFromBytes } from '../../src/model/file.js'
import type { Blockstore } from '../../src/store/blockstore.js'
import { openLevelStore } from '../../src/store/level.js'
import { MemoryBlockstore } from '../../src/store/memory.js'
import { pseudoRandom } from '../helpers/random.js'

const KiB = 1024
const MiB = 1024 * KiB

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/** Feed `bytes` in pieces of pseudo-random sizes (up to `maxPiece`), as a file read would. */
async function* pieces(bytes: Uint8Array, seed = 1, maxPiece = 300 * KiB): AsyncGenerator<Uint8Array> {
  let r = seed
  for (let o = 0; o < bytes.length; ) {
    r = (Math.imul(r, 1103515245) + 12345) >>> 0
    const n = Math.min(1 + (r % maxPiece), bytes.length - o)
    yield bytes.subarray(o, o + n)
    o += n
  }
}

/** Read a file back, hashing as it streams: the sha256 and length a user would compare. */
async function readBack(blocks: Blockstore, cid: CID): Promise<{ sha: string; size: number }> {
  const hash = createHash('sha256')
  let size = 0
  for await (const piece of readFile(blocks, cid)) {
    hash.update(piece)
    size += piece.length
  }
  return { sha: hash.digest('hex'), size }
}

async function countBlocks(blocks: MemoryBlockstore): Promise<number> {
  let n = 0
  for await (const _ of blocks.cids()) n++
  return n
}

async function rootNode(blocks: Blockstore, cid: CID): Promise<FileNode> {
  const node = decodeBlock(cid, await blocks.get(cid))
  if (!isFileNode(node)) throw new Error(`${cid} is not a file node`)
  return node
}

/** Every chunk CID of a file, in order, and the depth of each leaf node. */
async function chunksOf(blocks: Blockstore, cid: CID, depth = 0, leafDepths: number[] = []): Promise<{ cids: string[]; leafDepths: number[] }> {
  if (cid.code === RAW) return { cids: [cid.toString()], leafDepths }
  const node = await rootNode(blocks, cid)
  const cids: string[] = []
  if ('chunks' in node) {
    leafDepths.push(depth)
    for (const [c] of node.chunks) cids.push(c.toString())
  } else {
    for (const [c] of node.parts) cids.push(...(await chunksOf(blocks, c, depth + 1, leafDepths)).cids)
  }
  return { cids, leafDepths }
}

/** A Blockstore that counts what it is asked to write. */
class CountingStore extends MemoryBlockstore {
  written = 0
  putCalls = 0
  override async putMany(blocks: readonly Block[]): Promise<void> {
    this.written += blocks.length
    this.putCalls++
    await super.putMany(blocks)
  }
}

async function collectUntilError(source: AsyncIterable<Uint8Array>): Promise<{ bytes: Uint8Array; error: unknown }> {
  const got: Uint8Array[] = []
  try {
    for await (const piece of source) got.push(piece)
  } catch (error) {
    return { bytes: Buffer.concat(got), error }
  }
  return { bytes: Buffer.concat(got), error: undefined }
}

describe('writeFile / readFile round trip', () => {
  const sizes = [0, 1, 64 * KiB - 1, 64 * KiB, MAX_BLOCK_SIZE - 1, MAX_BLOCK_SIZE, MAX_BLOCK_SIZE + 1, 10 * MiB + 12345]
  for (const size of sizes) {
    it(`is byte-exact for ${size} bytes`, async () => {
      const blocks = new MemoryBlockstore()
      const data = pseudoRandom(size + 1, size)
      const written = await writeFile(blocks, pieces(data, size))
      expect(written.size).toBe(size)
      expect(await readBack(blocks, written.cid)).toEqual({ sha: sha(data), size })
      expect(await fileSize(blocks, written.cid)).toBe(size)
      if (size <= MAX_BLOCK_SIZE) {
        // A file that fits one block is that raw block: same CID as the bytes themselves.
        expect(written.cid.equals(cidFor(RAW, data))).toBe(true)
        expect(await countBlocks(blocks)).toBe(1)
      } else {
        expect(written.cid.code).toBe(DAG_CBOR)
        const node = await rootNode(blocks, written.cid)
        expect(node).toMatchObject({ kind: 'file', size, chunker: { ...CHUNKER } })
        expect('chunks' in node && node.chunks.length).toBeGreaterThan(1)
      }
    })
  }

  it('stores a file of exactly 0 bytes as the empty raw block', async () => {
    const blocks = new MemoryBlockstore()
    const { cid } = await writeFile(blocks, pieces(new Uint8Array(0)))
    expect(cidToString(cid)).toBe(cidToString(cidFor(RAW, new Uint8Array(0))))
    expect(await collectUntilError(readFile(blocks, cid))).toEqual({ bytes: Buffer.alloc(0), error: undefined })
  })

  it('reports progress up to the size, on write and on read', async () => {
    const blocks = new MemoryBlockstore()
    const data = pseudoRandom(5, 3 * MiB + 5)
    const wrote: number[] = []
    const { cid } = await writeFileFromBytes(blocks, data, { onProgress: (n) => wrote.push(n) })
    expect(wrote.at(-1)).toBe(data.length)
    expect(wrote).toEqual([...wrote].sort((a, b) => a - b))
    const read: number[] = []
    for await (const _ of readFile(blocks, cid, { onProgress: (n) => read.push(n) }));
    expect(read.at(-1)).toBe(data.length)
    expect(read.length).toBeGreaterThan(1)
  })

  it('writes while the source is still streaming (does not wait for the end)', async () => {
    const blocks = new CountingStore()
    const data = pseudoRandom(11, 24 * MiB)
    let putsBeforeEnd = -1
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let o = 0; o < data.length; o += 64 * KiB) yield data.subarray(o, o + 64 * KiB)
      putsBeforeEnd = blocks.putCalls
    }
    const { cid } = await writeFile(blocks, source())
    expect(putsBeforeEnd).toBeGreaterThan(1)
    expect((await readBack(blocks, cid)).sha).toBe(sha(data))
  })
})

describe('determinism', () => {
  it('gives the same CID whatever the store and however the bytes arrive', async () => {
    const data = pseudoRandom(77, 5 * MiB + 3)
    const a = await writeFile(new MemoryBlockstore(), pieces(data, 1, 7 * KiB))
    const b = await writeFile(new MemoryBlockstore(), pieces(data, 2, 3 * MiB))
    const c = await writeFileFromBytes(new MemoryBlockstore(), data)
    expect(cidToString(b.cid)).toBe(cidToString(a.cid))
    expect(cidToString(c.cid)).toBe(cidToString(a.cid))
  })

  it('matches the golden CID of a fixed 3 MiB input (the format must not drift silently)', async () => {
    const data = pseudoRandom(20261122, 3 * MiB)
    const { cid, size } = await writeFileFromBytes(new MemoryBlockstore(), data)
    expect(size).toBe(3 * MiB)
    expect(cidToString(cid)).toBe('bafyreigw44kjzts2mgtgimpwsenr56ruuv2wallg2rnjwayymuv6wdsxle')
  })
})

describe('chunk tree', () => {
  it('keeps chunks within the chunker bounds and lengths adding up to the size', async () => {
    const blocks = new MemoryBlockstore()
    const data = pseudoRandom(3, 12 * MiB)
    const { cid } = await writeFileFromBytes(blocks, data)
    const node = await rootNode(blocks, cid)
    if (!('chunks' in node)) throw new Error('expected a chunk list')
    const lengths = node.chunks.map(([, n]) => n)
    expect(lengths.reduce((a, b) => a + b, 0)).toBe(data.length)
    for (const n of lengths.slice(0, -1)) {
      expect(n).toBeGreaterThanOrEqual(CHUNKER.min)
      expect(n).toBeLessThanOrEqual(CHUNKER.max)
    }
    for (const [c, n] of node.chunks) expect((await blocks.get(c)).length).toBe(n)
  })

  it(`fans out into parts past ${MAX_NODE_ENTRIES} chunks, with the default fanout`, async () => {
    // A block that the chunker cuts at min + 32 bytes every time it repeats: the last 32 bytes
    // (the hash window) of a real chunk cut before avg, after min bytes that the chunker skips.
    // This makes 4096 chunks out of 256 MiB that hash in well under a second.
    const random = pseudoRandom(99, 16 * MiB)
    let start = 0
    let end = cutPoint(random, start, random.length)
    while (end - start > CHUNKER.avg) end = cutPoint(random, (start = end), random.length)
    const unit = random.slice(end - CHUNKER.min - 32, end)
    const twice = Buffer.concat([unit, unit, unit])
    expect(cutPoint(twice, 0, twice.length)).toBe(unit.length)

    const count = MAX_NODE_ENTRIES + 3
    const hash = createHash('sha256')
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < count; i++) {
        hash.update(unit)
        yield unit
      }
    }
    const blocks = new CountingStore()
    const { cid, size } = await writeFile(blocks, source())
    expect(size).toBe(count * unit.length)
    const root = await rootNode(blocks, cid)
    if (!('parts' in root)) throw new Error('expected parts')
    expect(root.parts.map(([, n]) => n)).toEqual([MAX_NODE_ENTRIES * unit.length, 3 * unit.length])
    const first = await rootNode(blocks, root.parts[0]![0])
    expect('chunks' in first && first.chunks.length).toBe(MAX_NODE_ENTRIES)
    // One distinct chunk, two leaves, one root: identical chunks are stored once.
    expect(await countBlocks(blocks)).toBe(4)
    expect(await readBack(blocks, cid)).toEqual({ sha: hash.digest('hex'), size })
  })

  it('builds a balanced multi-level tree (small test fanout) that reads back byte-exact', async () => {
    const data = pseudoRandom(4, 10 * MiB + 1)
    const flatStore = new MemoryBlockstore()
    const flat = await writeFileFromBytes(flatStore, data)
    const flatChunks = (await chunksOf(flatStore, flat.cid)).cids
    for (const fanout of [2, 3, 5]) {
      const blocks = new MemoryBlockstore()
      const { cid } = await writeFile(blocks, pieces(data, fanout), { fanout })
      expect(cid.equals(flat.cid)).toBe(false)
      const { cids, leafDepths } = await chunksOf(blocks, cid)
      expect(cids).toEqual(flatChunks) // same chunks, only the nodes above them differ
      expect(new Set(leafDepths).size).toBe(1)
      expect(leafDepths[0]).toBeGreaterThanOrEqual(2)
      expect(await readBack(blocks, cid)).toEqual({ sha: sha(data), size: data.length })
      expect(await fileSize(blocks, cid)).toBe(data.length)
    }
  })

  it('rejects a fanout that would not fit a node or could not branch', async () => {
    await expect(writeFileFromBytes(new MemoryBlockstore(), new Uint8Array(10), { fanout: 1 })).rejects.toBeInstanceOf(InvalidInputError)
  })
})

describe('sharing between versions', () => {
  const base = pseudoRandom(8, 8 * MiB)
  const edited = Buffer.concat([base.subarray(0, 4 * MiB), Buffer.from('0123456789'), base.subarray(4 * MiB)])

  it('an insertion of 10 bytes in the middle changes only the chunks around it', async () => {
    const blocks = new MemoryBlockstore()
    const a = (await chunksOf(blocks, (await writeFileFromBytes(blocks, base)).cid)).cids
    const b = (await chunksOf(blocks, (await writeFileFromBytes(blocks, edited)).cid)).cids
    const shared = b.filter((c) => a.includes(c))
    expect(a.length).toBeGreaterThan(15)
    expect(shared.length).toBeGreaterThanOrEqual(b.length - 2)
    expect(shared.length).toBeLessThan(b.length)
  })

  it('writing the same file twice adds nothing; an edited copy adds only its new chunks', async () => {
    const blocks = new CountingStore()
    const first = await writeFileFromBytes(blocks, base)
    const afterFirst = await countBlocks(blocks)
    const writtenFirst = blocks.written
    expect(writtenFirst).toBe(afterFirst)

    const again = await writeFileFromBytes(blocks, base)
    expect(cidToString(again.cid)).toBe(cidToString(first.cid))
    expect(await countBlocks(blocks)).toBe(afterFirst)
    expect(blocks.written).toBe(writtenFirst) // present chunks are not even sent to the store

    await writeFileFromBytes(blocks, edited)
    const added = (await countBlocks(blocks)) - afterFirst
    expect(added).toBeGreaterThanOrEqual(2) // at least one new chunk and the new node
    expect(added).toBeLessThanOrEqual(3)
    expect(blocks.written - writtenFirst).toBe(added)
  })
})

describe('damage', () => {
  async function stored(size = 10 * MiB): Promise<{ blocks: MemoryBlockstore; data: Uint8Array; cid: CID; chunks: Array<[CID, number]> }> {
    const blocks = new MemoryBlockstore()
    const data = pseudoRandom(21, size)
    const { cid } = await writeFileFromBytes(blocks, data)
    const node = await rootNode(blocks, cid)
    if (!('chunks' in node)) throw new Error('expected a chunk list')
    return { blocks, data, cid, chunks: node.chunks }
  }

  it('a corrupted chunk throws CorruptBlockError naming it, after only the correct bytes before it', async () => {
    const { blocks, data, cid, chunks } = await stored()
    const index = 20
    const [bad, length] = chunks[index]!
    const flipped = (await blocks.get(bad)).slice()
    flipped[100]! ^= 1
    blocks.corrupt(bad, flipped)

    const { bytes, error } = await collectUntilError(readFile(blocks, cid))
    expect(error).toBeInstanceOf(CorruptBlockError)
    expect((error as CorruptBlockError).data.cid).toBe(cidToString(bad))
    expect((error as Error).message).toContain(cidToString(bad))
    const before = chunks.slice(0, index).reduce((a, [, n]) => a + n, 0)
    expect(bytes.length).toBe(before)
    expect(sha(bytes)).toBe(sha(data.subarray(0, before)))
    expect(length).toBe(flipped.length)
  })

  it('a corrupted small file (one raw block) yields nothing and names the block', async () => {
    const blocks = new MemoryBlockstore()
    const { cid } = await writeFileFromBytes(blocks, pseudoRandom(1, 1000))
    blocks.corrupt(cid, pseudoRandom(2, 1000))
    const { bytes, error } = await collectUntilError(readFile(blocks, cid))
    expect(bytes.length).toBe(0)
    expect(error).toBeInstanceOf(CorruptBlockError)
    expect((error as CorruptBlockError).data.cid).toBe(cidToString(cid))
  })

  it('a missing chunk throws NotFoundError naming it', async () => {
    const { blocks, cid, chunks } = await stored()
    const missing = chunks[5]![0]
    const partial = new MemoryBlockstore()
    for await (const c of blocks.cids()) if (!c.equals(missing)) await partial.put({ cid: c, bytes: await blocks.get(c) })

    const { bytes, error } = await collectUntilError(readFile(partial, cid))
    expect(error).toBeInstanceOf(NotFoundError)
    expect((error as NotFoundError).data.name).toBe(cidToString(missing))
    expect((error as Error).message).toContain(cidToString(missing))
    expect(bytes.length).toBe(chunks.slice(0, 5).reduce((a, [, n]) => a + n, 0))
  })

  it('a missing file throws NotFoundError; a record is not a file', async () => {
    const blocks = new MemoryBlockstore()
    const absent = cidFor(RAW, new Uint8Array([1, 2, 3]))
    await expect(collectUntilError(readFile(blocks, absent))).resolves.toMatchObject({ error: expect.any(NotFoundError) })
    await expect(fileSize(blocks, absent)).rejects.toBeInstanceOf(NotFoundError)
    const record = encodeNode({ type: 'run', name: 'not a file' })
    await blocks.put(record)
    const { error } = await collectUntilError(readFile(blocks, record.cid))
    expect(error).toBeInstanceOf(InvalidInputError)
    await expect(fileSize(blocks, record.cid)).rejects.toBeInstanceOf(InvalidInputError)
  })

  it('a node whose chunk lengths do not add up to its size is not a file node', async () => {
    const { blocks, cid } = await stored(3 * MiB)
    const node = await rootNode(blocks, cid)
    expect(isFileNode(node)).toBe(true)
    expect(isFileNode({ ...node, size: node.size + 1 })).toBe(false)
    expect(isFileNode({ ...node, kind: 'record' })).toBe(false)
    expect(isFileNode({ ...node, parts: [] })).toBe(false)
    const lying = encodeNode({ ...node, size: node.size + 1 })
    await blocks.put(lying)
    await expect(collectUntilError(readFile(blocks, lying.cid))).resolves.toMatchObject({ error: expect.any(InvalidInputError) })
  })

  it('stopping a read early is clean', async () => {
    const { blocks, cid } = await stored()
    for await (const _ of readFile(blocks, cid)) break
  })
})

describe('on the level store', () => {
  it('round-trips files through a LevelDB store on disk, across a reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pedigree-file-'))
    try {
      const files = [pseudoRandom(31, 0), pseudoRandom(32, 300 * KiB), pseudoRandom(33, 6 * MiB + 7)]
      let store = await openLevelStore(dir)
      const cids: CID[] = []
      try {
        for (const data of files) cids.push((await writeFile(store.blocks, pieces(data))).cid)
      } finally {
        await store.close()
      }
      store = await openLevelStore(dir)
      try {
        for (const [i, data] of files.entries()) {
          expect(await readBack(store.blocks, cids[i]!)).toEqual({ sha: sha(data), size: data.length })
          expect(await fileSize(store.blocks, cids[i]!)).toBe(data.length)
        }
        // Same bytes, same CID on another backend.
        expect(cidToString(cids[2]!)).toBe(cidToString((await writeFileFromBytes(new MemoryBlockstore(), files[2]!)).cid))
      } finally {
        await store.close()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
