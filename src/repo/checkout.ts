import { createReadStream, createWriteStream } from 'node:fs'
import { lstat, realpath, rename, rm, stat } from 'node:fs/promises'
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import type { CID } from '../codec/cid.js'
import { NotFoundError, RefusedError, UnsafePathError } from '../errors.js'
import { readFile } from '../model/file.js'
import { formatRecordJson } from '../model/record.js'
import { isStoreFolderName } from '../model/tree-path.js'
import type { EntryKind, TreeEntry } from '../model/tree.js'
import type { Repository } from './repository.js'
import { resolveCommit } from './resolve.js'
import { makeDirs } from '../util/make-dirs.js'
import { removeStaleTempFiles, tempNameFor, trackTempFile } from '../util/temp-files.js'

export interface CheckoutOptions {
  /** Directory to write into (created if missing). */
  outDir: string
  /** Tree paths (entries, or prefixes ending at a `/` boundary) to write; all when empty. */
  paths?: string[]
  /** Overwrite existing files whose content differs. */
  force?: boolean
  onProgress?: (p: { bytes: number; totalBytes: number; path: string }) => void
}

export interface CheckoutResult {
  commit: CID
  outDir: string
  written: { path: string; kind: EntryKind; size: number; cid: CID }[]
  /** Files already present with identical content. */
  unchanged: number
}

/**
 * Write the files (byte-exact, each verified chunk by chunk) and records (as pretty
 * DAG-JSON) of a revision into a directory. Refuses, before writing anything, paths
 * that would escape the directory and existing files that differ (unless `force`).
 *
 * @example
 * await checkout(repo, 'models/braggnn@{3}', { outDir: './restore', paths: ['model/weights.pt'] })
 */
export async function checkout(repo: Repository, rev: string, options: CheckoutOptions): Promise<CheckoutResult> {
  const { paths = [], force = false, onProgress } = options
  const outDir = resolve(options.outDir)
  const { cid, commit } = await resolveCommit(repo, rev)
  const selected: [string, TreeEntry][] = []
  // Paths named twice, or inside a folder also named (`config config/train.json`), are written once.
  const chosen = new Set<string>()
  const choose = (path: string, entry: TreeEntry): void => {
    if (chosen.has(path)) return
    chosen.add(path)
    selected.push([path, entry])
  }
  for (const wanted of paths.length ? paths : ['']) {
    const clean = wanted.replace(/^(\.\/)+/, '').replace(/\/+$/, '')
    let found = false
    if (clean) {
      const exact = await repo.trees.get(commit.tree, clean)
      if (exact) {
        choose(clean, exact)
        found = true
      }
    }
    for await (const [path, entry] of repo.trees.entries(commit.tree, { prefix: clean ? `${clean}/` : '' })) {
      choose(path, entry)
      found = true
    }
    if (!found && clean) throw new NotFoundError('path', clean, `not in ${rev}`, { rev, path: clean })
  }
  // Plan: every target must stay inside outDir, and nothing that differs may be overwritten.
  await makeDirs(outDir, 'output folder')
  const realOut = await realpath(outDir)
  const plan: { path: string; entry: TreeEntry; target: string; same: boolean }[] = []
  const selectedPaths = new Set(selected.map(([path]) => path))
  const dirsOk = new Set<string>()
  for (const [path, entry] of selected) {
    const target = safeTarget(outDir, path)
    await checkNoSymlinkEscape(realOut, outDir, target, path)
    await checkParentDirs(outDir, path, selectedPaths, dirsOk)
    const existing = await lstat(target).catch(() => undefined)
    let same = false
    if (existing) {
      if (!existing.isFile()) throw new RefusedError(`refusing to overwrite ${target}: it is not a regular file`, { path })
      same = await sameContent(repo, entry, target, existing.size)
      if (!same && !force) {
        throw new RefusedError(`refusing to overwrite ${target}: it exists and differs from ${path} in ${rev}; use --force`, { path, target })
      }
    }
    plan.push({ path, entry, target, same })
  }
  const totalBytes = plan.reduce((n, p) => n + (p.same ? 0 : p.entry.size), 0)
  let done = 0
  const written: CheckoutResult['written'] = []
  let unchanged = 0
  const swept = new Set<string>()
  for (const { path, entry, target, same } of plan) {
    if (same) {
      unchanged++
      continue
    }
    const dir = dirname(target)
    await makeDirs(dir)
    // What a checkout killed outright (SIGKILL, a crash) left in this folder goes first.
    if (!swept.has(dir)) {
      swept.add(dir)
      await removeStaleTempFiles(dir)
    }
    // Written whole under a temporary name, then renamed: an interrupted checkout leaves the
    // old file (or none), never half of one, and removes its temporary file on the way out.
    const temp = tempNameFor(target)
    const release = trackTempFile(temp)
    try {
      await pipeline(Readable.from(contentOf(repo, entry, (n) => onProgress?.({ bytes: done + n, totalBytes, path }))), createWriteStream(temp))
      await rename(temp, target)
    } catch (e) {
      await rm(temp, { force: true })
      throw e
    } finally {
      release()
    }
    done += entry.size
    written.push({ path, kind: entry.kind, size: entry.size, cid: entry.cid })
  }
  return { commit: cid, outDir, written, unchanged }
}

