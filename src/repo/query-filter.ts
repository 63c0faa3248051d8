import { fieldPaths, scanFields, type FieldPaths } from '../codec/record-fields.js'

/**
 * A quick verdict on a record's bytes for the simplest query filters, so that a query can drop
 * most records without building them: conditions on field paths with `$eq`, `$ne`, `$lt`,
 * `$lte`, `$gt`, `$gte`, `$in` and `$nin` against numbers, strings and booleans, under `$and`
 * and `$or`. It answers only where mingo's answer is plain: the record's value at the path is
 * a number, string or boolean read through maps only (see scanFields). A record whose value is
 * missing, null, a list, a map, or anything the scan leaves alone gets no verdict, and neither
 * does a condition such as `$lt` between a string and a string (left to mingo's ordering).
 *
 * Only a `false` verdict saves work: a record that may match is decoded and tested by mingo as
 * before, which therefore stays the judge of every row returned.
 */
export interface QuickFilter {
  /** False if the record cannot match; true if it does; undefined when only mingo can tell. */
  verdict(bytes: Uint8Array): boolean | undefined
}

/** A condition on the value at one path; undefined when it cannot tell. */
type Test = (values: readonly unknown[]) => boolean | undefined

const COMPARISONS = new Set(['$eq', '$ne', '$lt', '$lte', '$gt', '$gte'])

/** The quick filter for a query document (links already as strings), or undefined if it has anything else in it. */
export function quickFilter(doc: Record<string, unknown>): QuickFilter | undefined {
  const paths: string[] = []
  const test = compile(doc, paths)
  if (!test || paths.length === 0) return undefined
  const compiled = fieldPaths(paths)
  if (!compiled) return undefined
  return new Quick(compiled, test)
}

class Quick implements QuickFilter {
  private readonly values: unknown[] = []
  constructor(
    private readonly paths: FieldPaths,
    private readonly test: Test,
  ) {}
  verdict(bytes: Uint8Array): boolean | undefined {
    return scanFields(bytes, this.paths, this.values) ? this.test(this.values) : undefined
  }
}

function compile(doc: unknown, paths: string[]): Test | undefined {
  if (!isPlainObject(doc)) return undefined
  const tests: Test[] = []
  for (const [key, value] of Object.entries(doc)) {
    let test: Test | undefined
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(value) || value.length === 0) return undefined
      const parts = value.map((v) => compile(v, paths))
      if (parts.some((p) => p === undefined)) return undefined
      test = key === '$and' ? all(parts as Test[]) : any(parts as Test[])
    } else {
      // Fields of the query's own (`_path`, `_cid`, `_tainted`) are not in the record's bytes.
      if (key.startsWith('$') || key.startsWith('_') || key.split('.').some((s) => s === '' || s.startsWith('$'))) return undefined
      test = condition(indexOf(paths, key), value)
    }
    if (!test) return undefined
    tests.push(test)
  }
  return tests.length === 0 ? undefined : all(tests)
}

function indexOf(paths: string[], path: string): number {
  const i = paths.indexOf(path)
  if (i >= 0) return i
  paths.push(path)
  return paths.length - 1
}

/** `{path: value}` or `{path: {$op: value, …}}`. */
function condition(at: number, spec: unknown): Test | undefined {
  if (!isPlainObject(spec)) return isScalar(spec) ? compare(at, '$eq', spec) : undefined
  const ops = Object.entries(spec)
  if (ops.length === 0) return undefined
  const tests: Test[] = []
  for (const [op, operand] of ops) {
    let test: Test | undefined
    if (COMPARISONS.has(op) && isScalar(operand)) test = compare(at, op, operand)
    else if ((op === '$in' || op === '$nin') && Array.isArray(operand) && operand.every(isScalar)) test = member(at, op === '$in', operand)
    if (!test) return undefined
    tests.push(test)
  }
  return all(tests)
}

/**
 * mingo's `$eq` and `$ne` between two scalars are `===` and `!==`; its `$lt`, `$lte`, `$gt`
 * and `$gte` are false between different types and the JavaScript comparison within one. A
 * string's order is the one thing left to mingo.
 */
function compare(at: number, op: string, operand: number | string | boolean): Test {
  const numberOrBool = typeof operand !== 'string'
  return (values) => {
    const v = values[at]
    if (!isScalar(v)) return undefined
    switch (op) {
      case '$eq':
        return v === operand
      case '$ne':
        return v !== operand
    }
    if (typeof v !== typeof operand) return false
    if (!numberOrBool) return undefined
    switch (op) {
      case '$lt':
        return v < operand
      case '$lte':
        return v <= operand
      case '$gt':
        return v > operand
      default:
        return v >= operand
    }
  }
}

/** mingo's `$in` of a scalar is membership by `===`; `$nin` its negation. */
function member(at: number, inside: boolean, operand: readonly (number | string | boolean)[]): Test {
  return (values) => {
    const v = values[at]
    if (!isScalar(v)) return undefined
    return operand.includes(v) === inside
  }
}

/** False if any is false; true if all are true; otherwise undefined. */
function all(tests: Test[]): Test {
  if (tests.length === 1) return tests[0]!
  return (values) => {
    let known = true
    for (const t of tests) {
      const r = t(values)
      if (r === false) return false
      if (r === undefined) known = false
    }
    return known ? true : undefined
  }
}

/** True if any is true; false if all are false; otherwise undefined. */
function any(tests: Test[]): Test {
  if (tests.length === 1) return tests[0]!
  return (values) => {
    let known = true
    for (const t of tests) {
      const r = t(values)
      if (r === true) return true
      if (r === undefined) known = false
    }
    return known ? false : undefined
  }
}

const isScalar = (v: unknown): v is number | string | boolean => typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean'

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
