import { PolitelyError } from '../errors'
import { ServerSignaler, type ServerSignalerOptions } from './server-signaler'

/** Options of {@link SseSignaler}. */
export interface SseSignalerOptions extends ServerSignalerOptions {
  /** The EventSource constructor; the global one by default (pass the `eventsource` package in Node). */
  EventSource?: typeof EventSource
  /** The fetch function; the global one by default. */
  fetch?: typeof fetch
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
export class SseSignaler extends ServerSignaler {
  #source?: EventSource
  #subscribed = false
  /** Welcomed once: the server knows our secret, so a POST can still be accepted while the stream is down. */
  #welcomed = false
  #posting = false

  constructor(options: SseSignalerOptions) {
    super(options, 'SseSignaler')
  }

  get #options(): SseSignalerOptions {
    return this.options as SseSignalerOptions
  }

  protected open(): void {
    if (this.closed) return
    const Source = this.#options.EventSource ?? globalThis.EventSource
    const source = new Source(this.endpoint({ peer: this.peer, token: this.token, lastEventId: this.lastEventId }).href)
    this.#source = source
    source.addEventListener('welcome', () => {
      this.#subscribed = this.#welcomed = true
      this.welcome()
    })
    source.addEventListener('reset', () => this.events?.reset())
    source.onmessage = (event) => this.deliver(event.data, event.lastEventId)
    // We reconnect ourselves, with our backoff and our resume position: EventSource's own
    // retry would reuse the first URL and could not be told when to give up.
    source.onerror = () => {
      source.close()
      this.#subscribed = false
      this.reconnect()
    }
  }

  /** Posts queued messages in order, one request at a time, in batches. */
  protected async flush(): Promise<void> {
    if (this.#posting || !this.#subscribed) return
    this.#posting = true
    // One microtask first: messages sent in the same tick (a burst of candidates) share one POST.
    await null
    const post = this.#options.fetch ?? globalThis.fetch
    while (this.queue.length && this.#subscribed) {
      const batch = this.queue.slice(0, MAX_BATCH)
      const body = JSON.stringify(batch)
      let status = 0
      try {
        const response = await post(this.endpoint().href, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
          body,
          // keepalive lets a `bye` sent from pagehide outlive the page (bodies up to 64 KiB).
          keepalive: body.length < 60_000,
        })
        status = response.status
        // 503 from a failing hub: the first `published` messages of the batch went out; send only the rest.
        if (status === 503) this.queue.splice(0, Number((await response.json()).published) || 0)
      } catch {
        // Network failure: keep the batch; the stream's reconnect will bring us back here.
      }
      if (status >= 200 && status < 300) {
        this.queue.splice(0, batch.length)
      } else if (status === 400 || status === 413) {
        this.queue.splice(0, batch.length)
        this.events?.error(
          new PolitelyError('signaling-failed', `The server refused ${batch.length} message(s) (HTTP ${status})`),
        )
      } else {
        // 403 (our id binding is gone, e.g. the server restarted: the stream's reconnect renews
        // it), 429, 5xx or no answer: try again shortly, while the stream is up.
        await new Promise((resolve) => setTimeout(resolve, this.delay(2)))
      }
    }
    this.#posting = false
  }

  protected shutdown(): void {
    this.#source?.close()
    // A last `bye` must leave even if the stream is already down: Chromium fails a page's
    // EventSource before `pagehide` on a reload. keepalive lets it outlive the page.
    if (!this.#posting && this.queue.length && this.#welcomed) {
      const post = this.#options.fetch ?? globalThis.fetch
      const body = JSON.stringify(this.queue.splice(0, MAX_BATCH))
      post(this.endpoint().href, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        body,
        keepalive: body.length < 60_000,
      }).catch(() => {})
    }
  }
}