/** The bytes a checkout writes for an entry: the file itself, or the record as DAG-JSON. */
export async function* contentOf(repo: Repository, entry: TreeEntry, onBytes?: (n: number) => void): AsyncGenerator<Uint8Array> {
  if (entry.kind === 'record') {
    yield Buffer.from(formatRecordJson(await repo.readNode(entry.cid)))
    return
  }
  let n = 0
  for await (const chunk of readFile(repo.blocks, entry.cid)) {
    n += chunk.length
    onBytes?.(n)
    yield chunk
  }
}

/** Map a tree path to a file under outDir, refusing anything that would land outside it. */
export function safeTarget(outDir: string, path: string): string {
  if (isAbsolute(path) || path.startsWith('/') || /^[a-zA-Z]:/.test(path)) throw new UnsafePathError(path, 'it is absolute')
  if (path.split(/[\\/]/).some((s) => s === '..')) throw new UnsafePathError(path, "it contains '..'")
  if (path.split('/').some((s) => s === '' || s === '.')) throw new UnsafePathError(path, 'it has an empty or "." segment')
  if (path.split(/[\\/]/).some(isStoreFolderName)) throw new UnsafePathError(path, "it has a '.pedigree' segment: it would write into a store")
  const target = resolve(outDir, path)
  const rel = relative(outDir, target)
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new UnsafePathError(path, `it resolves outside ${outDir}`)
  return target
}

/** Refuse when an existing directory on the way is a symlink that leads outside outDir. */
async function checkNoSymlinkEscape(realOut: string, outDir: string, target: string, path: string): Promise<void> {
  let dir = dirname(target)
  while (dir.length > outDir.length) {
    const real = await realpath(dir).catch(() => undefined)
    if (real !== undefined) {
      if (real !== realOut && !real.startsWith(realOut + sep)) throw new UnsafePathError(path, `${dir} leads outside ${outDir}`)
      return
    }
    dir = dirname(dir)
  }
}

/**
 * Refuse when a directory that `path` needs is a file: another entry of the same checkout
 * (a tree may hold both `a` and `a/b`), or something other than a directory already on disk.
 */
async function checkParentDirs(outDir: string, path: string, selected: Set<string>, dirsOk: Set<string>): Promise<void> {
  const segments = path.split('/')
  for (let i = 1; i < segments.length; i++) {
    const dir = segments.slice(0, i).join('/')
    if (dirsOk.has(dir)) continue
    if (selected.has(dir)) throw new RefusedError(`refusing to write ${path}: ${dir} is a file in the same revision`, { path, conflict: dir })
    const info = await stat(resolve(outDir, dir)).catch(() => undefined)
    if (info && !info.isDirectory()) throw new RefusedError(`refusing to write ${path}: ${resolve(outDir, dir)} exists and is not a directory`, { path, conflict: dir })
    dirsOk.add(dir)
  }
}

async function sameContent(repo: Repository, entry: TreeEntry, target: string, size: number): Promise<boolean> {
  if (entry.kind === 'file' && size !== entry.size) return false
  const expected = contentOf(repo, entry)[Symbol.asyncIterator]()
  let pending = Buffer.alloc(0)
  for await (const chunk of createReadStream(target) as AsyncIterable<Buffer>) {
    let offset = 0
    while (offset < chunk.length) {
      if (pending.length === 0) {
        const next = await expected.next()
        if (next.done) return false
        pending = Buffer.from(next.value)
      }
      const n = Math.min(pending.length, chunk.length - offset)
      if (!pending.subarray(0, n).equals(chunk.subarray(offset, offset + n))) return false
      pending = pending.subarray(n)
      offset += n
    }
  }
  if (pending.length > 0) return false
  return (await expected.next()).done === true
}

