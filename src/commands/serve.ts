import { Flags } from '@oclif/core'
import { BaseCommand } from '../cli/base-command.js'
import { InvalidInputError } from '../errors.js'

/** A byte count: a number, optionally with a unit (k, M, G, T; powers of 1024; `B`/`iB` allowed). */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text)
  if (!m) throw new InvalidInputError(`not a size in bytes: '${text}' (use e.g. 8388608, 8M or 64GiB)`, { value: text })
  const n = Math.floor(Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()))
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidInputError(`size must be a positive number of bytes: '${text}'`, { value: text })
  return n
}

const bytesFlag = Flags.custom<number>({ parse: async (s) => parseBytes(s) })

export default class Serve extends BaseCommand<typeof Serve> {
  static override summary = 'Serve this store over HTTP: the sync protocol for push/fetch/pull/clone, and a JSON read API.'
  static override description = [
    'The server opens the store once and holds it until stopped (Ctrl-C or SIGTERM: requests in flight finish, then the store is closed). Beside HTTP it serves the store to local processes on a unix socket, as `pedigree daemon` does, so that commands run on this machine (commit, log, token add, …) go through it instead of waiting for the store. If a `pedigree daemon` already serves the store, this server goes through it, and takes the store over (same URL) when that daemon stops. It prints the URL it listens on; with --json, one JSON line {url, host, port, store, socket}.',
    'Access: reads need no token unless --require-token-for-read; writes (push) need a bearer token with write scope (`pedigree token add --scope write`; clients send it from PEDIGREE_TOKEN) unless --allow-anonymous-write. A wrong token is refused (401) on every route; a read token pushing gets 403.',
    'It listens on 127.0.0.1 unless --host says otherwise; put it behind a TLS reverse proxy to serve https. The API is described at GET /openapi.json (and in docs/openapi.json and docs/http-api.md).',
  ].join('\n\n')
  static override examples = [
    '<%= config.bin %> serve --port 8080',
    '<%= config.bin %> serve --host 0.0.0.0 --port 8080 --require-token-for-read',
    '<%= config.bin %> serve --port 0 --json   # any free port; read it from the JSON line',
    '<%= config.bin %> serve --allow-anonymous-write --max-car-body 200G',
  ]
  static override flags = {
    host: Flags.string({ description: 'address to listen on', default: '127.0.0.1' }),
    port: Flags.integer({ char: 'p', description: 'port to listen on (0: any free port)', default: 8080, min: 0, max: 65535 }),
    'allow-anonymous-write': Flags.boolean({ description: 'accept pushes without a token' }),
    'require-token-for-read': Flags.boolean({ description: 'refuse reads without a (read or write) token' }),
    'max-body': bytesFlag({ description: 'most bytes in a JSON request body (default 8M)' }),
    'max-car-body': bytesFlag({ description: 'most bytes in one push (a CAR body; default 64G)' }),
  }

  async run(): Promise<void> {
    let repo = await this.repo()
    const { startServer } = await import('../server/server.js')
    const { startStoreSocket } = await import('../server/store-socket.js')
    const { watchDaemon } = await import('../server/daemon-watch.js')
    const { DaemonStore } = await import('../store/daemon.js')
    const { isS3Url } = await import('../store/s3/url.js')
    const { Repository } = await import('../repo/repository.js')
    // Run until told to stop; then finish the requests in flight, and let the base command close the store.
    const stop = new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    let port = this.flags.port
    let taken: InstanceType<typeof Repository> | undefined
    try {
      for (;;) {
        // Local processes share the store through this server, unless a daemon already serves it
        // (then this server is one of its clients) or it is in S3 (which needs no owner).
        const client = repo.store instanceof DaemonStore ? repo.store : undefined
        const local = !client && !isS3Url(repo.location)
        const socket = local ? await startStoreSocket(repo.store, { what: 'pedigree serve' }) : undefined
        const server = await startServer(repo, {
          host: this.flags.host,
          port,
          allowAnonymousWrite: this.flags['allow-anonymous-write'],
          requireTokenForRead: this.flags['require-token-for-read'],
          maxBody: this.flags['max-body'],
          maxCarBody: this.flags['max-car-body'],
        }).catch(async (e) => {
          await socket?.close()
          throw e
        })
        if (taken) {
          if (!this.jsonEnabled()) process.stderr.write(`serving ${repo.location} itself now, at ${server.url}\n`)
        } else if (this.jsonEnabled()) {
          process.stdout.write(JSON.stringify({ url: server.url, host: server.host, port: server.port, store: repo.location, ...(socket ? { socket: socket.socketPath } : {}) }) + '\n')
        } else this.log(`serving ${repo.location} at ${server.url}${socket ? ` and to local processes on ${socket.socketPath}` : ''} (Ctrl-C to stop)`)
        port = server.port
        // A client of a daemon takes the store over when that daemon stops (else every request would fail).
        const watch = client ? watchDaemon(client) : undefined
        const why = await Promise.race([stop, ...(watch ? [watch.stopped.then(() => 'daemon stopped' as const)] : [])])
        watch?.cancel()
        await server.close()
        await socket?.close()
        if (why !== 'daemon stopped') {
          if (!this.jsonEnabled()) process.stderr.write(`stopped (${why})\n`)
          return
        }
        if (!this.jsonEnabled()) process.stderr.write(`the store daemon (pid ${client!.pid}) stopped; taking the store over (waiting for it to be free)\n`)
        const next = await Repository.open(repo.location, this.storeOptions())
        await taken?.close()
        taken = next
        repo = next
      }
    } finally {
      await taken?.close()
    }
  }
}
