import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { PedigreeError } from '../errors.js'
import { DaemonStore } from '../store/daemon.js'
import { isS3Url } from '../store/s3/url.js'

/** What `pedigree daemon --json` prints once it listens. */
export interface DaemonListening {
  socket: string
  store: string
  pid: number
}

export default class Daemon extends BaseCommand<typeof Daemon> {
  static override summary = 'Hold this store and serve it to local processes over a unix socket, so that any number of them can use it at once.'
  static override description = [
    'LevelDB admits one process at a time: without a daemon, each command waits for the store to be free. While `pedigree daemon` runs, every command and library call on this store (commit, log, checkout, token add, …) goes through it instead, automatically: nothing to configure, and many writers at once each land their commits.',
    'It listens on <store>/daemon.sock (or, when that path is too long for a socket, in a per-user folder of the temporary directory) and announces itself in <store>/DAEMON. Only your user may connect (the socket is mode 0600, like the store files). It prints where it listens; with --json, one JSON line {socket, store, pid}.',
    'It runs until Ctrl-C or SIGTERM: then new processes open the store themselves again, calls in flight finish, and the store is closed. `pedigree serve` serves the same socket beside HTTP, so run one or the other. See docs/daemon.md.',
  ].join('\n\n')
  static override examples = ['<%= config.bin %> daemon &', '<%= config.bin %> daemon --repo /data/beamline/.pedigree --json']
  static override flags = {
    socket: Flags.string({ description: 'listen on this socket path instead of the default' }),
  }

  async run(): Promise<void> {
    const repo = await this.repo()
    if (repo.store instanceof DaemonStore) {
      throw new PedigreeError('ERR_EXISTS', `the store at ${repo.location} is already served by a daemon (pid ${repo.store.pid}, socket ${repo.store.socketPath})`, {
        location: repo.location,
        pid: repo.store.pid,
        socket: repo.store.socketPath,
      })
    }
    if (isS3Url(repo.location)) {
      throw new PedigreeError('ERR_UNSUPPORTED', `pedigree daemon serves a local store; ${repo.location} is in S3, which any number of processes may use at once`, { location: repo.location })
    }
    const { startStoreSocket } = await import('../server/store-socket.js')
    const daemon = await startStoreSocket(repo.store, { socketPath: this.flags.socket, what: 'pedigree daemon' })
    const listening: DaemonListening = { socket: daemon.socketPath, store: repo.location, pid: process.pid }
    if (this.jsonEnabled()) process.stdout.write(JSON.stringify(listening) + '\n')
    else this.log(`serving ${repo.location} to local processes on ${daemon.socketPath} (Ctrl-C to stop)`)
    // Run until told to stop; then finish the calls in flight, and let the base command close the store.
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    await daemon.close()
    if (!this.jsonEnabled()) process.stderr.write(`stopped (${signal})\n`)
  }
}
