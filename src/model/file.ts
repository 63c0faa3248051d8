import { open } from 'node:fs/promises'
import { CID, DAG_CBOR, MAX_BLOCK_SIZE, RAW, SHA2_256, cidToString } from '../codec/cid.js'
import { decodeBlock, encodeNode, rawBlock, rawBlockAsync, verifyBlock, verifyBlockAsync } from '../codec/block.js'
import type { Block } from '../codec/block.js'
import { CHUNKER, chunkLeases, type ChunkLease } from '../codec/chunk.js'
import { CorruptBlockError, InvalidInputError, NotFoundError } from '../errors.js'
import type { Blockstore } from '../store/blockstore.js'

/**
 * Files: byte-exact content of any size, written and read as streams.
 *
 * Format (field names are part of it, see DESIGN.md):
 * - a file of at most MAX_BLOCK_SIZE bytes is one raw block of its bytes (the empty file is
 *   the raw block of 0 bytes), so a small file and an identical chunk share a CID;
 * - a larger file is cut by the content-defined chunker into raw blocks, listed by a
 *   dag-cbor node `{kind: 'file', size, chunker, chunks: [[cid, length], …]}`;
 * - when there are more than {@link MAX_NODE_ENTRIES} chunks, the file is a balanced tree:
 *   `{kind: 'file', size, chunker, parts: [[cid, size], …]}` whose parts are file nodes
 *   themselves, every leaf at the same depth, built bottom-up while the bytes stream in.
 * The tree's shape depends only on the chunk list, so the same bytes give the same root CID
 * on every machine.
 */

/** `[cid, length]`: a raw chunk and its length in bytes. */
export type ChunkEntry = [cid: CID, length: number]
/** `[cid, size]`: a file node below this one and the number of bytes under it. */
export type PartEntry = [cid: CID, size: number]

/**
 * The chunker recorded in a node. Writers record {@link CHUNKER}; readers accept any named
 * chunker, since reading needs only the chunk list (a later chunker must stay readable).
 */
export interface FileChunker {
  name: string
  [param: string]: unknown
}

/** A file node that lists raw chunks. */
export interface FileChunksNode {
  kind: 'file'
  size: number
  chunker: FileChunker
  chunks: ChunkEntry[]
}

/** A file node that lists the file nodes of consecutive ranges of the file. */
export interface FilePartsNode {
  kind: 'file'
  size: number
  chunker: FileChunker
  parts: PartEntry[]
}

/** A dag-cbor file node (files that fit one block are raw blocks, not nodes). */
export type FileNode = FileChunksNode | FilePartsNode

/**
 * Most entries in one file node. A chunk entry encodes to about 45 bytes, so a full node is
 * about 180 KiB: well under the block limit, while one leaf still covers about 1.1 GiB and two
 * levels cover any file anyone will store.
 */
export const MAX_NODE_ENTRIES = 4096

/** How many bytes of new blocks are gathered before one `hasMany` + `putMany` round trip. */
const WRITE_BATCH_BYTES = 4 * 1024 * 1024
/**
 * How many bytes of chunks are being hashed (on the hashing worker) ahead of the one the tree
 * takes next: enough to keep the worker busy while this thread cuts the following chunks.
 */
const HASH_AHEAD_BYTES = 8 * 1024 * 1024
/** How many bytes of chunks readFile asks the store for at once (one window ahead is in flight). */
const READ_WINDOW_BYTES = 4 * 1024 * 1024
/** Deeper than any real file (4096^8 chunks); stops a crafted chain of nodes early. */
const MAX_DEPTH = 64

