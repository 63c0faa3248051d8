import type { CID } from '../codec/cid.js'
import { cidToString, sameCid } from '../codec/cid.js'
import { CorruptBlockError } from '../errors.js'
import type { NodeView, TreeEntry } from './tree.js'
import { sameCidBytes, sameItemBytes } from './tree-raw.js'

/**
 * The walk of {@link ProllyTree.diff}: two frontiers of nodes, one per tree, compared level by
 * level from the roots down. Nodes named by the same bytes on both sides are dropped without
 * being read; what is left is read, replaced by its children, and compared again, until only
 * the leaves that differ are left, whose entries are then merged in path order (LeafReader).
 */

/**
 * A node still to compare in a diff: its level, and either the item of its parent that names
 * it (`parent`, `index`) or, for a root, its CID. Its CID and greatest key are read from the
 * parent only when needed; `view` is the node once read.
 */
export type Frontier = { level: number; parent: NodeView | undefined; index: number; cid: CID | undefined; last: string | undefined; view: NodeView | undefined }

/**
 * The children `from` to `to` of a node just read: what a node of a frontier becomes, without
 * an object per child (nearly all of them are dropped as shared right away).
 */
export type Span = { level: number; parent: NodeView; from: number; to: number }

export function rootFrontier(cid: CID, view: NodeView): Frontier {
  return { level: view.level, parent: undefined, index: 0, cid, last: view.length > 0 ? view.key(view.length - 1) : '', view }
}

export const frontierCid = (f: Frontier): CID => (f.cid ??= f.parent!.cid(f.index))

/** Leaves read at once by a diff, per side. */
const LEAF_WINDOW = 64

/** Walks a frontier list of nodes and spans, item by item. */
export class FrontierCursor {
  private k = 0
  private i = 0
  level = 0
  parent: NodeView | undefined
  index = 0
  private last: string | undefined
  private current: Frontier | undefined
  constructor(private readonly list: (Frontier | Span)[]) {
    this.settle()
  }
  get done(): boolean {
    return this.k >= this.list.length
  }
  key(): string {
    return (this.last ??= this.current ? (this.current.last ??= this.current.parent!.key(this.current.index)) : this.parent!.key(this.index))
  }
  cid(): CID {
    return this.current ? frontierCid(this.current) : this.parent!.cid(this.index)
  }
  /** The current item as a Frontier (made now for an item of a span). */
  take(): Frontier {
    return this.current ?? { level: this.level, parent: this.parent, index: this.index, cid: undefined, last: this.last, view: undefined }
  }
  next(): void {
    this.i++
    this.settle()
  }
  private settle(): void {
    this.last = undefined
    for (; this.k < this.list.length; this.k++, this.i = 0) {
      const x = this.list[this.k]!
      if ('from' in x) {
        if (x.from + this.i >= x.to) continue
        this.current = undefined
        this.level = x.level
        this.parent = x.parent
        this.index = x.from + this.i
        return
      }
      if (this.i > 0) continue
      this.current = x
      this.level = x.level
      this.parent = x.parent
      this.index = x.index
      return
    }
  }
}

/**
 * Drop the nodes present on both sides. Equal CIDs mean equal content, hence the same last
 * key: a merge of the two lists by last key finds every pair. Two children named by the same
 * bytes in their parents (same key, same CID, same count) are a pair without decoding either.
 */
export function dropShared(left: (Frontier | Span)[], right: (Frontier | Span)[]): [Frontier[], Frontier[]] {
  const l: Frontier[] = []
  const r: Frontier[] = []
  const x = new FrontierCursor(left)
  const y = new FrontierCursor(right)
  while (!x.done && !y.done) {
    const xp = x.parent
    const yp = y.parent
    if (x.level === y.level && xp?.raw && yp?.raw && sameItemBytes(xp, x.index, yp, y.index)) {
      x.next()
      y.next()
      continue
    }
    const xl = x.key()
    const yl = y.key()
    if (xl < yl) {
      l.push(x.take())
      x.next()
    } else if (yl < xl) {
      r.push(y.take())
      y.next()
    } else {
      const same = xp?.raw && yp?.raw ? sameCidBytes(xp, x.index, yp, y.index) : sameCid(x.cid(), y.cid())
      if (x.level !== y.level || !same) {
        l.push(x.take())
        r.push(y.take())
      }
      x.next()
      y.next()
    }
  }
  for (; !x.done; x.next()) l.push(x.take())
  for (; !y.done; y.next()) r.push(y.take())
  return [l, r]
}

/** Replace the frontier's nodes of level `level` (read into `view`) by their children (those that can hold keys under `prefix`). */
export function expandLevel(list: Frontier[], level: number, prefix: string): (Frontier | Span)[] {
  const out: (Frontier | Span)[] = []
  const prefixEnd = prefix + '\uffff' // every path under `prefix` sorts before this
  for (const f of list) {
    if (f.level !== level) {
      out.push(f)
      continue
    }
    const node = f.view!
    if (node.level !== f.level) throw new CorruptBlockError(cidToString(frontierCid(f)), `tree node of level ${node.level} where level ${f.level} was expected`)
    let from = 0
    let to = node.length
    if (prefix) {
      // Keys are sorted: the children that can hold keys under `prefix` are one run.
      while (from < to && node.key(from) < prefix) from++
      for (let i = Math.max(from, 1); i < to; i++) {
        if (node.key(i - 1) >= prefixEnd) {
          to = i
          break
        }
      }
    }
    if (from < to) out.push({ level: level - 1, parent: node, from, to })
  }
  return out
}

/** The entries of a list of leaves in order, read a window of leaves at a time. */
export class LeafReader {
  /** The current entry: entry `at` of `node` (undefined: call fill). */
  node: NodeView | undefined
  at = 0
  private currentKey: string | undefined
  private window: Frontier[] = []
  private w = 0
  private next = 0
  constructor(
    private readonly load: (leaves: Frontier[]) => Promise<void>,
    private readonly leaves: Frontier[],
    private readonly prefix: string,
  ) {}

  /** The path of the current entry (decoded once). */
  key(): string {
    return (this.currentKey ??= this.node!.key(this.at))
  }
  entry(): TreeEntry {
    return this.node!.entry(this.at)
  }
  advance(): void {
    this.at++
    this.currentKey = undefined
    if (this.at >= this.node!.length || this.prefix) this.settle()
  }

  /** Read the next window of leaves if the current one is used up; false when no entries are left. */
  async fill(): Promise<boolean> {
    while (!this.node && this.next < this.leaves.length) {
      this.window = this.leaves.slice(this.next, this.next + LEAF_WINDOW)
      this.next += this.window.length
      await this.load(this.window.filter((f) => !f.view))
      for (const f of this.window) {
        if (f.view!.level !== 0) throw new CorruptBlockError(cidToString(frontierCid(f)), `tree node of level ${f.view!.level} where a leaf was expected`)
      }
      this.w = 0
      this.at = 0
      this.currentKey = undefined
      this.node = this.window[0]!.view
      this.settle()
    }
    return this.node !== undefined
  }

  /** Move on to an entry (under the prefix) in this window, or leave `node` undefined. */
  private settle(): void {
    while (this.node) {
      if (this.at < this.node.length) {
        if (!this.prefix || this.key().startsWith(this.prefix)) return
        this.at++
        this.currentKey = undefined
        continue
      }
      this.w++
      this.at = 0
      this.node = this.w < this.window.length ? this.window[this.w]!.view : undefined
    }
  }
}
