import { createHash, type Hash } from 'node:crypto'
import { cidToString, parseCid, type CID } from '../codec/cid.js'
import type { Repository } from './repository.js'

/**
 * How a re-run ingest knows what an earlier run of the same input committed, so that it
 * resumes after it instead of committing older lines again over newer ones (a task sent
 * once running, once done, must not go back to running).
 *
 * Each ingest commit records, under `meta.ingest`, the lines it covers and a digest of the
 * input from its first line through its last (seeded with the path template: the same lines
 * placed elsewhere are another ingest). Commits of one input chain up: each names the commit
 * that covered the lines before it (`after`), whose `through` is its `before`, back to one
 * starting at line 1. A run finds the most recent commit of its input among the ref's last
 * {@link RESUME_LOOKBACK} first-parent commits (by the digest through line 1, `head`),
 * follows the chain back, and then, line by line, checks each commit's digest at its last
 * line: while they match, those lines were committed and are skipped; from the first that
 * does not (or at the end of the input), lines are committed as usual. Nothing is stored
 * outside the history, so a clone or a pulled copy resumes the same way.
 */

/**
 * How many commits back from the ref's tip a run looks for the last commit of its input:
 * a bound on what an ingest of a new input pays on a long branch (a commit read is ~60 µs on
 * LevelDB, so at most ~0.6 s). The chain behind that commit is followed however long it is.
 */
export const RESUME_LOOKBACK = 10_000

/** What an ingest commit records about the lines it covers (`meta.ingest`). */
export interface IngestMark {
  /** Digest of the input through line 1: names the input (with its path template). */
  head: string
  /** First and last line covered: every line read since the previous commit of this input. */
  lines: [number, number]
  /** Digest of the input through the line before `lines[0]`. */
  before: string
  /** Digest of the input through `lines[1]`. */
  through: string
  /** Records in this commit. */
  records: number
  /** The commit of this input that covered the lines before (absent when `lines[0]` is 1). */
  after?: string
}

/** A commit of an earlier run of the input, and what it recorded. */
export type IngestLink = IngestMark & { cid: CID }

/**
 * The running digest of an input, line by line. Lines are fed to the hash in bulk when a
 * digest is asked for (at a batch's end, at a line the chain names), not one call per line.
 */
export class InputDigest {
  private hash: Hash
  private unfed: string[] = []
  /** Lines added so far. */
  line = 0

  constructor(pathTemplate: string, from?: InputDigest) {
    this.hash = from ? from.feed(from.line).copy() : createHash('sha256').update(`pedigree ingest\0${pathTemplate}\0`)
    if (from) this.line = from.line
  }

  /** The next line's text (what names it in the digest). */
  add(text: string): void {
    this.unfed.push(text)
    this.line++
  }

  /** The digest through `line`: the last line added or the one before it. */
  through(line: number): string {
    return this.feed(line).copy().digest('hex')
  }

  /** A copy at the last line added, to go back to. */
  snapshot(pathTemplate: string): InputDigest {
    return new InputDigest(pathTemplate, this)
  }

  /** The hash fed through `line`, leaving later lines unfed. */
  private feed(line: number): Hash {
    const keep = this.line - line
    if (keep < 0 || keep > this.unfed.length) throw new Error(`ingest: no digest through line ${line} at line ${this.line}`)
    const upTo = this.unfed.length - keep
    if (upTo > 0) {
      this.hash.update(this.unfed.slice(0, upTo).join('\n') + '\n')
      this.unfed = this.unfed.slice(upTo)
    }
    return this.hash
  }
}

/**
 * The commits an earlier ingest of the input whose first line has digest `head` made on
 * `ref`, oldest first: the chain from the most recent such commit among the ref's last
 * {@link RESUME_LOOKBACK} first-parent commits back to the one that began at line 1. Empty
 * when there is none, or when the chain is broken (a commit it names is missing or does not
 * fit).
 */
export async function findIngestChain(repo: Repository, ref: string, head: string): Promise<IngestLink[]> {
  let at = (await repo.refs.get(ref)) ?? undefined
  let tip: IngestLink | undefined
  for (let n = 0; at && n < RESUME_LOOKBACK && !tip; n++) {
    const commit = await repo.readCommit(at)
    const mark = readMark(commit.meta?.ingest)
    if (mark?.head === head) tip = { ...mark, cid: at }
    at = commit.parents[0]
  }
  const chain: IngestLink[] = []
  for (let link = tip; link; ) {
    chain.push(link)
    if (link.lines[0] === 1) return chain.reverse()
    const before: IngestLink = link
    const cid = before.after === undefined ? undefined : parseCidOrUndefined(before.after)
    if (!cid || !(await repo.blocks.has(cid))) return []
    const mark = readMark((await repo.readCommit(cid).catch(() => undefined))?.meta?.ingest)
    if (!mark || mark.head !== head || mark.through !== before.before || mark.lines[1] !== before.lines[0] - 1) return []
    link = { ...mark, cid }
  }
  return []
}

function parseCidOrUndefined(text: string): CID | undefined {
  try {
    return parseCid(text)
  } catch {
    return undefined
  }
}

/** What a commit of this run records: `link` is the previous commit of the chain, if any. */
export function ingestMark(head: string, lines: [number, number], before: string, through: string, records: number, link?: CID): IngestMark {
  return { head, lines, before, through, records, ...(link ? { after: cidToString(link) } : {}) }
}

/** `meta.ingest` of a commit, if it has that shape (meta is free for any writer to fill). */
function readMark(value: unknown): IngestMark | undefined {
  const m = value as Partial<IngestMark> | undefined
  if (!m || typeof m !== 'object') return undefined
  const { head, lines, before, through, records, after } = m
  if (typeof head !== 'string' || typeof before !== 'string' || typeof through !== 'string' || !Number.isSafeInteger(records)) return undefined
  if (after !== undefined && typeof after !== 'string') return undefined
  if (!Array.isArray(lines) || lines.length !== 2 || !lines.every((n) => Number.isSafeInteger(n) && n >= 1) || lines[0] > lines[1]) return undefined
  return { head, lines: [lines[0], lines[1]], before, through, records: records!, ...(after !== undefined ? { after } : {}) }
}
