import { createHash } from 'node:crypto'
import { verifyBlock } from '../codec/block.js'
import type { CID } from '../codec/cid.js'
import { fileChunks, readRange, type ChunkLocation } from '../model/file.js'
import { headerLength, parseSafetensors, type SafetensorsLayout, type TensorInfo } from '../model/safetensors.js'
import type { TreeEntry } from '../model/tree.js'
import type { Repository } from './repository.js'

/** How much of a file's storage is new relative to another version. */
export interface ChunkDelta {
  /** Chunks of the new version. */
  chunks: number
  /** Of those, chunks the old version does not have. */
  newChunks: number
  /** Bytes in those new chunks: what this version costs to send to a store that has the old one. */
  newBytes: number
  /**
   * What this store spends on those new chunks (after compression, and deltas against the
   * old version's chunks), where the backend can tell without reading them.
   */
  newStored?: number
}

export interface TensorChange {
  name: string
  change: 'added' | 'removed' | 'reshaped' | 'changed'
  before?: { dtype: string; shape: number[] }
  after?: { dtype: string; shape: number[] }
}

/** Chunk-level comparison of two file versions (reads file nodes only, never chunk bytes). */
export async function chunkDelta(repo: Repository, before: TreeEntry | undefined, after: TreeEntry): Promise<ChunkDelta> {
  const old = new Set<string>()
  if (before?.kind === 'file') for await (const c of fileChunks(repo.blocks, before.cid)) old.add(c.cid.toString())
  const delta: ChunkDelta = { chunks: 0, newChunks: 0, newBytes: 0 }
  const counted = new Set<string>()
  const storedSizes = repo.blocks.storedSizes?.bind(repo.blocks)
  let fresh: CID[] = []
  const measure = async (): Promise<void> => {
    if (storedSizes && fresh.length > 0) for (const s of await storedSizes(fresh)) delta.newStored! += s?.stored ?? 0
    fresh = []
  }
  if (storedSizes) delta.newStored = 0
  for await (const c of fileChunks(repo.blocks, after.cid)) {
    delta.chunks++
    const key = c.cid.toString()
    if (old.has(key) || counted.has(key)) continue
    counted.add(key)
    delta.newChunks++
    delta.newBytes += c.length
    fresh.push(c.cid)
    if (fresh.length >= STORED_SIZES_BATCH) await measure()
  }
  await measure()
  return delta
}

/** New chunks asked about in one storedSizes call. */
const STORED_SIZES_BATCH = 1024

/** Read the safetensors layout of a stored file, or a note saying why it is not one. */
export async function readLayout(repo: Repository, entry: TreeEntry): Promise<SafetensorsLayout | { note: string }> {
  const first = await readRange(repo.blocks, entry.cid, 0, Math.min(8, entry.size))
  const total = headerLength(first)
  if (total === undefined) return { note: 'not a safetensors file (bad header length); compared as plain binary' }
  if (total > entry.size) return { note: `truncated safetensors header (${total} bytes declared, file has ${entry.size}); compared as plain binary` }
  const layout = parseSafetensors(await readRange(repo.blocks, entry.cid, 0, total), entry.size)
  return layout ?? { note: 'malformed safetensors header; compared as plain binary' }
}

/**
 * Tensors added, removed, reshaped (dtype or shape) or changed (same shape, other bytes)
 * between two versions of a safetensors file. Tensors whose byte ranges are covered by
 * the same chunks in both versions are equal without reading them; others are compared
 * by hashing their ranges.
 */
export async function tensorDiff(repo: Repository, before: TreeEntry, after: TreeEntry): Promise<{ tensors: TensorChange[] } | { note: string }> {
  const [a, b] = await Promise.all([readLayout(repo, before), readLayout(repo, after)])
  if ('note' in a) return { note: `old version: ${a.note}` }
  if ('note' in b) return { note: `new version: ${b.note}` }
  const chunksA = await collect(fileChunks(repo.blocks, before.cid))
  const chunksB = await collect(fileChunks(repo.blocks, after.cid))
  const byName = new Map(a.tensors.map((t) => [t.name, t]))
  const changes: TensorChange[] = []
  const shapeOf = (t: TensorInfo): { dtype: string; shape: number[] } => ({ dtype: t.dtype, shape: t.shape })
  for (const t of b.tensors) {
    const old = byName.get(t.name)
    byName.delete(t.name)
    if (!old) changes.push({ name: t.name, change: 'added', after: shapeOf(t) })
    else if (old.dtype !== t.dtype || JSON.stringify(old.shape) !== JSON.stringify(t.shape)) {
      changes.push({ name: t.name, change: 'reshaped', before: shapeOf(old), after: shapeOf(t) })
    } else if (!(await sameBytes(repo, chunksA, old, chunksB, t))) {
      changes.push({ name: t.name, change: 'changed', before: shapeOf(old), after: shapeOf(t) })
    }
  }
  for (const old of byName.values()) changes.push({ name: old.name, change: 'removed', before: shapeOf(old) })
  changes.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
  return { tensors: changes }
}

async function sameBytes(repo: Repository, chunksA: ChunkLocation[], a: TensorInfo, chunksB: ChunkLocation[], b: TensorInfo): Promise<boolean> {
  if (a.end - a.begin !== b.end - b.begin) return false
  const coverA = covering(chunksA, a.begin, a.end)
  const coverB = covering(chunksB, b.begin, b.end)
  // Same chunks at the same relative offsets: the same bytes, without reading them.
  if (
    coverA.length === coverB.length &&
    coverA.every((c, i) => c.cid.equals(coverB[i]!.cid) && c.offset - a.begin === coverB[i]!.offset - b.begin)
  ) {
    return true
  }
  const [ha, hb] = await Promise.all([rangeDigest(repo, coverA, a.begin, a.end), rangeDigest(repo, coverB, b.begin, b.end)])
  return ha === hb
}

function covering(chunks: ChunkLocation[], begin: number, end: number): ChunkLocation[] {
  return chunks.filter((c) => c.offset < end && c.offset + c.length > begin)
}

/** sha256 of bytes [begin, end), reading one verified chunk at a time (bounded memory). */
async function rangeDigest(repo: Repository, cover: ChunkLocation[], begin: number, end: number): Promise<string> {
  const hash = createHash('sha256')
  for (const c of cover) {
    const bytes = await repo.blocks.get(c.cid)
    verifyBlock(c.cid, bytes)
    hash.update(bytes.subarray(Math.max(begin, c.offset) - c.offset, Math.min(end, c.offset + c.length) - c.offset))
  }
  return hash.digest('hex')
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}
