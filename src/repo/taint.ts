import { CID, cidToString } from '../codec/cid.js'
import { DAG_CBOR, RAW } from '../codec/cid.js'
import { linksOf } from '../codec/block.js'
import { isFileNode } from '../model/file.js'
import { isCommitShape, isTagShape } from '../model/commit.js'
import type { Taint } from './lineage-graph.js'
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
}

/** Every invalidation recorded in the `invalidations` ref (empty if there is none). */
export async function listInvalidations(repo: Repository): Promise<Map<string, Invalidation>> {
  const out = new Map<string, Invalidation>()
  const head = await repo.refs.get(INVALIDATIONS_REF)
  if (!head) return out
  const { tree } = await repo.readCommit(head)
  for await (const [path, entry] of repo.trees.entries(tree, { prefix: 'invalidated/' })) {
    if (entry.kind !== 'record') continue
    const value = await repo.readNode<{ target?: unknown; reason?: unknown }>(entry.cid)
    const target = CID.asCID(value.target)
    if (!target) continue
    out.set(target.toString(), { target, reason: String(value.reason ?? ''), record: entry.cid, path })
  }
  return out
}

/**
 * Answers "is this node tainted, and by what?": a node is tainted when it, or anything
 * upstream of it (following CID links), has been invalidated. Results are memoised, so a
 * whole lineage graph costs one walk.
 */
export class TaintChecker {
  private readonly memo = new Map<string, Taint | null>()
  constructor(
    private readonly repo: Repository,
    readonly invalidations: Map<string, Invalidation>,
  ) {}

  static async open(repo: Repository): Promise<TaintChecker> {
    return new TaintChecker(repo, await listInvalidations(repo))
  }

  get empty(): boolean {
    return this.invalidations.size === 0
  }

  async taintOf(cid: CID): Promise<Taint | undefined> {
    if (this.empty) return undefined
    // Iterative post-order walk: links first, then the node (DAGs only: no cycles).
    const stack: { cid: CID; expanded: boolean }[] = [{ cid, expanded: false }]
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!
      const key = top.cid.toString()
      if (this.memo.has(key)) {
        stack.pop()
        continue
      }
      const own = this.invalidations.get(key)
      if (own) {
        this.memo.set(key, { root: key, reason: own.reason, invalidation: cidToString(own.record) })
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
      const hit = links.map((l) => this.memo.get(l.toString())).find((t) => t)
      this.memo.set(key, hit ?? null)
    }
    return this.memo.get(cid.toString()) ?? undefined
  }

  /** CID links out of a record (files and missing blocks have none). */
  private async linksOf(cid: CID): Promise<CID[]> {
    if (cid.code === RAW || cid.code !== DAG_CBOR) return []
    const bytes = await this.repo.blocks.tryGet(cid)
    if (!bytes) return []
    const value = await this.repo.readNode(cid)
    if (!isProvenanceRecord(value) || this.isInvalidationRecord(cid)) return []
    return [...linksOf(value)].map(([, c]) => c)
  }

  private isInvalidationRecord(cid: CID): boolean {
    for (const inv of this.invalidations.values()) if (inv.record.equals(cid)) return true
    return false
  }
}

/**
 * Every CID downstream of an invalidated node (the invalidated nodes included), with its
 * taint. Uses the reverse-link index, caught up first.
 */
export async function taintedSet(repo: Repository): Promise<Map<string, Taint>> {
  const invalidations = await listInvalidations(repo)
  const out = new Map<string, Taint>()
  if (invalidations.size === 0) return out
  await ensureIndexed(repo)
  // The invalidation records link to what they invalidate; they are not derived from it.
  const records = new Set([...invalidations.values()].map((i) => i.record.toString()))
  const links = reverseLinks(repo)
  try {
    for (const inv of invalidations.values()) {
      const taint: Taint = { root: inv.target.toString(), reason: inv.reason, invalidation: cidToString(inv.record) }
      const queue = [inv.target.toString()]
      for (let i = 0; i < queue.length; i++) {
        const key = queue[i]!
        if (out.has(key) || records.has(key)) continue
        out.set(key, taint)
        for (const { source } of await links.to(key)) queue.push(source.toString())
      }
    }
  } finally {
    await links.close()
  }
  return out
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