export interface WriteFileOptions {
  /** Called with the number of bytes consumed and hashed so far; last with the file's size. */
  onProgress?: (bytesDone: number) => void
  /**
   * The size the file is expected to have (from stat): sizes the memory for a small file.
   * Only a hint: a source that turns out longer or shorter gives the same CID.
   */
  expectedSize?: number
  /**
   * For tests only: the most entries per node (default {@link MAX_NODE_ENTRIES}). Any other
   * value gives other CIDs for the same bytes, so nothing but a test may set it: it exists to
   * exercise multi-level trees without writing terabytes.
   */
  fanout?: number
  /**
   * Offsets at which a chunk must end (sorted), e.g. tensor boundaries of a safetensors
   * file: bytes between two cut points are chunked on their own, so a region that is the
   * same in two files gives the same chunks whatever its neighbours did. Recorded in the
   * node's chunker as `cuts` (the name of the policy), since it changes the CIDs.
   */
  cutPoints?: number[]
  /** Name of the policy that produced `cutPoints`, recorded in the node. */
  cutPolicy?: string
  /**
   * The file this one is a new version of (e.g. what the same path held before). Each new
   * chunk names the old chunk that overlaps its byte range most as a delta base, so a
   * store that keeps deltas (LevelDB) spends about the bytes that changed, not whole chunks.
   * Only a hint: the CIDs are the same with or without it, and an unreadable previous
   * version is ignored.
   */
  previous?: CID
}

export interface ReadFileOptions {
  /** Called with the number of bytes verified and yielded so far. */
  onProgress?: (bytesDone: number) => void
}

/** What writeFile stored: the file's CID (raw block or root node) and its size in bytes. */
export interface WrittenFile {
  cid: CID
  size: number
}

/**
 * Store a stream of bytes as a file and return its CID.
 *
 * Chunks are hashed and written as they arrive, in batches of a few MiB; a chunk the store
 * already has (asked with `hasMany`, one batch at a time) is not written again, so a file
 * that shares most of its bytes with a stored one costs only its new chunks. Memory stays
 * bounded (a few MiB of chunks plus one pending node per tree level) whatever the file's size.
 * Chunks are written before the nodes that list them.
 *
 * @example
 *   const { cid, size } = await writeFile(store.blocks, fs.createReadStream('model.pt'), { onProgress: bar.update })
 */
export async function writeFile(
  blocks: Blockstore,
  source: AsyncIterable<Uint8Array>,
  { onProgress, fanout = MAX_NODE_ENTRIES, cutPoints, cutPolicy, previous, expectedSize }: WriteFileOptions = {},
): Promise<WrittenFile> {
  if (!Number.isSafeInteger(fanout) || fanout < 2 || fanout > 2 * MAX_NODE_ENTRIES) {
    throw new InvalidInputError(`fanout must be an integer from 2 to ${2 * MAX_NODE_ENTRIES}, got ${fanout}`, { fanout })
  }
  const writer = new BatchWriter(blocks)
  const chunker = cutPoints?.length ? { ...CHUNKER, cuts: cutPolicy ?? 'given' } : CHUNKER
  const tree = new TreeBuilder(writer, fanout, chunker)
  const similar = previous ? new PreviousChunks(blocks, previous) : undefined
  let size = 0
  let hashed = 0
  // Whether the file fits one raw block is known only once more than MAX_BLOCK_SIZE bytes
  // arrived, so its first chunks wait here (at most 1 MiB + one chunk).
  let head: ChunkLease[] | undefined = []
  // Chunks in order, each hashing on the hashing worker while this thread cuts the next ones
  // (the gear hash and sha256 then run on two cores). The oldest goes to the tree once its
  // CID is known; its bytes go back to the chunker once the store has them.
  const hashing: Array<{ lease: ChunkLease; block: Promise<Block> }> = []
  let hashingBytes = 0
  const hash = (lease: ChunkLease): void => {
    const block = rawBlockAsync(lease.bytes)
    // Awaited in order below; if writing stops early, a hash still running must not count as unhandled.
    block.catch(() => {})
    hashing.push({ lease, block })
    hashingBytes += lease.bytes.length
  }
  const settleOldest = async (): Promise<void> => {
    const { lease, block } = hashing.shift()!
    hashingBytes -= lease.bytes.length
    const base = await similar?.overlapping(hashed, hashed + lease.bytes.length)
    await tree.addChunk(await block, lease.release, base)
    hashed += lease.bytes.length
    onProgress?.(hashed)
  }
  const chunks = cutPoints?.length ? chunkSegments(source, cutPoints) : chunkLeases(source, { expectedSize })
  for await (const lease of chunks) {
    size += lease.bytes.length
    if (head) {
      head.push(lease)
      if (size > MAX_BLOCK_SIZE) {
        for (const c of head) hash(c)
        head = undefined
      }
    } else {
      hash(lease)
    }
    while (hashingBytes > HASH_AHEAD_BYTES) await settleOldest()
  }
  while (hashing.length > 0) await settleOldest()
  let cid: CID
  if (head) {
    const block = rawBlock(concat(head.map((l) => l.bytes), size))
    await writer.add(block, () => head!.forEach((l) => l.release()))
    cid = block.cid
    onProgress?.(size)
  } else {
    cid = await tree.finish()
  }
  await writer.close()
  return { cid, size }
}

