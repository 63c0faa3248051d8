/**
 * The shape lineage results take, shared by the lineage walk (src/repo/lineage.ts), its
 * renderers (text, DOT, Mermaid) and the W3C PROV export. Plain JSON: CIDs as strings.
 */

export type NodeKind = 'record' | 'file' | 'missing'

/** One invalidation that taints a node: the invalidated node and the reason given. */
export interface TaintCause {
  /** CID of the invalidated node (may be the node itself). */
  root: string
  reason: string
  /** CID of the invalidation record. */
  invalidation: string
}

/**
 * Why a node is tainted. `root`, `reason` and `invalidation` name its primary cause: the
 * node's own invalidation when it has one, else the earliest invalidation upstream of it
 * (by `invalidated_at`, then root CID), so a later invalidation elsewhere never changes it.
 * `causes` lists every invalidation that reaches the node, in that same order (the primary
 * first); `roots` is their roots, for filters such as `{"_tainted.roots": "<cid>"}`.
 */
export interface Taint extends TaintCause {
  causes: TaintCause[]
  roots: string[]
}

export interface LineageNode {
  cid: string
  kind: NodeKind
  /**
   * A tree path at which this CID has been committed (from the path index: the one indexed
   * last), or none when it never was.
   */
  paths: string[]
  /** A record's conventional fields, when present: type, name, started_at, ended_at, agent, campaign_id, workflow_id. */
  fields?: Record<string, unknown>
  /** Distance from the start node. */
  depth: number
  tainted?: Taint
  /**
   * Set when the graph has a `rev` whose tree holds another CID, or nothing, at this node's
   * path: the node is an older (or other) version of that path, not the one in `rev`.
   */
  otherVersion?: true
}

/**
 * A CID link: record `from` links to `to` under the key `relation` (the first segment of
 * the field path: `used` for `used.2`; the full path is in `field`).
 */
export interface LineageEdge {
  from: string
  to: string
  relation: string
  field: string
}

export interface LineageGraph {
  /** CID of the start node. */
  start: string
  /** The revision the start node was named in (`main` of `main:path`); none when it was named by CID. */
  rev?: string
  direction: 'up' | 'down' | 'both'
  nodes: LineageNode[]
  edges: LineageEdge[]
  /** True when the depth limit stopped the walk before it ran out of links. */
  truncated: boolean
}

/** Conventional record fields that name a node in outputs (DESIGN.md). */
export const CONVENTIONAL_FIELDS = ['type', 'name', 'started_at', 'ended_at', 'agent', 'campaign_id', 'workflow_id'] as const
