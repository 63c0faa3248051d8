import { CID, cidToString } from '../codec/cid.js'

/**
 * A sync result as JSON output: every CID as its base32 text, everything else as is.
 *
 * @example
 * jsonOf({ new: cid, refs: [{ cid }] }) // { new: 'bafy…', refs: [{ cid: 'bafy…' }] }
 */
export function jsonOf<T>(value: T): unknown {
  const cid = CID.asCID(value)
  if (cid) return cidToString(cid)
  if (Array.isArray(value)) return value.map((v) => jsonOf(v))
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonOf(v)]))
  }
  return value
}
