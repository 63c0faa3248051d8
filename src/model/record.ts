import { createRequire } from 'node:module'
import type * as JsoncParser from 'jsonc-parser'
import { base64 } from 'multiformats/bases/base64'
import { CID, parseCid } from '../codec/cid.js'
import { InvalidInputError } from '../errors.js'

const loadPackage = createRequire(import.meta.url)

/** A record: any JSON-compatible map, with CID links where the JSON said `{"/": "bafy…"}`. */
export type RecordValue = { [key: string]: unknown }

/**
 * Parse the text of a JSON record (DAG-JSON conventions for links and bytes).
 * Errors name the source and the line and column, e.g. `runs/1.json:3:9: value expected`.
 */
export function parseRecordJson(text: string, source = '<input>', { firstLine = 1 }: { firstLine?: number } = {}): RecordValue {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new InvalidInputError(`malformed JSON in ${source}: ${describeJsonError(text, firstLine)}`, { source }, { cause: e })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidInputError(`${source}: a record must be a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`, {
      source,
    })
  }
  // Text with no key "/" (plain or escaped) holds no DAG-JSON forms: the parsed value is the
  // record as it is, once its numbers are finite (JSON.parse reads 1e999 as Infinity). This
  // skips fromDagJson's copy of every object, a tenth of what ingest spends per record.
  if (!mayHoldKey(text, '/') && allFinite(value)) return value as RecordValue
  return fromDagJson(value, source) as RecordValue
}

/**
 * Whether JSON text could hold the one-character key `key` (`"/"` of DAG-JSON, `"@"` of an
 * ingest reference): written plainly, or with an escape (`\u00…`; `\/` for a slash).
 */
export function mayHoldKey(text: string, key: '/' | '@'): boolean {
  return text.includes(`"${key}"`) || text.includes('\\u00') || (key === '/' && text.includes('\\/'))
}

/** Whether every number in a parsed JSON value is finite. */
function allFinite(value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value)
  if (value === null || typeof value !== 'object') return true
  if (Array.isArray(value)) {
    for (const v of value) if (!allFinite(v)) return false
    return true
  }
  for (const k in value) if (!allFinite((value as Record<string, unknown>)[k])) return false
  return true
}

/** Where and why JSON.parse failed, found with a tolerant parser (V8's messages often omit the position). */
export function describeJsonError(text: string, firstLine = 1): string {
  // Loaded only here, when JSON has already failed to parse: every command imports this module.
  const { parse: parseLenient, printParseErrorCode } = loadPackage('jsonc-parser') as typeof JsoncParser
  const errors: JsoncParser.ParseError[] = []
  parseLenient(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false })
  const first = errors[0]
  if (!first) return 'not valid JSON'
  const before = text.slice(0, first.offset)
  const line = before.split('\n').length + firstLine - 1
  const column = first.offset - before.lastIndexOf('\n')
  const what = printParseErrorCode(first.error).replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase()
  return `line ${line}, column ${column} (position ${first.offset}): ${what}`
}

/** Turn DAG-JSON forms into IPLD values: `{"/": cid}` → CID, `{"/": {"bytes": b64}}` → bytes. */
export function fromDagJson(value: unknown, source = '<input>', path = ''): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new InvalidInputError(`${source}: ${path || 'value'} is not a finite number`)
    return value
  }
  if (Array.isArray(value)) return value.map((v, i) => fromDagJson(v, source, path ? `${path}.${i}` : String(i)))
  // Values that are already IPLD (a CID, bytes) pass through: library callers may mix forms.
  if (CID.asCID(value) || value instanceof Uint8Array) return CID.asCID(value) ?? value
  const obj = value as Record<string, unknown>
  const keys = Object.keys(obj)
  if (keys.length === 1 && keys[0] === '/') {
    const inner = obj['/']
    if (typeof inner === 'string') {
      try {
        return parseCid(inner)
      } catch (e) {
        throw new InvalidInputError(`${source}: bad link at ${path || '(top)'}: ${(e as Error).message}`, { source, path }, { cause: e })
      }
    }
    if (inner && typeof inner === 'object' && typeof (inner as { bytes?: unknown }).bytes === 'string') {
      return base64.baseDecode((inner as { bytes: string }).bytes.replace(/=+$/, ''))
    }
  }
  const out: Record<string, unknown> = {}
  for (const k of keys) {
    const v = fromDagJson(obj[k], source, path ? `${path}.${k}` : k)
    // A key "__proto__" (JSON.parse makes it an own property) stays a key, not a prototype.
    if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
    else out[k] = v
  }
  return out
}

/** Turn IPLD values into their DAG-JSON form, for output. */
export function toDagJson(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  const cid = CID.asCID(value)
  if (cid) return { '/': cid.toString() }
  if (value instanceof Uint8Array) return { '/': { bytes: base64.baseEncode(value) } }
  if (Array.isArray(value)) return value.map(toDagJson)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[k] = toDagJson(v)
  return out
}

/** Pretty DAG-JSON text of a record, keys sorted as DAG-JSON sorts them. */
export function formatRecordJson(value: unknown): string {
  return JSON.stringify(sortKeys(toDagJson(value)), null, 2) + '\n'
}

function sortKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(sortKeys)
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k])
  return out
}
