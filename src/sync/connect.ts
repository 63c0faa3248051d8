import type { OpenOptions, Repository } from '../repo/repository.js'
import { openTransport } from './open-transport.js'
import { getRemote } from './remote.js'
import { CountingTransport } from './stats.js'
import type { Transport } from './transport.js'

/** Options every verb that talks to a remote accepts. */
export interface ConnectOptions {
  /** Name of the remote in the store's config (default `origin`). */
  remote?: string
  /** Use this transport instead of opening the remote's URL (tests; the caller closes it). */
  transport?: Transport
  /** How to open a store on a path: lock wait and the message while waiting. */
  open?: OpenOptions
}

export interface Connection {
  remote: string
  url: string
  transport: CountingTransport
  close(): Promise<void>
}

/** Look the remote up and open (or wrap) its transport, counting round trips. */
export async function connect(repo: Repository, { remote = 'origin', transport, open }: ConnectOptions): Promise<Connection> {
  const config = await getRemote(repo, remote)
  const inner = transport ?? (await openTransport(config.url, { open, local: repo.location }))
  return {
    remote,
    url: config.url,
    transport: new CountingTransport(inner),
    close: () => (transport ? Promise.resolve() : inner.close()),
  }
}