/**
 * Store bytes already in memory as a file (same CID as streaming them through writeFile).
 *
 * @example
 *   const { cid } = await writeFileFromBytes(store.blocks, new TextEncoder().encode('hello'))
 */
export async function writeFileFromBytes(blocks: Blockstore, bytes: Uint8Array, options: WriteFileOptions = {}): Promise<WrittenFile> {
  return writeFile(blocks, once(bytes), options)
}

/**
 * The bytes of a local file as a stream for {@link writeFile}, read ahead into two buffers
 * that take turns: each piece is valid only until the next one is asked for (writeFile and
 * chunkStream copy what they keep). `fs.createReadStream` allocates a fresh buffer per read
 * instead, and fresh memory costs a page fault per 4 KiB on first touch plus the garbage
 * collector's work to find it again: about 1 s per GiB on a 2-core machine.
 *
 * `size`, when the caller knows it (from stat), sizes the buffers for a small file; a file that
 * has grown since is still read whole.
 *
 * @example
 *   const { cid } = await writeFile(store.blocks, readLocalFile('model.pt'))
 */
export async function* readLocalFile(path: string, { pieceBytes: most = 1024 * 1024, size }: { pieceBytes?: number; size?: number } = {}): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r')
  // A file known to be small is read into buffers of its size (+1, to see its end in one
  // read): 20,000 small files would otherwise cost 40,000 MiB-buffers to zero and collect.
  const pieceBytes = size !== undefined && size < most ? Math.max(size + 1, 64) : most
  const buffers = [new Uint8Array(pieceBytes), new Uint8Array(pieceBytes)]
  let turn = 0
  let next = fh.read(buffers[turn]!, 0, pieceBytes, null)
  try {
    for (;;) {
      const { bytesRead, buffer } = await next
      if (bytesRead === 0) return
      // The other buffer was handed out last time; the consumer is done with it now that it asks again.
      turn ^= 1
      next = fh.read(buffers[turn]!, 0, pieceBytes, null)
      yield buffer.subarray(0, bytesRead)
    }
  } finally {
    // A consumer that stops early leaves a read in flight: let it land before closing.
    await next.catch(() => {})
    await fh.close()
  }
}

/**
 * The bytes of a file, in order, as a stream.
 *
 * Every chunk is re-hashed against its CID before it is yielded: a mismatch throws
 * CorruptBlockError naming the chunk's CID, and nothing after the bad chunk is yielded. A
 * missing block throws NotFoundError naming its CID. A few MiB of chunks are fetched ahead
 * (one `getMany` per window) so that a slow store and the hashing overlap; memory stays
 * bounded at about two windows. A CID that is not a file throws InvalidInputError.
 *
 * @example
 *   await pipeline(Readable.from(readFile(store.blocks, cid)), fs.createWriteStream('model.pt'))
 */
