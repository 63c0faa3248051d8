import { cidToString, parseCid, type CID } from '../codec/cid.js'
import { PedigreeError } from '../errors.js'
import type { NodeKind } from './dag.js'

/** A block that a DAG needs and a store (or a bundle, or a remote) lacks. */
export interface MissingBlock {
  cid: CID
  /** What the link that needs it says it is. */
  as: NodeKind
}

const KIND_TEXT: Record<NodeKind, string> = {
  commit: 'a commit',
  tree: 'a tree node',
  record: 'a record',
  file: 'a file',
  chunk: 'a file chunk',
  any: 'a linked block',
}

/** At most this many missing CIDs travel in an error's data. */
export const MAX_REPORTED_MISSING = 1000

/**
 * The DAG under a ref is not complete: blocks it needs are absent. `data.cid` is the first
 * one, `data.missing` up to {@link MAX_REPORTED_MISSING} of them (`{cid, as}`, CIDs as text),
 * `data.count` how many in all. Nothing was made reachable.
 */
export class IncompleteDagError extends PedigreeError {
  /** Every missing block (in-process callers repair from it; `data.missing` is what travels). */
  readonly blocks: readonly MissingBlock[]

  constructor(missing: readonly MissingBlock[], where: string) {
    const first = missing[0]!
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : ''
    super(
      'ERR_INCOMPLETE',
      `${where}: block ${cidToString(first.cid)} (${KIND_TEXT[first.as]}) is missing${more}; no ref was moved`,
      {
        cid: cidToString(first.cid),
        missing: missing.slice(0, MAX_REPORTED_MISSING).map((m) => ({ cid: cidToString(m.cid), as: m.as })),
        count: missing.length,
      },
    )
    this.blocks = missing
  }
}

/**
 * The missing blocks named by an IncompleteDagError: all of them when it was thrown in this
 * process, else the (first {@link MAX_REPORTED_MISSING}) that travelled in its data.
 */
export function missingOf(e: unknown): MissingBlock[] | undefined {
  if (e instanceof IncompleteDagError) return [...e.blocks]
  if (!(e instanceof PedigreeError) || e.code !== 'ERR_INCOMPLETE' || !Array.isArray(e.data.missing)) return undefined
  return (e.data.missing as { cid: string; as: NodeKind }[]).map((m) => ({ cid: parseCid(m.cid), as: m.as }))
}
