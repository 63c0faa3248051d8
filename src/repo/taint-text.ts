import type { Taint } from './lineage-graph.js'

export interface TaintTextOptions {
  /** A readable name for an invalidated node (its path, typically); a short CID when this gives none. */
  nameOf?: (root: string) => string | undefined
}

/** Characters of a root's CID shown when it has no name (a prefix `tainted --root` accepts). */
const SHORT = 20

/**
 * One line saying why a node is tainted, every cause in the taint's order:
 * `INVALIDATED: <own reason>` for a node invalidated itself, else
 * `TAINTED: <reason> (root cause <name>)`, then `; also: <reason> (root cause <name>)` for
 * each further cause. The text is as given: callers that print one line per node escape
 * control characters themselves.
 *
 * @example
 * taintText(node.cid, node.tainted, { nameOf: (cid) => pathOf.get(cid) })
 * // 'TAINTED: beam centre off (root cause calibration/cal-11a.json); also: wrong lr (root cause config/base.json)'
 */
export function taintText(cid: string | undefined, taint: Taint, { nameOf }: TaintTextOptions = {}): string {
  const name = (root: string): string => nameOf?.(root) ?? `${root.slice(0, SHORT)}…`
  return taint.causes
    .map((c, i) => {
      const what = c.root === cid ? `${c.reason}` : `${c.reason} (root cause ${name(c.root)})`
      if (i > 0) return `also: ${what}`
      return `${c.root === cid ? 'INVALIDATED' : 'TAINTED'}: ${what}`
    })
    .join('; ')
}
