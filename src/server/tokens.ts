import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { InvalidInputError, NotFoundError, PedigreeError } from '../errors.js'
import type { Repository } from '../repo/repository.js'

/*
 * Bearer tokens that `pedigree serve` accepts. Each is kept in the store's config under
 * `token.<name>` as {scope, sha256, created}: the secret itself is shown once, when it is made,
 * and never stored, so a copy of the store (or of its config) does not leak it.
 */

export type TokenScope = 'read' | 'write'
export const SCOPES: readonly TokenScope[] = ['read', 'write']

/** What `token list` shows: never the secret. */
export interface TokenInfo {
  name: string
  scope: TokenScope
  /** ISO 8601. */
  created: string
}

interface StoredToken {
  scope: TokenScope
  /** Hex sha256 of the token text. */
  sha256: string
  created: string
}

const PREFIX = 'token.'
/** Tokens start with this, so that one found in a log or a script is recognisable. */
const TOKEN_TEXT_PREFIX = 'pdg_'

function checkName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new InvalidInputError(`invalid token name '${name}': use up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit`, { name })
  }
  return name
}

function checkScope(scope: string): TokenScope {
  if (!SCOPES.includes(scope as TokenScope)) throw new InvalidInputError(`invalid token scope '${scope}': use read or write`, { scope })
  return scope as TokenScope
}

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest()

/**
 * Make a token with `scope` (`write` includes `read`) and keep its hash under `name` (default:
 * `<scope>-<n>`). Returns the token text: the only time it is ever shown.
 *
 * @example
 * const { token } = await addToken(repo, { scope: 'write', name: 'aps-pipeline' })
 */
export async function addToken(repo: Repository, { scope, name, now = new Date() }: { scope: string; name?: string; now?: Date }): Promise<TokenInfo & { token: string }> {
  const s = checkScope(scope)
  let chosen = name
  if (chosen === undefined) {
    const taken = new Set((await listTokens(repo)).map((t) => t.name))
    let n = 1
    while (taken.has(`${s}-${n}`)) n++
    chosen = `${s}-${n}`
  }
  checkName(chosen)
  if ((await repo.store.config.get(PREFIX + chosen)) !== undefined) {
    throw new PedigreeError('ERR_EXISTS', `a token named '${chosen}' already exists; remove it first (pedigree token remove ${chosen}) or choose another --name`, { name: chosen })
  }
  const token = TOKEN_TEXT_PREFIX + randomBytes(32).toString('base64url')
  const stored: StoredToken = { scope: s, sha256: digest(token).toString('hex'), created: now.toISOString() }
  await repo.store.config.set(PREFIX + chosen, stored)
  return { name: chosen, scope: s, created: stored.created, token }
}

/** Every token (name, scope, created), sorted by name. */
export async function listTokens(repo: Repository): Promise<TokenInfo[]> {
  const out: TokenInfo[] = []
  for await (const [key, value] of repo.store.config.entries(PREFIX)) {
    const v = value as Partial<StoredToken> | null
    if (v && typeof v.sha256 === 'string' && (v.scope === 'read' || v.scope === 'write')) {
      out.push({ name: key.slice(PREFIX.length), scope: v.scope, created: String(v.created ?? '') })
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** Forget a token: the server refuses it from then on. NotFoundError if there is none by that name. */
export async function removeToken(repo: Repository, name: string): Promise<TokenInfo> {
  checkName(name)
  const v = await repo.store.config.get<StoredToken>(PREFIX + name)
  if (!v || typeof v.sha256 !== 'string') throw new NotFoundError('token', name, 'see `pedigree token list`')
  await repo.store.config.delete(PREFIX + name)
  return { name, scope: v.scope, created: v.created }
}

/** The token that `text` is (its name and scope), or undefined. Compares hashes in constant time. */
export async function findToken(repo: Repository, text: string): Promise<TokenInfo | undefined> {
  const want = digest(text)
  let found: TokenInfo | undefined
  for await (const [key, value] of repo.store.config.entries(PREFIX)) {
    const v = value as Partial<StoredToken> | null
    if (!v || typeof v.sha256 !== 'string' || v.sha256.length !== 64) continue
    if (timingSafeEqual(Buffer.from(v.sha256, 'hex'), want) && (v.scope === 'read' || v.scope === 'write')) {
      found = { name: key.slice(PREFIX.length), scope: v.scope, created: String(v.created ?? '') }
    }
  }
  return found
}
