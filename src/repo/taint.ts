import { CID, cidToString } from '../codec/cid.js'
import { DAG_CBOR, RAW } from '../codec/cid.js'
import { linksOf } from '../codec/block.js'
import { isFileNode } from '../model/file.js'
import { isCommitShape, isTagShape } from '../model/commit.js'
import type { Taint, TaintCause } from './lineage-graph.js'
import { ensureIndexed, reverseLinks } from './link-index.js'
import type { Repository } from './repository.js'

import { INVALIDATIONS_REF } from './invalidations-ref.js'

export { INVALIDATIONS_REF }

/** One invalidation: which node is wrong, why, and the record that says so. */
export interface Invalidation {
  target: CID
  reason: string
  record: CID
  path: string
  /** When it was declared (the record's `invalidated_at`, ms since the epoch; NaN when absent or unreadable). */
  time: number
}

/** Every invalidation recorded in the `invalidations` ref (empty if there is none), keyed by target CID. */
export async function listInvalidations(repo: Repository): Promise<Map<string, Invalidation>> {
  const out = new Map<string, Invalidation>()
  const head = await repo.refs.get(INVALIDATIONS_REF)
  if (!head) return out
  const { tree } = await repo.readCommit(head)
  for await (const [path, entry] of repo.trees.entries(tree, { prefix: 'invalidated/' })) {
    if (entry.kind !== 'record') continue
    const value = await repo.readNode<{ target?: unknown; reason?: unknown; invalidated_at?: unknown }>(entry.cid)
    const target = CID.asCID(value.target)
    if (!target) continue
    const time = typeof value.invalidated_at === 'string' ? Date.parse(value.invalidated_at) : NaN
    out.set(target.toString(), { target, reason: String(value.reason ?? ''), record: entry.cid, path, time })
  }
  return out
}

/**
 * Makes the Taint of a node from the roots of the invalidations that reach it, in one
 * deterministic order: the node's own invalidation first, then by time of invalidation
 * (undated last), then by root CID. Equal cause lists share one Taint object.
 */
class CauseOrder {
  /** Invalidations in cause order (own first aside). */
  readonly sorted: Invalidation[]
  private readonly rank = new Map<string, number>()
  private readonly causes = new Map<string, TaintCause>()
  private readonly made = new Map<string, Taint>()

  constructor(invalidations: Map<string, Invalidation>) {
    const time = (i: Invalidation): number => (Number.isNaN(i.time) ? Infinity : i.time)
    this.sorted = [...invalidations.values()].sort((a, b) => time(a) - time(b) || compareText(a.target.toString(), b.target.toString()))
    for (const [i, inv] of this.sorted.entries()) {
      const root = inv.target.toString()
      this.rank.set(root, i)
      this.causes.set(root, { root, reason: inv.reason, invalidation: cidToString(inv.record) })
    }
  }

  /** The taint of a node reached by the invalidations of these roots (`own`, if any, among them). */
  taint(roots: Iterable<string>, own?: string): Taint {
    const rankOf = (root: string): number => (root === own ? -1 : this.rank.get(root)!)
    const ordered = [...new Set(roots)].sort((a, b) => rankOf(a) - rankOf(b))
    const key = ordered.join(' ')
    let taint = this.made.get(key)
    if (!taint) {
      const causes = ordered.map((root) => this.causes.get(root)!)
      taint = { ...causes[0]!, causes, roots: ordered }
      this.made.set(key, taint)
    }
    return taint
  }
}

/**
 * Answers "is this node tainted, and by what?": a node is tainted when it, or anything
 * upstream of it (following CID links), has been invalidated; every such invalidation is one
 * of its causes. Results are memoised, so a whole lineage graph costs one walk.
 */
export class TaintChecker {
  private readonly memo = new Map<string, Taint | null>()
  private readonly order: CauseOrder
  private readonly records: Set<string>
  constructor(
    private readonly repo: Repository,
    readonly invalidations: Map<string, Invalidation>,
  ) {
    this.order = new CauseOrder(invalidations)
    this.records = new Set([...invalidations.values()].map((i) => i.record.toString()))
  }

