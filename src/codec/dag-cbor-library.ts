import { createRequire } from 'node:module'
import type * as DagCbor from '@ipld/dag-cbor'

const require = createRequire(import.meta.url)
let library: typeof DagCbor | undefined

/**
 * `@ipld/dag-cbor`, loaded on first use. The fast encoder and decoder hand it only what they
 * leave alone (floats other than float64, big integers, malformed bytes…), which most
 * processes never meet; loading it (and cborg, 20 modules) up front cost ~10 ms of every
 * command's start-up. It is an ES module; Node ≥ 20.19 loads those synchronously through
 * `require` (its exports have a `module-sync` entry), which a synchronous fallback needs.
 *
 * @example
 *   const bytes = dagCborLibrary().encode(value)
 */
export function dagCborLibrary(): typeof DagCbor {
  return (library ??= require('@ipld/dag-cbor') as typeof DagCbor)
}
