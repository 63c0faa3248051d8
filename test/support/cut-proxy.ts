import { connect, createServer, type Server, type Socket } from 'node:net'

/** A TCP proxy on 127.0.0.1 in front of a real server, whose connection a test can cut. */
export interface CutProxy {
  /** `http://127.0.0.1:<port>`: use it as the endpoint. */
  endpoint: string
  /** Bytes sent upstream (client → server) so far. */
  readonly upstreamBytes: number
  /** True once the cut happened. */
  readonly cut: boolean
  close(): Promise<void>
}

/**
 * Forward connections to `target` until `cutAfter` bytes went upstream; then, in the middle of
 * whatever request is under way, destroy every connection and stop listening, as a network
 * that goes down would (later connections are refused).
 *
 * @example
 * const proxy = await cutProxy('http://127.0.0.1:7480', { cutAfter: 1 << 20 })
 */
export async function cutProxy(target: string, { cutAfter }: { cutAfter: number }): Promise<CutProxy> {
  const { hostname, port } = new URL(target)
  const sockets = new Set<Socket>()
  let upstream = 0
  let cut = false
  let server!: Server
  const cutNow = (): void => {
    if (cut) return
    cut = true
    server.close()
    for (const s of sockets) s.destroy()
  }
  server = createServer((client) => {
    if (cut) return client.destroy()
    const remote = connect(Number(port), hostname)
    sockets.add(client)
    sockets.add(remote)
    client.on('data', (chunk: Buffer) => {
      const room = cutAfter - upstream
      upstream += chunk.length
      if (room <= chunk.length) {
        if (room > 0) remote.write(chunk.subarray(0, room))
        cutNow()
        return
      }
      remote.write(chunk)
    })
    remote.on('data', (chunk: Buffer) => client.write(chunk))
    const drop = (): void => {
      client.destroy()
      remote.destroy()
      sockets.delete(client)
      sockets.delete(remote)
    }
    client.on('close', drop)
    remote.on('close', drop)
    client.on('error', drop)
    remote.on('error', drop)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port: local } = server.address() as { port: number }
  return {
    endpoint: `http://127.0.0.1:${local}`,
    get upstreamBytes() {
      return upstream
    },
    get cut() {
      return cut
    },
    async close() {
      cutNow()
    },
  }
}
