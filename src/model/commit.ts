import { CID, cidToString } from '../codec/cid.js'
import { CorruptBlockError, InvalidInputError } from '../errors.js'

export interface Person {
  name: string
  email?: string
}

/**
 * A commit: a tree, its parents, who made it and when. `meta` carries workflow context
 * (site, host, workflow_id, …). Field names are part of the format (DESIGN.md).
 */
export interface Commit {
  tree: CID
  parents: CID[]
  author: Person
  /** Milliseconds since the epoch. */
  time: number
  message: string
  meta?: Record<string, unknown>
}

/** An annotated tag. */
export interface Tag {
  target: CID
  name: string
  tagger: Person
  time: number
  message: string
}

/** The encodable form of a commit: no undefined fields (dag-cbor refuses them). */
export function commitNode(commit: Commit): Commit {
  const author: Person = { name: commit.author.name }
  if (commit.author.email) author.email = commit.author.email
  const node: Commit = { tree: commit.tree, parents: commit.parents, author, time: commit.time, message: commit.message }
  if (commit.meta && Object.keys(commit.meta).length > 0) node.meta = commit.meta
  return node
}

/** Validate the shape of a decoded commit, so a forged block cannot crash a walk. */
export function checkCommit(cid: CID, value: unknown): Commit {
  const bad = (why: string): never => {
    throw new CorruptBlockError(cidToString(cid), `not a commit: ${why}`)
  }
  const v = value as Partial<Commit>
  if (!v || typeof v !== 'object') bad('not a map')
  if (!CID.asCID(v.tree)) bad('tree is not a link')
  if (!Array.isArray(v.parents) || !v.parents.every((p) => CID.asCID(p))) bad('parents is not a list of links')
  if (!v.author || typeof v.author.name !== 'string') bad('author has no name')
  if (typeof v.time !== 'number') bad('time is not a number')
  if (typeof v.message !== 'string') bad('message is not a string')
  return v as Commit
}

export function isCommitShape(value: unknown): boolean {
  const v = value as Partial<Commit>
  return !!v && typeof v === 'object' && !!CID.asCID(v.tree) && Array.isArray(v.parents) && typeof v.time === 'number'
}

export function isTagShape(value: unknown): boolean {
  const v = value as Partial<Tag>
  return !!v && typeof v === 'object' && !!CID.asCID(v.target) && typeof v.name === 'string' && !!v.tagger
}

/**
 * Check a person given by a caller (a commit's author, a tag's tagger): a non-empty name and,
 * if any, an email, both strings. Throws InvalidInputError naming `role` and what is wrong.
 */
export function checkPerson(person: unknown, role: string): Person {
  const p = person as Partial<Person> | null | undefined
  if (!p || typeof p !== 'object') throw new InvalidInputError(`${role} is missing: expected { name, email? }`)
  if (typeof p.name !== 'string' || p.name.trim() === '') throw new InvalidInputError(`${role} has no name: expected { name, email? } with a non-empty name`)
  if (p.email !== undefined && typeof p.email !== 'string') throw new InvalidInputError(`${role}'s email is not a string`)
  // A newline in a name would forge lines of `log` and `reflog` (git strips them too).
  for (const [field, text] of [['name', p.name], ['email', p.email]] as const) {
    if (text !== undefined && /[\x00-\x1f\x7f]/.test(text)) throw new InvalidInputError(`${role}'s ${field} contains a control character (a newline, a tab…): ${JSON.stringify(text)}`)
  }
  return p as Person
}

/** Parse `Name <email>` or `Name` into a Person. */
export function parsePerson(text: string): Person {
  const m = /^\s*([^<]*?)\s*(?:<([^>]*)>)?\s*$/.exec(text)
  if (!m || !m[1]) throw new InvalidInputError(`bad author '${text}': expected 'Name <email>' or 'Name'`)
  return m[2] ? { name: m[1], email: m[2] } : { name: m[1] }
}

export function formatPerson(p: Person): string {
  return p.email ? `${p.name} <${p.email}>` : p.name
}
