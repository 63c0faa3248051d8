import { sha256 } from './cid.js'

/**
 * Content-defined chunking (FastCDC with a gear hash and normalized chunking, as in Xia et
 * al., "FastCDC", USENIX ATC 2016). Boundaries depend only on the bytes near them, so an
 * insertion or deletion in a large file changes the chunks around the edit and leaves the
 * rest (and their CIDs) as they were: that is what makes checkpoints that differ a little
 * share most of their storage and transfer.
 *
 * Everything that decides a boundary is fixed here and recorded in every file node as
 * {@link CHUNKER}; a future chunker gets a new name rather than changing this one, because
 * changing any of it changes the CIDs of every large file (invariant 5 in DESIGN.md).
 */

const KiB = 1024

/**
 * The chunker's parameters, recorded verbatim (JSON-compatible) in every file node so that a
 * reader knows how the file was cut, and a later version can cut differently without
 * ambiguity. `seed` names the gear table (see {@link GEAR}). The masks are FastCDC's
 * normalized chunking at level 2: `maskS` has log2(avg) + 2 = 20 bits and applies before
 * `avg`, so small chunks are rare; `maskL` has log2(avg) - 2 = 16 bits and applies after it,
 * so large chunks are rare. Both end at bit 30 of the 32-bit hash: the gear hash shifts left,
 * so bit k depends on the last k+1 bytes and the high bits see the whole 31-byte window; bit
 * 31 is left out so that `mask << 1` loses nothing, which lets {@link cutPoint} take two
 * bytes per step. Measured on random data the mean chunk is about 294 KiB (min 64 KiB plus
 * the expected run to a match; the paper's "average" is the normal size, not the mean).
 */
export const CHUNKER = Object.freeze({
  name: 'fastcdc-gear-v1',
  min: 64 * KiB,
  avg: 256 * KiB,
  max: 1024 * KiB,
  maskS: 0x7ffff800,
  maskL: 0x7fff8000,
  seed: 'pedigree/fastcdc-gear-v1',
})

/** The type of {@link CHUNKER} as it appears in a file node. */
export type ChunkerParams = typeof CHUNKER

/**
 * The gear table: 256 pseudo-random 32-bit values, expanded from sha256 of the seed so that
 * every machine computes the same table (and hence the same chunks and CIDs). An Int32Array
 * keeps the hot loop in V8's int32 arithmetic.
 */
export const GEAR: Int32Array = makeGear(CHUNKER.seed)

function makeGear(seed: string): Int32Array {
  const table = new Int32Array(256)
  const enc = new TextEncoder()
  for (let block = 0; block < 32; block++) {
    const digest = sha256(enc.encode(`${seed}/${block}`))
    const view = new DataView(digest.buffer, digest.byteOffset, digest.byteLength)
    for (let k = 0; k < 8; k++) table[block * 8 + k] = view.getInt32(k * 4, false)
  }
  return table
}

/** The gear table shifted left by one, for the first byte of each two-byte step. */
const GEAR2: Int32Array = GEAR.map((g) => g << 1)

/**
 * Where the chunk that starts at `start` ends: an index in `(start, end]`.
 *
 * `[start, end)` must hold either at least `CHUNKER.max` bytes or all the remaining bytes of
 * the input (a shorter range is taken to end the input). The result depends only on
 * `buf[start + min, start + max)`, never on how the input arrived. This is the synchronous
 * core: {@link chunkStream} is the way to chunk a stream.
 *
 * The definition, one byte at a time: `h = 0`; for each byte `b` from `start + min`,
 * `h = (h << 1) + GEAR[b]` (mod 2^32), and cut after `b` if `h & mask` is 0, where mask
 * is `CHUNKER.maskS` up to `start + avg` and `CHUNKER.maskL` after it; cut at
 * `start + max` at the latest. The loops below take two bytes per step (the first checked
 * as `(h << 1) & (mask << 1)`), which is the same test and about 40% faster under V8.
 *
 * @example
 *   let start = 0
 *   while (start < buf.length) { const end = cutPoint(buf, start, buf.length); use(buf.subarray(start, end)); start = end }
 */
export function cutPoint(buf: Uint8Array, start: number, end: number): number {
  const n = end - start
  if (n <= CHUNKER.min) return end
  const limit = n > CHUNKER.max ? start + CHUNKER.max : end
  const normal = n > CHUNKER.avg ? start + CHUNKER.avg : end
  // Locals rather than module constants: V8 keeps them in registers; int32 math throughout.
  const gear = GEAR
  const gear2 = GEAR2
  const maskS = CHUNKER.maskS | 0
  const maskS2 = maskS << 1
  const maskL = CHUNKER.maskL | 0
  const maskL2 = maskL << 1
  let h = 0
  let i = start + CHUNKER.min
  for (; i + 1 < normal; i += 2) {
    h = ((h << 2) + gear2[buf[i]]) | 0
    if ((h & maskS2) === 0) return i + 1
    h = (h + gear[buf[i + 1]]) | 0
    if ((h & maskS) === 0) return i + 2
  }
  if (i < normal) {
    h = ((h << 1) + gear[buf[i]]) | 0
    if ((h & maskS) === 0) return i + 1
    i++
  }
  for (; i + 1 < limit; i += 2) {
    h = ((h << 2) + gear2[buf[i]]) | 0
    if ((h & maskL2) === 0) return i + 1
    h = (h + gear[buf[i + 1]]) | 0
    if ((h & maskL) === 0) return i + 2
  }
  if (i < limit) {
    h = ((h << 1) + gear[buf[i]]) | 0
    if ((h & maskL) === 0) return i + 1
  }
  return limit
}

/**
 * Cut a byte stream into content-defined chunks.
 *
 * The chunks are the same whatever the sizes of the incoming pieces, and each yielded chunk
 * is a fresh copy the caller may keep (sources that reuse their buffers are safe). Memory
 * stays bounded at about `2 * CHUNKER.max` beyond the piece being consumed, whatever the
 * length of the stream. An empty stream yields nothing.
 *
 * @example
 *   for await (const chunk of chunkStream(fs.createReadStream(path))) store(chunk)
 */
export async function* chunkStream(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const max = CHUNKER.max
  // Cut only when at least `max` bytes are buffered (or the input ended), so the decision
  // never depends on where a piece happened to end.
  const buf = new Uint8Array(2 * max)
  let len = 0
  for await (const piece of source) {
    let offset = 0
    while (offset < piece.length) {
      const take = Math.min(buf.length - len, piece.length - offset)
      buf.set(piece.subarray(offset, offset + take), len)
      len += take
      offset += take
      if (len < buf.length) break
      let start = 0
      while (len - start >= max) {
        const end = cutPoint(buf, start, len)
        yield buf.slice(start, end)
        start = end
      }
      buf.copyWithin(0, start, len)
      len -= start
    }
  }
  let start = 0
  while (start < len) {
    const end = cutPoint(buf, start, len)
    yield buf.slice(start, end)
    start = end
  }
}