export async function* readFile(blocks: Blockstore, cid: CID, { onProgress }: ReadFileOptions = {}): AsyncGenerator<Uint8Array> {
  if (cid.code === RAW) {
    const bytes = await getBlock(blocks, cid)
    verifyBlock(cid, bytes)
    if (bytes.length > 0) yield bytes
    onProgress?.(bytes.length)
    return
  }
  const root = await readRoot(blocks, cid)
  const entries = chunkRefs(blocks, cid, root)
  let done = 0
  let next = fetchWindow(blocks, entries)
  try {
    for (;;) {
      const window = await next
      if (window.length === 0) break
      next = fetchWindow(blocks, entries)
      for (const { ref, bytes, verified } of window) {
        if (!bytes) throw new NotFoundError('block', cidToString(ref.cid), `a chunk of file ${cidToString(cid)}`, { cid: cidToString(ref.cid) })
        await verified
        if (bytes.length !== ref.length) {
          throw new CorruptBlockError(cidToString(ref.parent), `it gives chunk ${cidToString(ref.cid)} ${ref.length} bytes, the chunk has ${bytes.length}`)
        }
        done += bytes.length
        yield bytes
        onProgress?.(done)
      }
    }
  } finally {
    // The consumer may stop early; a prefetch still in flight must not surface as unhandled.
    next.catch(() => {})
    await entries.return(undefined).catch(() => {})
  }
}

/**
 * The size in bytes of the file `cid`, reading only its root block.
 *
 * @example
 *   const bytes = await fileSize(store.blocks, cid)
 */
export async function fileSize(blocks: Blockstore, cid: CID): Promise<number> {
  if (cid.code === RAW) {
    const bytes = await getBlock(blocks, cid)
    verifyBlock(cid, bytes)
    return bytes.length
  }
  return (await readRoot(blocks, cid)).size
}

/**
 * True if `value` (a decoded dag-cbor node) is a well-formed file node: `kind: 'file'`, a
 * named chunker, and a non-empty list of either raw chunks or dag-cbor parts whose sizes add
 * up to `size`. Checking the sum here means a reader never streams a node that lies about it.
 *
 * @example
 *   if (isFileNode(decodeBlock(cid, bytes))) …
 */
