/**
 * A one-line progress meter on stderr: bytes, rate and ETA. Drawn only on a terminal and
 * never under --json (the caller decides with `enabled`); at most ten redraws a second.
 */
/** The stream on which a progress line is drawn now, if any (an error must clear it first). */
let shown: NodeJS.WriteStream | undefined

/** Erase a progress line still drawn (before an error message, so the two do not share a line). */
export function clearProgress(): void {
  shown?.write('\r\x1b[2K')
  shown = undefined
}

export class ProgressLine {
  private readonly started = Date.now()
  private lastDraw = 0
  private drawn = false

  constructor(
    private readonly label: string,
    private readonly enabled: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, total?: number, detail = ''): void {
    if (!this.enabled) return
    const now = Date.now()
    if (now - this.lastDraw < 100) return
    this.lastDraw = now
    const seconds = Math.max((now - this.started) / 1000, 0.001)
    const rate = done / seconds
    let line = `${this.label} ${formatBytes(done)}`
    if (total !== undefined && total > 0) {
      const pct = Math.min(100, (100 * done) / total)
      const eta = rate > 0 ? (total - done) / rate : 0
      line += ` / ${formatBytes(total)} (${pct.toFixed(0)}%), ${formatBytes(rate)}/s, ETA ${formatDuration(eta)}`
    } else line += `, ${formatBytes(rate)}/s`
    if (detail) line += `  ${detail}`
    // A terminal that reports no width (0, as under `script`) gets a common one.
    const width = this.stream.columns || 100
    this.stream.write(`\r${line.slice(0, width - 1).padEnd(Math.min(width - 1, line.length + 10))}`)
    this.drawn = true
    shown = this.stream
  }

  done(): void {
    if (this.enabled && this.drawn) this.stream.write('\r\x1b[2K')
    this.drawn = false
    if (shown === this.stream) shown = undefined
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?'
  if (s < 60) return `${Math.ceil(s)}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}
