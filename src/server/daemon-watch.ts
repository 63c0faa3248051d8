import { DaemonStore, readDaemonFile } from '../store/daemon.js'

export interface DaemonWatch {
  /** Resolves once the daemon no longer serves the store (it stopped, or was killed). */
  stopped: Promise<void>
  /** Stop watching (`stopped` then never resolves). */
  cancel(): void
}

/**
 * Watch the daemon a {@link DaemonStore} goes through, checking every `intervalMs` (default
 * 500 ms) that the store's DAEMON file still names it and that it lives. A daemon stopping
 * removes that file first, before it lets the store go, so a long-running client (`pedigree
 * serve` started beside a daemon) learns of it in time to take the store over.
 *
 * @example
 * const watch = watchDaemon(repo.store)
 * await watch.stopped // the store is (about to be) free
 */
export function watchDaemon(store: DaemonStore, { intervalMs = 500 }: { intervalMs?: number } = {}): DaemonWatch {
  let timer: NodeJS.Timeout | undefined
  let cancelled = false
  const stopped = new Promise<void>((resolve) => {
    const check = async (): Promise<void> => {
      const info = await readDaemonFile(store.location).catch(() => undefined)
      if (cancelled) return
      if (!info || info.pid !== store.pid || info.socket !== store.socketPath) resolve()
      else timer = setTimeout(() => void check(), intervalMs)
    }
    timer = setTimeout(() => void check(), intervalMs)
  })
  return {
    stopped,
    cancel() {
      cancelled = true
      clearTimeout(timer)
    },
  }
}
