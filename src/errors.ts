/**
 * Every error the library throws is a PedigreeError with a stable `code` (for programs)
 * and a message written for people. `data` carries the specifics (the CID, the ref, the
 * path) so that callers never have to parse a message.
 */
export class PedigreeError extends Error {
  readonly code: string
  readonly data: Record<string, unknown>

  constructor(code: string, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
    this.data = data
  }

  toJSON(): { code: string; message: string; data: Record<string, unknown> } {
    return { code: this.code, message: this.message, data: this.data }
  }
}

/** Something named does not exist: a block, a ref, a revision, a path in a tree. */
export class NotFoundError extends PedigreeError {
  constructor(what: string, name: string, detail?: string, data: Record<string, unknown> = {}) {
    super('ERR_NOT_FOUND', `${what} not found: ${name}${detail ? ` (${detail})` : ''}`, { what, name, ...data })
  }
}

/**
 * A revision that names nothing because the store has no commits at all: on a fresh store,
 * `main` before the first commit. A NotFoundError, said so.
 */
export class NoCommitsError extends NotFoundError {
  constructor(ref: string, rev = ref) {
    super('revision', rev, undefined, { ref, storeEmpty: true })
    this.message = `'${ref}' has no commits yet: this store has no commits (the first \`pedigree commit -b ${ref} …\` makes one)`
  }
}

/** Input that is malformed: bad JSON, a bad CID, a bad option value. */
export class InvalidInputError extends PedigreeError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ERR_INVALID_INPUT', message, data, options)
  }
}

/** Edits after which a tree path would be both an entry and a folder (`a` and `a/b`). */
export class PathConflictError extends InvalidInputError {
  constructor(
    /** The entry that would have to be a folder too. */
    readonly entry: string,
    /** A path under it. */
    readonly under: string,
  ) {
    super(`'${under}' and '${entry}' cannot both be in a tree: '${entry}' is an entry, so it cannot also be a folder (remove one of them in the same commit)`, {
      path: under,
      entry,
    })
  }
}

/** A ref name that git's check-ref-format rules reject. */
export class InvalidRefNameError extends PedigreeError {
  constructor(name: string, reason: string) {
    super('ERR_INVALID_REF_NAME', `invalid ref name '${name}': ${reason}`, { name, reason })
  }
}

/** An abbreviated CID that matches more than one block. */
export class AmbiguousRevisionError extends PedigreeError {
  constructor(prefix: string, candidates: string[]) {
    super(
      'ERR_AMBIGUOUS',
      `ambiguous revision '${prefix}': it is a prefix of ${candidates.length} CIDs:\n  ${candidates.join('\n  ')}`,
      { prefix, candidates },
    )
  }
}

/** A compare-and-swap lost: the ref no longer has the value the writer read. */
export class ConflictError extends PedigreeError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('ERR_CONFLICT', message, data)
  }
}

/** A block whose bytes do not hash to its CID, or that does not decode as its codec says. */
export class CorruptBlockError extends PedigreeError {
  constructor(cid: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_CORRUPT', `corrupt block ${cid}: ${reason}`, { cid, reason }, options)
  }
}

/** A tree path that is absolute, contains `..`, or would otherwise escape a directory. */
export class UnsafePathError extends PedigreeError {
  constructor(path: string, reason: string) {
    super('ERR_UNSAFE_PATH', `unsafe path '${path}': ${reason}`, { path, reason })
  }
}

/** The store is held by another process and did not become free in time. */
export class StoreLockedError extends PedigreeError {
  constructor(location: string, waitedMs: number, holder?: string) {
    super(
      'ERR_LOCKED',
      `the store at ${location} is locked by another process${holder ? ` (${holder})` : ''}; waited ${Math.round(waitedMs / 1000)}s. ` +
        'Wait for it to finish, raise PEDIGREE_LOCK_TIMEOUT (seconds), or run `pedigree daemon` (or `pedigree serve`) on this store so that all processes share one owner.',
      { location, waitedMs, holder },
    )
  }
}

/** A refused operation that would lose data or move a protected ref. */
export class RefusedError extends PedigreeError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('ERR_REFUSED', message, data)
  }
}

/** The store could not be read or written (disk, permissions, a foreign error). */
export class StoreError extends PedigreeError {
  constructor(message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super('ERR_STORE', message, data, options)
  }
}
