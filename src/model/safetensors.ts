/**
 * The layout of a `.safetensors` file: 8 bytes little-endian header length N, N bytes of
 * JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {…}}`, then the
 * tensor data, offsets relative to the end of the header. Used to cut chunks at tensor
 * boundaries (so a fine-tune that rewrites some tensors shares every untouched tensor
 * exactly) and to diff two checkpoints tensor by tensor.
 */

export interface TensorInfo {
  name: string
  dtype: string
  shape: number[]
  /** Absolute byte range in the file: [begin, end). */
  begin: number
  end: number
}

export interface SafetensorsLayout {
  /** Bytes before the tensor data: 8 + the JSON header. */
  dataStart: number
  tensors: TensorInfo[]
  metadata?: Record<string, string>
}

/** Largest header we accept (the reference implementation's limit is 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000

/** How many bytes are needed to parse the header, from the first 8 bytes; undefined if not safetensors. */
export function headerLength(first8: Uint8Array): number | undefined {
  if (first8.length < 8) return undefined
  const view = new DataView(first8.buffer, first8.byteOffset, 8)
  const n = Number(view.getBigUint64(0, true))
  if (n < 2 || n > MAX_HEADER_BYTES) return undefined
  return 8 + n
}

/**
 * Parse the layout from the first bytes of a file (at least `headerLength(...)` of them).
 * Returns undefined, never throws, when the bytes are not a well-formed safetensors
 * header: such a file is treated as plain binary.
 */
export function parseSafetensors(head: Uint8Array, fileSize: number): SafetensorsLayout | undefined {
  const total = headerLength(head)
  if (total === undefined || head.length < total || total > fileSize) return undefined
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, total)))
  } catch {
    return undefined
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return undefined
  const tensors: TensorInfo[] = []
  let metadata: Record<string, string> | undefined
  for (const [name, info] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = info as Record<string, string>
      continue
    }
    const t = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown }
    if (typeof t?.dtype !== 'string' || !Array.isArray(t.shape) || !Array.isArray(t.data_offsets) || t.data_offsets.length !== 2) return undefined
    const [b, e] = t.data_offsets as number[]
    if (!Number.isSafeInteger(b) || !Number.isSafeInteger(e) || b! < 0 || e! < b! || total + e! > fileSize) return undefined
    tensors.push({ name, dtype: t.dtype, shape: t.shape as number[], begin: total + b!, end: total + e! })
  }
  tensors.sort((x, y) => x.begin - y.begin || x.end - y.end)
  return { dataStart: total, tensors, ...(metadata ? { metadata } : {}) }
}

/** Offsets at which chunks must end: the end of the header and the start of each tensor. */
export function tensorCutPoints(layout: SafetensorsLayout): number[] {
  const cuts = new Set<number>([layout.dataStart])
  for (const t of layout.tensors) {
    cuts.add(t.begin)
    cuts.add(t.end)
  }
  return [...cuts].sort((a, b) => a - b)
}