  static async open(repo: Repository): Promise<TaintChecker> {
    return new TaintChecker(repo, await listInvalidations(repo))
  }

  get empty(): boolean {
    return this.invalidations.size === 0
  }

  async taintOf(cid: CID): Promise<Taint | undefined> {
    if (this.empty) return undefined
    // Iterative post-order walk: links first, then the node (DAGs only: no cycles). An
    // invalidated node is walked too: what is upstream of it taints it as well.
    const stack: { cid: CID; expanded: boolean }[] = [{ cid, expanded: false }]
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!
      const key = top.cid.toString()
      if (this.memo.has(key)) {
        stack.pop()
        continue
      }
      const links = await this.linksOf(top.cid)
      if (!top.expanded) {
        top.expanded = true
        for (const l of links) if (!this.memo.has(l.toString())) stack.push({ cid: l, expanded: false })
        continue
      }
      stack.pop()
      const own = this.invalidations.has(key) ? key : undefined
      const roots = own ? [own] : []
      for (const l of links) roots.push(...(this.memo.get(l.toString())?.roots ?? []))
      this.memo.set(key, roots.length > 0 ? this.order.taint(roots, own) : null)
    }
    return this.memo.get(cid.toString()) ?? undefined
  }

  /** CID links out of a record (files, missing blocks and invalidation records have none). */
  private async linksOf(cid: CID): Promise<CID[]> {
    if (cid.code === RAW || cid.code !== DAG_CBOR) return []
    if (this.records.has(cid.toString())) return []
    const bytes = await this.repo.blocks.tryGet(cid)
    if (!bytes) return []
    const value = await this.repo.readNode(cid)
    if (!isProvenanceRecord(value)) return []
    return [...linksOf(value)].map(([, c]) => c)
  }
}

/**
 * Every CID downstream of an invalidated node (the invalidated nodes included), with its
 * taint: every invalidation that reaches it, its own first. Uses the reverse-link index,
 * caught up first.
 *
 * @example
 * const set = await taintedSet(repo)
 * set.get(cid)?.roots // the invalidated nodes it derives from (itself, if invalidated)
 */
export async function taintedSet(repo: Repository, invalidations?: Map<string, Invalidation>): Promise<Map<string, Taint>> {
  invalidations ??= await listInvalidations(repo)
  const out = new Map<string, Taint>()
  if (invalidations.size === 0) return out
  await ensureIndexed(repo)
  const order = new CauseOrder(invalidations)
  // The invalidation records link to what they invalidate; they are not derived from it.
  const records = new Set([...invalidations.values()].map((i) => i.record.toString()))
  /** Roots reaching each node, in cause order (invalidations are walked in that order). */
  const rootsOf = new Map<string, string[]>()
  /** What links to each node: read from the index once, however many invalidations reach it. */
  const usedBy = new Map<string, string[]>()
  const links = reverseLinks(repo)
  try {
    for (const inv of order.sorted) {
      const root = inv.target.toString()
      const seen = new Set([root])
      const queue = [root]
      for (let i = 0; i < queue.length; i++) {
        const key = queue[i]!
        const roots = rootsOf.get(key)
        if (roots) roots.push(root)
        else rootsOf.set(key, [root])
        let sources = usedBy.get(key)
        if (!sources) {
          sources = (await links.to(key)).map(({ source }) => source.toString())
          usedBy.set(key, sources)
        }
        for (const source of sources) {
          if (seen.has(source) || records.has(source)) continue
          seen.add(source)
          queue.push(source)
        }
      }
    }
  } finally {
    await links.close()
  }
  for (const [key, roots] of rootsOf) out.set(key, order.taint(roots, invalidations.has(key) ? key : undefined))
  return out
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * True for records whose links are provenance (a record or task document); false for file
 * nodes, commits, tags and tree nodes, whose links are structure, not derivation.
 */
export function isProvenanceRecord(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) return false
  if (isFileNode(value) || isCommitShape(value) || isTagShape(value)) return false
  return (value as { kind?: unknown }).kind !== 'tree'
}
