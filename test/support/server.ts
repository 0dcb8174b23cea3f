import { WebSocket } from 'ws'
import { startSignalingServer } from '../../src/server/index'
import type { ServerOptions } from '../../src/server/options'
import { SseSignaler } from '../../src/signalers/sse'
import { WebSocketSignaler } from '../../src/signalers/websocket'

/** The reference server on 127.0.0.1, on a free port (or the given one, to restart it in place). */
export function startServer(options: ServerOptions & { port?: number } = {}) {
  return startSignalingServer({ port: 0, ...options })
}

/** Fast retries: tests wait on conditions, and a server restart should be noticed at once. */
const quick = () => 50

/** Both network adapters, wired to Node's implementations of their transports. */
export const ADAPTERS = [
  {
    name: 'sse',
    make: (url: string, room: string) => new SseSignaler({ url, room, reconnectDelay: quick }),
  },
  {
    name: 'websocket',
    make: (url: string, room: string) =>
      new WebSocketSignaler({ url, room, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket, reconnectDelay: quick }),
  },
]
