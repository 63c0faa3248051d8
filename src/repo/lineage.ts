import { CID, DAG_CBOR, RAW, cidToString, parseCid } from '../codec/cid.js'
import { linksOf } from '../codec/block.js'
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

  const walk = async (dir: 'up' | 'down'): Promise<void> => {
    let frontier = [start]
    const seen = new Set([start.toString()])
    for (let d = 0; frontier.length > 0; d++) {
      const next: CID[] = []
      for (const cid of frontier) {
        const key = cid.toString()
        if (!nodes.has(key)) nodes.set(key, await describe(repo, cid, d, taints))
        const node = nodes.get(key)!
        if (node.kind === 'missing') continue
        const neighbours: [CID, string][] = []
        if (dir === 'up') {
          if (node.kind === 'record' && !invalidationRecords.has(key)) {
            const value = await repo.readNode(cid)
            if (isProvenanceRecord(value)) for (const [field, to] of linksOf(value)) neighbours.push([to, field])
          }
        } else {
          for await (const { source, field } of linksTo(repo, cid)) neighbours.push([source, field])
        }
        if (neighbours.length > 0 && d >= depth) {
          truncated = true
          continue
        }
        for (const [other, field] of neighbours) {
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
      for (const cid of next) if (!nodes.has(cid.toString())) nodes.set(cid.toString(), await describe(repo, cid, d + 1, taints))
      frontier = next
    }
  }
  if (direction === 'up' || direction === 'both') await walk('up')
  if (direction === 'down' || direction === 'both') await walk('down')
  return { start: start.toString(), direction, nodes: [...nodes.values()], edges, truncated }
}

async function describe(repo: Repository, cid: CID, depth: number, taints: TaintChecker): Promise<LineageNode> {
  const key = cidToString(cid)
  const paths = await pathsOf(repo, cid)
  const bytes = await repo.blocks.tryGet(cid)
  let kind: NodeKind = bytes ? 'record' : 'missing'
  let fields: Record<string, unknown> | undefined
  if (bytes) {
    if (cid.code === RAW) kind = 'file'
    else if (cid.code === DAG_CBOR) {
      const value = await repo.readNode<Record<string, unknown>>(cid)
      if (isFileNode(value)) kind = 'file'
      else if (isProvenanceRecord(value)) {
        kind = 'record'
        for (const f of CONVENTIONAL_FIELDS) {
          const v = value[f]
          if (v !== undefined && (typeof v !== 'object' || v === null)) (fields ??= {})[f] = v
        }
      }
    }
  }
  const tainted = await taints.taintOf(cid)
  return { cid: key, kind, paths, depth, ...(fields ? { fields } : {}), ...(tainted ? { tainted } : {}) }
}
