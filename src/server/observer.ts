import type { RefusalCode } from './http-errors.js'

/**
 * A route of the server: an SSE stream, a POST publish, a WebSocket, or any
 * other request under `path` (a preflight, a wrong method).
 *
 * @example
 * const refusedPosts = (reports: RefusalReport[], route: ServerRoute = 'post') => reports.filter((r) => r.route === route).length
 */
export type ServerRoute = 'sse' | 'post' | 'websocket' | 'http'

/**
 * One refusal as the server answered it: its code, the route, and the
 * client's address (as the per-address limits count it). Never a token, a
 * message or any SDP.
 *
 * @example
 * signaling.observe({ refused: ({ code, route, address }: RefusalReport) => console.warn(`${code} on ${route} from ${address}`) })
 */
export interface RefusalReport {
  /** Why, as the client was told. */
  code: RefusalCode
  /** Where. */
  route: ServerRoute
  /** The client's address (an IPv6 one as its /64; with `trustProxy`, from `X-Forwarded-For`). */
  address: string
  /** The message the client was given (says what was wrong, never what was sent). */
  message: string
}

/**
 * What the server tells whoever watches it (metrics, logs). Every hook is
 * optional and called synchronously on the hot path, so it must be cheap; one
 * that throws is ignored (it cannot take the relay down).
 *
 * @example
 * let relayed = 0
 * const stop = signaling.observe({ relayed: () => { relayed++ } })
 * stop() // no longer told
 */
export interface ServerObserver {
  /** A subscription (an SSE stream or a WebSocket) of an admitted peer opened (`true`) or ended (`false`). */
  connection?(route: 'sse' | 'websocket', open: boolean): void
  /** A message was accepted and published to its room: `bytes` of JSON, `seconds` the hub took. */
  relayed?(bytes: number, seconds: number): void
  /** The server refused a request, a WebSocket or one frame of it. */
  refused?(report: RefusalReport): void
  /** An operation of the hub failed (Redis unreachable, say): the client was asked to retry. */
  hubError?(operation: 'admit' | 'publish' | 'subscribe', error: unknown): void
}

/** Every observer of one server, called in turn; what one throws stays with it. */
export class Observers {
  readonly #all = new Set<ServerObserver>()

  add(observer: ServerObserver): () => void {
    this.#all.add(observer)
    return () => this.#all.delete(observer)
  }

  get size(): number {
    return this.#all.size
  }

  emit<K extends keyof ServerObserver>(hook: K, ...args: Parameters<NonNullable<ServerObserver[K]>>): void {
    for (const observer of this.#all) {
      try {
        ;(observer[hook] as ((...args: unknown[]) => void) | undefined)?.(...args)
      } catch {
        // An observer's bug is its own: the relay goes on.
      }
    }
  }
}
