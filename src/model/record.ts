import { createRequire } from 'node:module'
import type * as JsoncParser from 'jsonc-parser'
import { base64 } from 'multiformats/bases/base64'
import { CID, parseCid } from '../codec/cid.js'
import { InvalidInputError } from '../errors.js'

const loadPackage = createRequire(import.meta.url)

/** A record: any JSON-compatible map, with CID links where the JSON said `{"/": "bafy…"}`. */
export type RecordValue = { [key: string]: unknown }

/**
 * The deepest a record may nest objects and arrays, the record itself being level 1. Deeper
 * records parse, but reading them back (show, checkout, diff, query) walks them recursively;
 * 512 leaves every such walk far inside the stack (tested at the limit) and no real record
 * comes near it.
 */
export const MAX_RECORD_DEPTH = 512

/**
 * Parse the text of a JSON record (DAG-JSON conventions for links and bytes).
 * Errors name the source and the line and column, e.g. `runs/1.json:3:9: value expected`.
 * Refused besides malformed JSON: a value that is not an object; nesting deeper than
 * {@link MAX_RECORD_DEPTH}; integers beyond ±(2^53−1), which JSON.parse would round
 * (9007199254740993 → …992), so they are to be written as strings; non-finite numbers (1e999).
 */
export function parseRecordJson(text: string, source = '<input>', { firstLine = 1 }: { firstLine?: number } = {}): RecordValue {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new InvalidInputError(`malformed JSON in ${source}: ${describeJsonError(text, firstLine)}`, { source }, { cause: e })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidInputError(`${source}: a record must be a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`, {
      source,
    })
  }
  // Only text with a run of 16 digits can hold an integer JSON.parse rounds (2^53 has 16).
  if (SIXTEEN_DIGITS.test(text)) checkIntegers(text, source, firstLine)
  // Text with no key "/" (plain or escaped) holds no DAG-JSON forms: the parsed value is the
  // record as it is, once its numbers are finite (JSON.parse reads 1e999 as Infinity). This
  // skips fromDagJson's copy of every object, a tenth of what ingest spends per record.
  if (!mayHoldKey(text, '/') && allFinite(value, source)) return value as RecordValue
  return fromDagJson(value, source) as RecordValue
}

const SIXTEEN_DIGITS = /\d{16}/
/** 2^53 − 1, the largest integer a JSON number (a double) holds exactly, in its 16 digits. */
const MAX_SAFE_DIGITS = String(Number.MAX_SAFE_INTEGER)

/**
 * Refuse integer literals (no fraction, no exponent) beyond ±(2^53−1) in valid JSON text,
 * naming the line and column of the first. Strings are skipped, escapes included; outside
 * them, digits only occur in numbers.
 */
function checkIntegers(text: string, source: string, firstLine: number): void {
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === QUOTE) {
      i = closingQuote(text, i)
      continue
    }
    if (c !== MINUS && (c < ZERO || c > NINE)) continue
    const start = i
    const digitsFrom = c === MINUS ? i + 1 : i
    let end = digitsFrom
    while (end < n && isDigit(text.charCodeAt(end))) end++
    const next = text.charCodeAt(end)
    const integer = next !== DOT && next !== LOWER_E && next !== UPPER_E
    const digits = text.slice(digitsFrom, end)
    if (integer && (digits.length > MAX_SAFE_DIGITS.length || (digits.length === MAX_SAFE_DIGITS.length && digits > MAX_SAFE_DIGITS))) {
      const literal = text.slice(start, end)
      throw new InvalidInputError(
        `${source}: ${describePosition(text, start, firstLine)}: the integer ${literal} is beyond ±(2^53−1) and would not be stored exactly; write it as a string ("${literal}")`,
        { source, literal },
      )
    }
    // Past the number's fraction and exponent too: their digits are not integers.
    while (end < n && isNumberChar(text.charCodeAt(end))) end++
    i = end - 1
  }
}

const QUOTE = 0x22
const BACKSLASH = 0x5c
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const ZERO = 0x30
const NINE = 0x39
const LOWER_E = 0x65
const UPPER_E = 0x45
const isDigit = (c: number): boolean => c >= ZERO && c <= NINE
const isNumberChar = (c: number): boolean => isDigit(c) || c === DOT || c === LOWER_E || c === UPPER_E || c === PLUS || c === MINUS

/** The index of the quote that closes the string opening at `open` (one not escaped by an odd run of backslashes). */
function closingQuote(text: string, open: number): number {
  for (let at = text.indexOf('"', open + 1); ; at = text.indexOf('"', at + 1)) {
    if (at < 0) return text.length
    let slashes = 0
    while (text.charCodeAt(at - 1 - slashes) === BACKSLASH) slashes++
    if (slashes % 2 === 0) return at
  }
}

/** `line L, column C` of an offset in text whose first line is `firstLine`. */
function describePosition(text: string, offset: number, firstLine: number): string {
  const before = text.slice(0, offset)
  const line = before.split('\n').length + firstLine - 1
  return `line ${line}, column ${offset - before.lastIndexOf('\n')}`
}

/**
 * Whether JSON text could hold the one-character key `key` (`"/"` of DAG-JSON, `"@"` of an
 * ingest reference): written plainly, or with an escape (`\u00…`; `\/` for a slash).
 */
export function mayHoldKey(text: string, key: '/' | '@'): boolean {
  return text.includes(`"${key}"`) || text.includes('\\u00') || (key === '/' && text.includes('\\/'))
}

/**
 * Whether every number in a parsed JSON value is finite. Throws if the value nests deeper than
 * {@link MAX_RECORD_DEPTH}, which also bounds this walk's own recursion.
 */
function allFinite(value: unknown, source: string, depth = 1, top = ''): boolean {
  if (typeof value === 'number') return Number.isFinite(value)
  if (value === null || typeof value !== 'object') return true
  if (depth > MAX_RECORD_DEPTH) throw tooDeep(source, top)
  if (Array.isArray(value)) {
    for (const v of value) if (!allFinite(v, source, depth + 1, top)) return false
    return true
  }
  for (const k in value) if (!allFinite((value as Record<string, unknown>)[k], source, depth + 1, depth === 1 ? k : top)) return false
  return true
}

function tooDeep(source: string, top: string): InvalidInputError {
  return new InvalidInputError(
    `${source}: objects and arrays nested more than ${MAX_RECORD_DEPTH} deep${top ? ` (under "${top}")` : ''}; a record may nest at most ${MAX_RECORD_DEPTH} levels`,
    { source, maxDepth: MAX_RECORD_DEPTH },
  )
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

/**
 * Turn DAG-JSON forms into IPLD values: `{"/": cid}` → CID, `{"/": {"bytes": b64}}` → bytes.
 * Refuses values nested deeper than {@link MAX_RECORD_DEPTH} and non-finite numbers.
 */
export function fromDagJson(value: unknown, source = '<input>', path = ''): unknown {
  return fromDagJsonAt(value, source, path, 1)
}

function fromDagJsonAt(value: unknown, source: string, path: string, depth: number): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new InvalidInputError(`${source}: ${path || 'value'} is not a finite number`)
    return value
  }
  if (depth > MAX_RECORD_DEPTH) throw tooDeep(source, path.split('.')[0]!)
  if (Array.isArray(value)) return value.map((v, i) => fromDagJsonAt(v, source, path ? `${path}.${i}` : String(i), depth + 1))
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
    const v = fromDagJsonAt(obj[k], source, path ? `${path}.${k}` : k, depth + 1)
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
