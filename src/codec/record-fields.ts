/**
 * Dotted field paths compiled for {@link scanFields} (in dag-cbor-decode.ts, where it shares
 * the strict decoder's cursor and checks): scalars at a few paths of a dag-cbor record, read
 * straight from its bytes without building the record.
 */
export { scanFields } from './dag-cbor-decode.js'

/** Dotted paths compiled for {@link scanFields}: a tree of map keys (as UTF-8 bytes). */
export interface FieldPaths {
  readonly root: PathNode
  /** Number of paths: the length of the values array. */
  readonly count: number
}

export interface PathNode {
  /** Children by key, as ASCII bytes. */
  children: { key: Uint8Array; node: PathNode }[]
  /** Where the value at this node goes in the values array, if a path ends here. */
  index: number
}

/**
 * Compile dotted paths (`metrics.loss`) for {@link scanFields}; undefined if one cannot be
 * scanned for (an empty or non-ASCII segment), or if one path ends where another goes on
 * (`metrics` and `metrics.loss`: the first needs the map built).
 */
export function fieldPaths(paths: readonly string[]): FieldPaths | undefined {
  const root: PathNode = { children: [], index: -1 }
  for (let i = 0; i < paths.length; i++) {
    let node = root
    for (const segment of paths[i]!.split('.')) {
      if (segment === '' || !/^[\x20-\x7e]+$/.test(segment)) return undefined
      if (node.index >= 0) return undefined
      let child = node.children.find((c) => Buffer.from(c.key).toString('latin1') === segment)?.node
      if (!child) {
        child = { children: [], index: -1 }
        node.children.push({ key: new Uint8Array(Buffer.from(segment, 'latin1')), node: child })
      }
      node = child
    }
    if (node.index >= 0 || node.children.length > 0) return undefined
    node.index = i
  }
  return { root, count: paths.length }
}
