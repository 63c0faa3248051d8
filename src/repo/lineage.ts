import { CID, DAG_CBOR, RAW, cidToString, parseCid } from '../codec/cid.js'
import { decodeBlock, linksOf } from '../codec/block.js'
import { InvalidInputError } from '../errors.js'
import { isFileNode } from '../model/file.js'
import { CONVENTIONAL_FIELDS, type LineageEdge, type LineageGraph, type LineageNode, type NodeKind } from './lineage-graph.js'
import { ensureIndexed, linksTo, pathsOf } from './link-index.js'
import type { Repository } from './repository.js'
import { resolveEntry } from './resolve.js'
import { TaintChecker, isProvenanceRecord } from './taint.js'

export interface LineageOptions {
  /** `up`: what went into it; `down`: what used it; `both`. Default `up`. */
  direction?: 'up' | 'down' | 'both'
  /** Most links to follow from the start (default 50). */
  depth?: number
  /** Most nodes to visit (default 10 000): a guard against exploding fan-out. */
  maxNodes?: number
}

/**
 * The provenance graph around a node: upstream follows the CID links in records (the key
 * names the relation), downstream the reverse-link index. Every node says where it was
 * committed and whether it is tainted by an invalidation upstream of it.
 *
 * @example
 * const g = await lineage(repo, 'models/braggnn:model/meta.json', { direction: 'up', depth: 10 })
 */
export async function lineage(repo: Repository, spec: string, { direction = 'up', depth = 50, maxNodes = 10_000 }: LineageOptions = {}): Promise<LineageGraph> {
  if (!Number.isSafeInteger(depth) || depth < 0) throw new InvalidInputError(`depth must be a non-negative integer, got ${depth}`)
  const start = spec.includes(':') ? (await resolveEntry(repo, spec)).entry.cid : parseCid(spec)
  if (direction !== 'up') await ensureIndexed(repo)
  const taints = await TaintChecker.open(repo)
  // Invalidation records link to their target, but nothing is derived from them.
  const invalidationRecords = new Set([...taints.invalidations.values()].map((i) => i.record.toString()))
  const nodes = new Map<string, LineageNode>()
  const edges: LineageEdge[] = []
  const edgeKeys = new Set<string>()
  let truncated = false

  const addEdge = (from: string, to: string, field: string): void => {
    const key = `${from} ${to} ${field}`
    if (edgeKeys.has(key)) return
    edgeKeys.add(key)
    edges.push({ from, to, field, relation: field.split('.')[0]! })
  }

  /** Each described record's own provenance links (followed upstream), by CID text. */
  const upLinks = new Map<string, [CID, string][]>()

  const walk = async (dir: 'up' | 'down'): Promise<void> => {
    let frontier = [start]
    const seen = new Set([start.toString()])
    for (let d = 0; frontier.length > 0; d++) {
      // A level at a time: its blocks in one batched read, its index lookups in flight together
      // (LevelDB answers many concurrent reads several times faster than one after another).
      const todo = frontier.filter((cid) => !nodes.has(cid.toString()))
      const blocks = todo.length > 0 ? await repo.blocks.getMany(todo) : []
      const described = await Promise.all(todo.map((cid, i) => describe(repo, cid, blocks[i], d, taints)))
      for (const { node, links } of described) {
        nodes.set(node.cid, node)
        upLinks.set(node.cid, invalidationRecords.has(node.cid) ? [] : links)
      }
      const neighbours = await Promise.all(
        frontier.map(async (cid): Promise<[CID, string][]> => {
          if (dir === 'up') return upLinks.get(cid.toString()) ?? []
          const out: [CID, string][] = []
          if (nodes.get(cid.toString())?.kind === 'missing') return out
          for await (const { source, field } of linksTo(repo, cid)) out.push([source, field])
          return out
        }),
      )
      const next: CID[] = []
      for (let i = 0; i < frontier.length; i++) {
        const key = frontier[i]!.toString()
        const links = neighbours[i]!
        if (links.length > 0 && d >= depth) {
          truncated = true
          continue
        }
        for (const [other, field] of links) {
          if (dir === 'up') addEdge(key, other.toString(), field)
          else addEdge(other.toString(), key, field)
          if (seen.has(other.toString())) continue
          if (nodes.size + next.length >= maxNodes) {
            truncated = true
            continue
          }
          seen.add(other.toString())
          next.push(other)
        }
      }
      frontier = next
    }
  }
  if (direction === 'up' || direction === 'both') await walk('up')
  if (direction === 'down' || direction === 'both') await walk('down')
  return { start: start.toString(), direction, nodes: [...nodes.values()], edges, truncated }
}

/**
 * A node of the graph from its block (`bytes` undefined: not in this store), and the
 * provenance links of a record (empty for files and missing blocks). A record's bytes are
 * verified against its CID as they are decoded.
 */
async function describe(repo: Repository, cid: CID, bytes: Uint8Array | undefined, depth: number, taints: TaintChecker): Promise<{ node: LineageNode; links: [CID, string][] }> {
  const key = cidToString(cid)
  const paths = await pathsOf(repo, cid)
  let kind: NodeKind = bytes ? 'record' : 'missing'
  let fields: Record<string, unknown> | undefined
  const links: [CID, string][] = []
  if (bytes) {
    if (cid.code === RAW) kind = 'file'
    else if (cid.code === DAG_CBOR) {
      const value = decodeBlock<Record<string, unknown>>(cid, bytes)
      if (isFileNode(value)) kind = 'file'
      else if (isProvenanceRecord(value)) {
        kind = 'record'
        for (const f of CONVENTIONAL_FIELDS) {
          const v = value[f]
          if (v !== undefined && (typeof v !== 'object' || v === null)) (fields ??= {})[f] = v
        }
        for (const [field, to] of linksOf(value)) links.push([to, field])
      }
    }
  }
  const tainted = await taints.taintOf(cid)
  return { node: { cid: key, kind, paths, depth, ...(fields ? { fields } : {}), ...(tainted ? { tainted } : {}) }, links }
}
