import { rmSync } from 'node:fs'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { processAlive } from './process-alive.js'

/**
 * Files being written under a temporary name, to be renamed into place once whole (a
 * checkout's files, a bundle). If the process is interrupted (SIGINT, SIGTERM, SIGHUP) while
 * one is pending, it is removed before the process ends, so a Ctrl-C half-way through
 * restoring a 10 GB checkpoint does not leave 10 GB of partial file behind.
 *
 * The signal handlers are installed only while a file is pending. After removing the files,
 * the process ends as the signal would have ended it, unless someone else (an embedding
 * application, `pedigree serve`) listens for that signal too: then what happens next is
 * theirs to decide. A process killed outright (SIGKILL, a crash) leaves its temp file; a later
 * checkout removes it ({@link removeStaleTempFiles}).
 *
 * @example
 * const release = trackTempFile(temp)
 * try { await write(temp); await rename(temp, target) } finally { release() }
 */
const pending = new Set<string>()
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

function onSignal(signal: NodeJS.Signals): void {
  for (const path of pending) {
    try {
      rmSync(path, { force: true })
    } catch {
      // Nothing more can be done on the way out.
    }
  }
  pending.clear()
  for (const s of SIGNALS) process.removeListener(s, onSignal)
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
}

/** Remove `path` if the process is interrupted before the returned function is called. */
export function trackTempFile(path: string): () => void {
  if (pending.size === 0) for (const s of SIGNALS) process.on(s, onSignal)
  pending.add(path)
  return () => {
    if (!pending.delete(path) || pending.size > 0) return
    for (const s of SIGNALS) process.removeListener(s, onSignal)
  }
}

/** The temporary name under which `target` is written by this process. */
export function tempNameFor(target: string): string {
  return `${target}${TEMP_INFIX}${process.pid}`
}

const TEMP_INFIX = '.pedigree-tmp-'
const TEMP_NAME = /\.pedigree-tmp-(\d+)$/

/**
 * Remove the temporary files in `dir` left by pedigree processes that no longer run (killed
 * outright in the middle of a checkout). Files of running processes are left alone. Returns
 * the paths removed.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[])
  const removed: string[] = []
  for (const name of names) {
    const m = TEMP_NAME.exec(name)
    const pid = Number(m?.[1])
    if (!m || processAlive(pid)) continue
    const path = join(dir, name)
    await rm(path, { force: true })
    removed.push(path)
  }
  return removed
}
