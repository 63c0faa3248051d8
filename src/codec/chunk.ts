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
 * may be kept by the caller (sources that reuse their buffers are safe): chunks are views
 * of windows (8 MiB) that are never written again once a chunk was cut from them, so a kept
 * chunk keeps its window alive. Memory stays bounded at a window or two beyond the windows of
 * the chunks the caller keeps, whatever the length of the stream. An empty stream yields nothing.
 *
 * @example
 *   for await (const chunk of chunkStream(fs.createReadStream(path))) store(chunk)
 */
export async function* chunkStream(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const lease of cutStream(source, false)) yield lease.bytes
}

/** A chunk lent by {@link chunkLeases}: its bytes stay valid until `release()` is called. */
export interface ChunkLease {
  readonly bytes: Uint8Array
  /** The chunker may reuse the bytes from now on. Calling it again does nothing. */
  release(): void
}

/**
 * {@link chunkStream} for consumers that are done with each chunk soon (hash it, write it):
 * the same chunks, but lent, so that the chunker can reuse their memory once every chunk
 * cut from a window is released. Streaming a large file then allocates a few windows in
 * all instead of its size in fresh buffers (fresh memory costs a page fault per 4 KiB: about
 * 1 s per GiB here, more than hashing it). Chunks never released are simply not reused.
 * The windows are SharedArrayBuffers, so that a worker thread can hash a chunk in place.
 *
 * `expectedSize` (a file's size from stat) makes the first window fit a small file: a commit
 * of 20,000 small files otherwise allocates 20,000 windows of 2 MiB, which the garbage
 * collector frees too late to keep memory down. A source that turns out longer is still cut
 * whole, with the same chunks.
 *
 * @example
 *   for await (const lease of chunkLeases(source)) { await store(lease.bytes); lease.release() }
 */
export function chunkLeases(source: AsyncIterable<Uint8Array>, { expectedSize }: { expectedSize?: number } = {}): AsyncGenerator<ChunkLease> {
  return cutStream(source, true, expectedSize)
}

/** Windows smaller than this are plain memory: their chunks are hashed on the calling thread anyway. */
const SMALL_WINDOW = 64 * 1024

const MiB = 1024 * KiB
/**
 * Bytes per window after the first. Bytes are copied once into a window and chunks are cut
 * as views of it; when it is full, the uncut tail (less than `CHUNKER.max`) moves to the next
 * one, so a larger window copies less twice. The first window is `2 * CHUNKER.max`, enough
 * for a small file.
 */
const WINDOW_BYTES = 8 * MiB
/** Released windows kept for reuse; more are allocated if the consumer holds more chunks. */
const SPARE_WINDOWS = 4

class Window {
  leases = 0
  /** Full: no more bytes will be written, and it is reusable once its last lease is released. */
  retired = false
  constructor(readonly bytes: Uint8Array) {}
}

async function* cutStream(source: AsyncIterable<Uint8Array>, recycle: boolean, expectedSize?: number): AsyncGenerator<ChunkLease> {
  const max = CHUNKER.max
  const spare: Window[] = []
  const reuse = (w: Window): void => {
    if (recycle && w.bytes.length === WINDOW_BYTES && spare.length < SPARE_WINDOWS) {
      w.retired = false
      spare.push(w)
    }
  }
  const retire = (w: Window): void => {
    w.retired = true
    if (w.leases === 0) reuse(w)
  }
  const lease = (w: Window, start: number, end: number): ChunkLease => {
    w.leases++
    let held = true
    return {
      bytes: w.bytes.subarray(start, end),
      release() {
        if (!held) return
        held = false
        if (--w.leases === 0 && w.retired) reuse(w)
      },
    }
  }
  const allocate = (n: number): Window => new Window(new Uint8Array(recycle && n >= SMALL_WINDOW ? new SharedArrayBuffer(n) : new ArrayBuffer(n)))
  // A window that fills up moves its uncut bytes to a new one, so a first window smaller than
  // `max` (a small file's) changes no cut: every cut is made with `max` bytes buffered or at the end.
  let win = allocate(expectedSize !== undefined && expectedSize < 2 * max ? Math.max(expectedSize + 1, 64) : 2 * max)
  let start = 0
  let len = 0
  for await (const piece of source) {
    let offset = 0
    while (offset < piece.length) {
      if (len === win.bytes.length) {
        // Cutting below leaves less than `max` bytes uncut, so the tail always fits a new window.
        const next = spare.pop() ?? allocate(WINDOW_BYTES)
        next.bytes.set(win.bytes.subarray(start, len))
        retire(win)
        win = next
        len -= start
        start = 0
      }
      const take = Math.min(win.bytes.length - len, piece.length - offset)
      win.bytes.set(piece.subarray(offset, offset + take), len)
      len += take
      offset += take
      // Cut only while at least `max` bytes are buffered (or the input ended), so the decision
      // never depends on where a piece happened to end.
      while (len - start >= max) {
        const end = cutPoint(win.bytes, start, len)
        yield lease(win, start, end)
        start = end
      }
    }
  }
  while (start < len) {
    const end = cutPoint(win.bytes, start, len)
    yield lease(win, start, end)
    start = end
  }
}
