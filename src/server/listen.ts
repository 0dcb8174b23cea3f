import type { Server } from 'node:http'

/**
 * Listens on `host:port` (0 picks a free port); resolves with the port, rejects with the listen error (e.g. EADDRINUSE).
 *
 * @example
 * const port = await listen(http.createServer(handler), 0, '127.0.0.1') // 0: a free port
 * console.log(`listening on http://127.0.0.1:${port}/`)
 */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      const address = server.address()
      resolve(typeof address === 'object' && address ? address.port : port)
    })
  })
}
