import { PolitelyError } from '../errors'
import type { SignalMessage } from '../protocol'
import { defaultReconnectDelay, type ReconnectDelay, randomToken } from './backoff'
import type { Signaler, SignalerEvents } from './signaler'

/** Options of {@link SseSignaler}. */
export interface SseSignalerOptions {
  /** The server's signaling URL, e.g. `https://example.com/signal` (rooms live under it). */
  url: string
  room: string
  /** The EventSource constructor; the global one by default (pass the `eventsource` package in Node). */
  EventSource?: typeof EventSource
  /** The fetch function; the global one by default. */
  fetch?: typeof fetch
  /** Reconnect policy; jittered exponential backoff by default. */
  reconnectDelay?: ReconnectDelay
  /** Most messages held while the server cannot be reached. */
  maxQueued?: number
}

const MAX_BATCH = 64

/**
 * Signaling through the reference server: Server-Sent Events down, fetch
 * POST up. Resumes the stream where it stopped (`lastEventId`), posts in
 * order, and holds outgoing messages while the server is away.
 *
 * @example
 * new SseSignaler({ url: 'https://example.com/signal', room: 'abc' })
 */
export class SseSignaler implements Signaler {
  readonly #options: SseSignalerOptions
  readonly #token = randomToken()
  readonly #handlers = new Set<(message: unknown) => void>()
  #queue: SignalMessage[] = []
  #source?: EventSource
  #peer = ''
  #events?: SignalerEvents
  #lastEventId?: string
  #attempt = 0
  #subscribed = false
  #posting = false
  #closed = false
  #retry?: ReturnType<typeof setTimeout>

  constructor(options: SseSignalerOptions) {
    if (!options?.url || !options.room) throw new PolitelyError('invalid-options', 'SseSignaler needs a url and a room')
    this.#options = options
  }

  #endpoint(query?: Record<string, string | undefined>): string {
    const url = new URL(
      `${this.#options.url.replace(/\/$/, '')}/${encodeURIComponent(this.#options.room)}`,
      globalThis.location?.href,
    )
    for (const [key, value] of Object.entries(query ?? {})) if (value !== undefined) url.searchParams.set(key, value)
    return url.href
  }

  connect(peerId: string, events: SignalerEvents): Promise<void> {
    this.#peer = peerId
    this.#events = events
    return new Promise((resolve) => this.#open(resolve))
  }

  #open(welcomed?: () => void): void {
    if (this.#closed) return
    const Source = this.#options.EventSource ?? globalThis.EventSource
    const source = new Source(this.#endpoint({ peer: this.#peer, token: this.#token, lastEventId: this.#lastEventId }))
    this.#source = source
    source.addEventListener('welcome', () => {
      this.#attempt = 0
      this.#subscribed = true
      welcomed?.()
      void this.#post()
    })
    source.addEventListener('reset', () => this.#events?.reset())
    source.onmessage = (event) => {
      this.#lastEventId = event.lastEventId || this.#lastEventId
      for (const handler of this.#handlers) handler(event.data)
    }
    // We reconnect ourselves, with our backoff and our resume position: EventSource's own
    // retry would reuse the first URL and could not be told when to give up.
    source.onerror = () => {
      source.close()
      this.#subscribed = false
      if (this.#closed) return
      clearTimeout(this.#retry)
      this.#retry = setTimeout(
        () => this.#open(welcomed),
        (this.#options.reconnectDelay ?? defaultReconnectDelay)(this.#attempt++),
      )
    }
  }

  send(message: SignalMessage): void {
    if (this.#queue.length >= (this.#options.maxQueued ?? 1000)) {
      this.#events?.error(
        new PolitelyError('signaling-failed', 'The signaling queue is full: the server has been unreachable too long'),
      )
      return
    }
    this.#queue.push(message)
    void this.#post()
  }

  /** Posts queued messages in order, one request at a time, in batches. */
  async #post(): Promise<void> {
    if (this.#posting || !this.#subscribed) return
    this.#posting = true
    const post = this.#options.fetch ?? globalThis.fetch
    while (this.#queue.length && this.#subscribed) {
      const batch = this.#queue.slice(0, MAX_BATCH)
      const body = JSON.stringify(batch)
      let status = 0
      try {
        const response = await post(this.#endpoint(), {
          method: 'POST',
          headers: { authorization: `Bearer ${this.#token}`, 'content-type': 'application/json' },
          body,
          // keepalive lets a `bye` sent from pagehide outlive the page (bodies up to 64 KiB).
          keepalive: body.length < 60_000,
        })
        status = response.status
      } catch {
        // Network failure: keep the batch; the stream's reconnect will bring us back here.
      }
      if (status >= 200 && status < 300) {
        this.#queue.splice(0, batch.length)
      } else if (status === 400 || status === 413) {
        this.#queue.splice(0, batch.length)
        this.#events?.error(
          new PolitelyError('signaling-failed', `The server refused ${batch.length} message(s) (HTTP ${status})`),
        )
      } else {
        // 403 (our id binding is gone, e.g. the server restarted: the stream's reconnect renews
        // it), 429, 5xx or no answer: try again shortly, while the stream is up.
        await new Promise((resolve) => setTimeout(resolve, (this.#options.reconnectDelay ?? defaultReconnectDelay)(2)))
      }
    }
    this.#posting = false
  }

  subscribe(handler: (message: unknown) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  close(): void {
    this.#closed = true
    clearTimeout(this.#retry)
    this.#source?.close()
    this.#handlers.clear()
  }
}
