import { describe, expect, it } from 'vitest'
import { createCipheriv, createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileSize, readFile, writeFile } from '../../src/model/file.js'
import { openLevelStore } from '../../src/store/level.js'

const GiB = 1024 ** 3
const SIZE = 2 * GiB + 12345 // several chunk-tree nodes' worth, and not a round number

/** Deterministic, incompressible, non-repeating bytes: an AES-CTR keystream, 1 MiB at a time. */
async function* keystream(size: number): AsyncGenerator<Uint8Array> {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0))
  const zeros = Buffer.alloc(1 << 20)
  for (let left = size; left > 0; left -= zeros.length) yield cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left))
}

describe('a file of several GB', () => {
  it('round-trips byte-exact through the LevelDB store in bounded memory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pedigree-large-'))
    const store = await openLevelStore(join(dir, '.pedigree'))
    try {
      const expected = createHash('sha256')
      let peak = process.memoryUsage().rss
      const baseline = peak
      async function* hashed(): AsyncGenerator<Uint8Array> {
        for await (const piece of keystream(SIZE)) {
          expected.update(piece)
          peak = Math.max(peak, process.memoryUsage().rss)
          yield piece
        }
      }
      const { cid, size } = await writeFile(store.blocks, hashed())
      expect(size).toBe(SIZE)
      expect(await fileSize(store.blocks, cid)).toBe(SIZE)

      const actual = createHash('sha256')
      let read = 0
      for await (const piece of readFile(store.blocks, cid)) {
        actual.update(piece)
        read += piece.length
        if ((read & ((64 << 20) - 1)) < piece.length) peak = Math.max(peak, process.memoryUsage().rss)
      }
      expect(read).toBe(SIZE)
      expect(actual.digest('hex')).toBe(expected.digest('hex'))
      // Memory follows the chunk windows, not the file: well under the 300 MB bound.
      expect(peak - baseline).toBeLessThan(300 * 1024 * 1024)
    } finally {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    }
  }, 300_000)
})
