import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openLevelStore } from '../../src/store/level.js'
import { openDaemonStore } from '../../src/store/daemon.js'
import { startStoreSocket, type RunningStoreSocket } from '../../src/server/store-socket.js'
import type { Store } from '../../src/store/store.js'
import type { BackendFixture } from '../store/fixture.js'

/** A real LevelDB store, its socket server in this process, and a client Store over the socket. */
export interface ServedStore {
  dir: string
  socketPath: string
  level: Store
  server: RunningStoreSocket
  client: Store
  /** Another client, as a second process would have. */
  connect(): Promise<Store>
  stop(): Promise<void>
}

/** Serve the store in `dir` (created if needed) on a socket in a fresh temporary folder. */
export async function serveStore(dir: string): Promise<ServedStore> {
  const sockDir = await mkdtemp(join(tmpdir(), 'pdg-sock-'))
  const socketPath = join(sockDir, 's.sock')
  const level = await openLevelStore(dir, { lockTimeoutMs: 2_000 })
  const server = await startStoreSocket(level, { socketPath })
  const clients: Store[] = []
  const connect = async (): Promise<Store> => {
    const c = await openDaemonStore(socketPath, dir)
    clients.push(c)
    return c
  }
  const client = await connect()
  return {
    dir,
    socketPath,
    level,
    server,
    client,
    connect,
    async stop() {
      try {
        for (const c of clients) await c.close()
        await server.close()
      } finally {
        await level.close()
        await rm(sockDir, { recursive: true, force: true })
      }
    },
  }
}

/** A conformance-suite fixture: the client Store of a daemon over a LevelDB store in a temporary folder. */
export async function openTmpDaemon(): Promise<BackendFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'pedigree-daemon-'))
  let served: ServedStore | undefined = await serveStore(dir)
  return {
    store: served.client,
    async reopen() {
      await served?.stop()
      served = undefined
      served = await serveStore(dir)
      return served.client
    },
    async cleanup() {
      try {
        await served?.stop()
      } finally {
        served = undefined
        await rm(dir, { recursive: true, force: true })
      }
    },
  }
}