export function isFileNode(value: unknown): value is FileNode {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const node = value as Record<string, unknown>
  if (node.kind !== 'file' || !isSize(node.size) || node.size === 0) return false
  const chunker = node.chunker as Record<string, unknown> | null | undefined
  if (chunker === null || typeof chunker !== 'object' || typeof chunker.name !== 'string') return false
  const hasChunks = 'chunks' in node
  if (hasChunks === ('parts' in node)) return false
  const list = hasChunks ? node.chunks : node.parts
  if (!Array.isArray(list) || list.length === 0) return false
  const codec = hasChunks ? RAW : DAG_CBOR
  let sum = 0
  for (const entry of list) {
    if (!Array.isArray(entry) || entry.length !== 2) return false
    const cid = CID.asCID(entry[0])
    const n: unknown = entry[1]
    if (!cid || cid.version !== 1 || cid.code !== codec || cid.multihash.code !== SHA2_256) return false
    if (!isSize(n) || n === 0 || (hasChunks && n > MAX_BLOCK_SIZE)) return false
    sum += n
  }
  return sum === node.size
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/**
 * Gathers blocks into batches and writes each with one hasMany + putMany, one batch in flight.
 * A block may come with a `release` callback, called once the store has the block (or had
 * it already): a Blockstore keeps nothing of the bytes it was given once `putMany` resolves.
 * After a failed write nothing is released, so no buffer is reused under a write still running.
 */
class BatchWriter {
  private batch: Block[] = []
  private releases: Array<() => void> = []
  private keys = new Set<string>()
  /** Delta bases of blocks in the batch, where the writer named one. */
  private bases = new Map<Block, CID>()
  private bytes = 0
  private inflight: Promise<void> = Promise.resolve()

  constructor(private readonly blocks: Blockstore) {}

  async add(block: Block, release?: () => void, base?: CID): Promise<void> {
    const key = cidToString(block.cid)
    // A file that repeats a chunk within one batch writes it once.
    if (this.keys.has(key)) {
      release?.()
      return
    }
    this.keys.add(key)
    this.batch.push(block)
    if (release) this.releases.push(release)
    if (base) this.bases.set(block, base)
    this.bytes += block.bytes.length
    if (this.bytes >= WRITE_BATCH_BYTES) await this.flush()
  }

  /** Start writing the current batch; waits for the previous one, so batches land in order. */
  private async flush(): Promise<void> {
    await this.inflight
    if (this.batch.length === 0) return
    const batch = this.batch
    const releases = this.releases
    const bases = this.bases
    this.batch = []
    this.releases = []
    this.keys = new Set()
    this.bases = new Map()
    this.bytes = 0
    this.inflight = this.store(batch, releases, bases)
    // Awaited on the next flush or in close(); until then a failure must not count as unhandled.
    this.inflight.catch(() => {})
  }

  private async store(batch: Block[], releases: Array<() => void>, bases: Map<Block, CID>): Promise<void> {
    const present = await this.blocks.hasMany(batch.map((b) => b.cid))
    const missing = batch.filter((_, i) => !present[i])
    if (missing.length > 0) await this.blocks.putMany(missing, bases.size > 0 ? { deltaBase: (b) => bases.get(b) } : {})
    for (const release of releases) release()
  }

  async close(): Promise<void> {
    await this.flush()
    await this.inflight
  }
}

/**
 * Builds the node tree bottom-up as chunks arrive: `levels[0]` holds chunk entries of the
 * leaf being filled, `levels[k]` part entries of the level-k node being filled. A full node
 * is written at once and becomes one entry of the level above, so only one partial node per
 * level is ever held.
 */
class TreeBuilder {
  private readonly levels: Array<Array<[CID, number]>> = [[]]
  private readonly sizes: number[] = [0]

  constructor(
    private readonly writer: BatchWriter,
    private readonly fanout: number,
    private readonly chunker: FileChunker,
  ) {}

  async addChunk(block: Block, release?: () => void, base?: CID): Promise<void> {
    await this.writer.add(block, release, base)
    await this.push(0, [block.cid, block.bytes.length])
  }

  private async push(level: number, entry: [CID, number]): Promise<void> {
    if (this.levels.length === level) {
      this.levels.push([])
      this.sizes.push(0)
    }
    this.levels[level].push(entry)
    this.sizes[level] += entry[1]
    if (this.levels[level].length === this.fanout) await this.emit(level)
  }

  private async emit(level: number): Promise<void> {
    const entries = this.levels[level]
    const size = this.sizes[level]
    this.levels[level] = []
    this.sizes[level] = 0
    const node: FileNode =
      level === 0 ? { kind: 'file', size, chunker: this.chunker, chunks: entries } : { kind: 'file', size, chunker: this.chunker, parts: entries }
    const block = encodeNode(node)
    await this.writer.add(block)
    await this.push(level + 1, [block.cid, size])
  }

  /**
   * Close every partial node from the bottom up (so all leaves stay at one depth) and return
   * the root: the single entry left at the top, or the only leaf.
   */
  async finish(): Promise<CID> {
    for (let k = 0; ; k++) {
      const top = this.levels.slice(k + 1).every((l) => l.length === 0)
      const pending = this.levels[k]
      if (top && k > 0 && pending.length === 1) return pending[0][0]
      if (pending.length > 0) await this.emit(k)
    }
  }
}

/**
 * The chunks of a file's previous version, walked once alongside the new version's chunks:
 * for each new chunk's byte range, the old chunk that overlaps it most (in a file edited in
 * place, the old bytes at the same offsets). Reads only file nodes; any failure to read them
 * ends the hints, not the write.
 */
class PreviousChunks {
  private readonly chunks: AsyncGenerator<ChunkLocation>
  private current: ChunkLocation | undefined
  private ended = false

  constructor(blocks: Blockstore, file: CID) {
    this.chunks = fileChunks(blocks, file)
  }

  /** The old chunk overlapping [start, end) most; called with ranges in increasing order. */
  async overlapping(start: number, end: number): Promise<CID | undefined> {
    let best: CID | undefined
    let most = 0
    for (;;) {
      const c = this.current ?? (await this.advance())
      if (!c || c.offset >= end) return best
      const overlap = Math.min(end, c.offset + c.length) - Math.max(start, c.offset)
      if (overlap > most) {
        best = c.cid
        most = overlap
      }
      // A chunk reaching past `end` may overlap the next range too.
      if (c.offset + c.length > end) return best
      this.current = undefined
    }
  }

  private async advance(): Promise<ChunkLocation | undefined> {
    if (this.ended) return undefined
    try {
      const r = await this.chunks.next()
      if (r.done) this.ended = true
      else this.current = r.value
    } catch {
      this.ended = true
    }
    return this.current
  }
}

/** A chunk to read, with the node that listed it (named when the node and chunk disagree). */
interface ChunkRef {
  cid: CID
  length: number
  parent: CID
}

/** The chunks of a file in order, reading part nodes depth first as they are reached. */
async function* chunkRefs(blocks: Blockstore, rootCid: CID, root: FileNode): AsyncGenerator<ChunkRef> {
  const stack: Array<{ cid: CID; node: FileNode; next: number }> = [{ cid: rootCid, node: root, next: 0 }]
  // The writer puts every leaf at one depth (a reader would read any shape; a check would not).
  let leafDepth: number | undefined
  while (stack.length > 0) {
    const top = stack[stack.length - 1]
    if ('chunks' in top.node) {
      leafDepth ??= stack.length
      if (stack.length !== leafDepth) {
        throw new CorruptBlockError(cidToString(top.cid), `a leaf of file ${cidToString(rootCid)} at depth ${stack.length - 1}, where its other leaves are at depth ${leafDepth - 1}`)
      }
      for (const [cid, length] of top.node.chunks) yield { cid, length, parent: top.cid }
      stack.pop()
      continue
    }
    if (top.next >= top.node.parts.length) {
      stack.pop()
      continue
    }
    const [cid, size] = top.node.parts[top.next++]
    if (stack.length >= MAX_DEPTH) throw new CorruptBlockError(cidToString(top.cid), `file tree deeper than ${MAX_DEPTH} levels`)
    const child = await readPart(blocks, cid, top.cid)
    if (child.size !== size) {
      throw new CorruptBlockError(cidToString(top.cid), `it gives part ${cidToString(cid)} ${size} bytes, the part says ${child.size}`)
    }
    stack.push({ cid, node: child, next: 0 })
  }
}

type Window = Array<{ ref: ChunkRef; bytes: Uint8Array | undefined; verified?: Promise<void> }>

/**
 * The next few MiB of chunks (by their declared lengths), fetched with one getMany. Their
 * hashes are checked on the hashing worker at once, so that this thread can hand the previous
 * window's bytes on meanwhile; the reader awaits each check before it yields a chunk.
 */
async function fetchWindow(blocks: Blockstore, refs: AsyncGenerator<ChunkRef>): Promise<Window> {
  const batch: ChunkRef[] = []
  let bytes = 0
  while (bytes < READ_WINDOW_BYTES) {
    const r = await refs.next()
    if (r.done) break
    batch.push(r.value)
    bytes += r.value.length
  }
  if (batch.length === 0) return []
  const got = await blocks.getMany(batch.map((r) => r.cid))
  return batch.map((ref, i) => {
    const bytes = got[i]
    if (!bytes) return { ref, bytes }
    const verified = verifyBlockAsync(ref.cid, bytes)
    // Awaited in order by the reader; one it never reaches (it stopped early) must not count as unhandled.
    verified.catch(() => {})
    return { ref, bytes, verified }
  })
}

async function getBlock(blocks: Blockstore, cid: CID, detail?: string): Promise<Uint8Array> {
  const bytes = await blocks.tryGet(cid)
  if (!bytes) throw new NotFoundError('block', cidToString(cid), detail, { cid: cidToString(cid) })
  return bytes
}

async function readRoot(blocks: Blockstore, cid: CID): Promise<FileNode> {
  if (cid.code !== DAG_CBOR) throw new InvalidInputError(`${cidToString(cid)} is not a file: unsupported codec 0x${cid.code.toString(16)}`, { cid: cidToString(cid) })
  const node = decodeBlock(cid, await getBlock(blocks, cid))
  if (!isFileNode(node)) throw new InvalidInputError(`${cidToString(cid)} is not a file`, { cid: cidToString(cid) })
  return node
}

async function readPart(blocks: Blockstore, cid: CID, parent: CID): Promise<FileNode> {
  const node = decodeBlock(cid, await getBlock(blocks, cid, `a part of file node ${cidToString(parent)}`))
  if (!isFileNode(node)) throw new CorruptBlockError(cidToString(cid), `listed as a part by ${cidToString(parent)} but not a file node`)
  return node
}

function concat(pieces: Uint8Array[], size: number): Uint8Array {
  if (pieces.length === 1) return pieces[0]
  const out = new Uint8Array(size)
  let offset = 0
  for (const p of pieces) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

/**
 * Chunk a stream with forced boundaries: the bytes between consecutive cut points go
 * through the content-defined chunker on their own.
 */
async function* chunkSegments(source: AsyncIterable<Uint8Array>, cutPoints: number[]): AsyncGenerator<ChunkLease> {
  const input = source[Symbol.asyncIterator]()
  let pending: Uint8Array | undefined
  let offset = 0
  let exhausted = false
  // Yields the source's bytes up to `end` (exclusive), keeping the rest for the next segment.
  async function* until(end: number): AsyncGenerator<Uint8Array> {
    while (offset < end) {
      if (!pending) {
        if (exhausted) return
        const r = await input.next()
        if (r.done) {
          exhausted = true
          return
        }
        pending = r.value
        if (pending.length === 0) {
          pending = undefined
          continue
        }
      }
      const take = Math.min(pending.length, end - offset)
      const piece = pending.subarray(0, take)
      pending = take < pending.length ? pending.subarray(take) : undefined
      offset += take
      yield piece
    }
  }
  for (const cut of [...cutPoints, Infinity]) {
    if (cut <= offset) continue
    yield* chunkLeases(until(cut))
    if (exhausted && !pending) return
  }
}

/** A chunk of a file with its offset, for range reads and model-aware diffs. */
export interface ChunkLocation {
  cid: CID
  offset: number
  length: number
}

/**
 * The chunks of a file in order with their offsets, reading only file nodes (no chunk
 * bytes). A file that is one raw block is one chunk.
 */
export async function* fileChunks(blocks: Blockstore, cid: CID): AsyncGenerator<ChunkLocation> {
  if (cid.code === RAW) {
    const bytes = await getBlock(blocks, cid)
    yield { cid, offset: 0, length: bytes.length }
    return
  }
  let offset = 0
  for await (const ref of chunkRefs(blocks, cid, await readRoot(blocks, cid))) {
    yield { cid: ref.cid, offset, length: ref.length }
    offset += ref.length
  }
}

/**
 * The bytes [start, end) of a file, reading (and verifying) only the chunks that overlap it.
 */
export async function readRange(blocks: Blockstore, cid: CID, start: number, end: number): Promise<Uint8Array> {
  const out = new Uint8Array(Math.max(0, end - start))
  if (out.length === 0) return out
  for await (const c of fileChunks(blocks, cid)) {
    if (c.offset + c.length <= start) continue
    if (c.offset >= end) break
    const bytes = await getBlock(blocks, c.cid)
    verifyBlock(c.cid, bytes)
    const from = Math.max(start, c.offset)
    const to = Math.min(end, c.offset + c.length)
    out.set(bytes.subarray(from - c.offset, to - c.offset), from - start)
  }
  return out
}
