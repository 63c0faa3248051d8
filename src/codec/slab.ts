/**
 * Small byte arrays carved out of shared 32 KiB buffers.
 *
 * Why: every `new Uint8Array(n)` above 64 bytes gets a backing store of its own, which V8
 * allocates outside its heap and the garbage collector must track and free one by one. A commit
 * of 100k records made two per record (the encoded record and its stored form), and freeing
 * them was a large share of its garbage collection. Views of one slab cost a small object each.
 * (Node's `Buffer.allocUnsafe` pools small buffers the same way.)
 *
 * A view keeps its whole slab alive, so only short or dense uses should take them: blocks on
 * their way to the store, values of a write batch. Nobody may write into a view after handing
 * it on (none of pedigree's byte arrays are written after they are made).
 */

/** Arrays up to this many bytes come from a slab; larger ones get their own buffer. */
export const MAX_SLAB_BYTES = 2048
const SLAB_BYTES = 32 * 1024

let slab = new Uint8Array(SLAB_BYTES)
let used = 0

/**
 * A zeroed Uint8Array of `n` bytes, a view of a shared slab when small.
 *
 * @example
 *   const value = smallBytes(1 + block.length) // then value.set(block, 1)
 */
export function smallBytes(n: number): Uint8Array {
  if (n > MAX_SLAB_BYTES) return new Uint8Array(n)
  if (used + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES)
    used = 0
  }
  const view = slab.subarray(used, used + n)
  // Views start on 8-byte boundaries, so that a DataView or a wider typed array over one is aligned.
  used += (n + 7) & ~7
  return view
}

/**
 * A copy of `bytes[start, end)`, in a slab when small.
 *
 * @example
 *   const bytes = copyBytes(scratch, 0, length)
 */
export function copyBytes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const n = end - start
  if (n > MAX_SLAB_BYTES) return bytes.slice(start, end)
  const view = smallBytes(n)
  for (let i = 0; i < n; i++) view[i] = bytes[start + i]!
  return view
}
