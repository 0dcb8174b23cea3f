import { PolitelyError } from '../errors'
import type { SignalMessage } from '../protocol'
import { defaultReconnectDelay, type ReconnectDelay, randomToken } from './backoff'
import type { Signaler, SignalerEvents } from './signaler'

/** Options every adapter of the reference server takes. */
export interface ServerSignalerOptions {
  /** The server's signaling URL, e.g. `https://example.com/signal` (rooms live under it). May be relative in a page. */
  url: string
  room: string
  /** Reconnect policy; jittered exponential backoff by default. */
  reconnectDelay?: ReconnectDelay
  /** Most messages held while the server cannot be reached. */
  maxQueued?: number
}

/**
 * What the SSE and WebSocket adapters share: the peer's secret (made up
 * here, bound to the peer id by the server on first use), the resume
 * position, the outgoing queue, and reconnecting with backoff. A subclass
 * opens its transport, calls `welcome()` when the server has accepted it,
 * `deliver()` for each message, `reconnect()` when the transport drops, and
 * sends the queue in `flush()`.
 */
export abstract class ServerSignaler implements Signaler {
  protected readonly token = randomToken()
  protected readonly queue: SignalMessage[] = []
  protected readonly options: ServerSignalerOptions
  protected peer = ''
  protected events?: SignalerEvents
  protected lastEventId?: string
  protected closed = false
  readonly #handlers = new Set<(message: unknown) => void>()
  #attempt = 0
  #retry?: ReturnType<typeof setTimeout>
  #connected?: () => void

  constructor(options: ServerSignalerOptions, name: string) {
    if (!options?.url || !options.room) throw new PolitelyError('invalid-options', `${name} needs a url and a room`)
    this.options = options
  }

  connect(peerId: string, events: SignalerEvents): Promise<void> {
    this.peer = peerId
    this.events = events
    return new Promise((resolve) => {
      this.#connected = resolve
      this.open()
    })
  }

  send(message: SignalMessage): void {
    if (this.queue.length >= (this.options.maxQueued ?? 1000)) {
      this.events?.error(
        new PolitelyError('signaling-failed', 'The signaling queue is full: the server has been unreachable too long'),
      )
      return
    }
    this.queue.push(message)
    this.flush()
  }

  subscribe(handler: (message: unknown) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  close(): void {
    this.closed = true
    clearTimeout(this.#retry)
    this.#handlers.clear()
    this.shutdown()
  }

  /** Opens the transport (again). */
  protected abstract open(): void
  /** Sends what is queued, if the transport can take it. */
  protected abstract flush(): void
  /** Ends the transport for good (queued messages may still leave). */
  protected abstract shutdown(): void

  /** The server accepted us: `connect()` resolves, the backoff resets, the queue goes out. */
  protected welcome(): void {
    this.#attempt = 0
    this.#connected?.()
    this.flush()
  }

  /** Hands an incoming message to the peer and remembers where to resume. */
  protected deliver(message: unknown, id: string | undefined): void {
    if (id) this.lastEventId = id
    for (const handler of this.#handlers) handler(message)
  }

  /** The transport dropped: open it again after the policy's delay. */
  protected reconnect(): void {
    if (this.closed) return
    clearTimeout(this.#retry)
    this.#retry = setTimeout(() => this.open(), this.delay(this.#attempt++))
  }

  protected delay(attempt: number): number {
    return (this.options.reconnectDelay ?? defaultReconnectDelay)(attempt)
  }

  /** The room's URL, with `query` (undefined values left out). */
  protected endpoint(query: Record<string, string | undefined> = {}): URL {
    const url = new URL(
      `${this.options.url.replace(/\/$/, '')}/${encodeURIComponent(this.options.room)}`,
      globalThis.location?.href,
    )
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, value)
    return url
  }
}
