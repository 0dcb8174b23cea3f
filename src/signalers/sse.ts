/**
 * The reference server over Server-Sent Events down and `fetch` POST up.
 *
 * @module politely/sse
 */
import type { PolitelyError } from '../errors.js'
import { refusalError, ServerSignaler, type ServerSignalerOptions } from './server-signaler.js'

export type { ReconnectPolicy } from '../reconnect.js'
export type { ServerSignalerOptions, SignalerTrouble } from './server-signaler.js'

/**
 * Options of {@link SseSignaler}.
 *
 * @example
 * // Count the requests: any function with fetch's shape will do.
 * const counted: typeof fetch = (input, init) => (requests++, fetch(input, init))
 * const signaler = new SseSignaler({ url: 'https://example.com/signal', room: 'abc', fetch: counted })
 */
export interface SseSignalerOptions extends ServerSignalerOptions {
  /** The fetch function, for the stream and the POSTs; the global one by default (Node ≥ 18, every browser). */
  fetch?: typeof fetch
}

const MAX_BATCH = 64

/**
 * One Server-Sent Event, as {@link eventStreamParser} emits it.
 *
 * @example
 * const events: StreamEvent[] = []
 * const feed = eventStreamParser((event) => events.push(event))
 * feed('id: 7\ndata: {"kind":"bye"}\n\n') // events[0]: { event: 'message', data: '{"kind":"bye"}', id: '7' }
 */
export interface StreamEvent {
  /** Its name: the `event` field, `message` when there is none. */
  event: string
  /** Its `data` lines, joined with `\n`. */
  data: string
  /** Its `id` field, if it had one (one containing NUL is ignored). */
  id?: string
}

/**
 * Splits a Server-Sent Events stream into events, as the HTML spec's parser
 * does (fields `event`, `data`, `id`; comments and `retry` ignored). Fed
 * chunk by chunk; an event is emitted at its blank line.
 *
 * @example
 * const feed = eventStreamParser(({ event, data }) => console.log(event, data))
 * feed('event: welcome\ndata: {}\n') // nothing yet: an event ends at its blank line
 * feed('\n') // logs: welcome {}
 */
export function eventStreamParser(emit: (event: StreamEvent) => void): (chunk: string) => void {
  let rest = ''
  let event = { event: '', data: [] as string[], id: undefined as string | undefined }
  return (chunk) => {
    const lines = (rest + chunk).split(/\r\n|\r|\n/)
    // The last piece has no line end yet (a lone CR at the very end might still be a CRLF).
    rest = lines.pop() ?? ''
    for (const line of lines) {
      if (line === '') {
        if (event.data.length) emit({ event: event.event || 'message', data: event.data.join('\n'), id: event.id })
        event = { event: '', data: [], id: undefined }
        continue
      }
      const colon = line.indexOf(':')
      if (colon === 0) continue
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(line[colon + 1] === ' ' ? colon + 2 : colon + 1)
      if (field === 'event') event.event = value
      else if (field === 'data') event.data.push(value)
      else if (field === 'id' && !value.includes('\0')) event.id = value
    }
  }
}

/** What a refusal says: the error, `Retry-After` (ms), and how much of a batch went out before the hub failed. */
interface Refused {
  error: PolitelyError
  after: number
  published: number
}

/** The `{ error, message, published }` body and `Retry-After` of a refused request, read as far as they can be. */
async function refusalOf(response: Response): Promise<Refused> {
  const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined
  const code = typeof body?.error === 'string' ? body.error : undefined
  return {
    error: refusalError(response.status, code, typeof body?.message === 'string' ? body.message : ''),
    after: Number(response.headers.get('retry-after')) * 1000 || 0,
    published: Number(body?.published) || 0,
  }
}

/**
 * Signaling through the reference server: Server-Sent Events down (read with
 * fetch, so a refusal's status and code reach the app), fetch POST up.
 * Resumes the stream where it stopped, posts in order, and holds outgoing
 * messages while the server is away.
 *
 * @example
 * new SseSignaler({ url: 'https://example.com/signal', room: 'abc' })
 */
export class SseSignaler extends ServerSignaler {
  /** Ends the current stream; one stream at a time, and a late end of an older one is ignored. */
  #stream?: AbortController
  #subscribed = false
  /** Welcomed once: the server knows our secret, so a POST can still be accepted while the stream is down. */
  #welcomed = false
  #posting = false

  constructor(options: SseSignalerOptions) {
    super(options, 'SseSignaler')
  }

  protected open(): void {
    if (this.closed) return
    this.#stream?.abort()
    const stream = new AbortController()
    this.#stream = stream
    this.#read(stream).then(
      (refused) => this.#ended(stream, refused),
      () => this.#ended(stream),
    )
  }

  /** Reads one stream to its end; resolves with what the server said if it refused, or that it said we were replaced. */
  async #read(stream: AbortController): Promise<Refused | 'replaced' | number | undefined> {
    const response = await this.fetcher(this.endpoint(this.subscription()).href, {
      headers: { accept: 'text/event-stream' },
      cache: 'no-store',
      signal: stream.signal,
    })
    // 204 means "stop reconnecting" in the SSE spec: a final refusal.
    if (response.status !== 200 || !response.body) return refusalOf(response)
    let replaced = false
    /** A `restart` event: the server drains, and asks us back within this many ms. */
    let restart: number | undefined
    const feed = eventStreamParser(({ event, data, id }) => {
      if (this.#stream !== stream) return
      if (event === 'welcome') {
        this.#subscribed = this.#welcomed = true
        let body: Parameters<ServerSignaler['welcome']>[0]
        try {
          body = JSON.parse(data)
        } catch {}
        this.welcome(body)
      } else if (event === 'reset') this.events?.reset()
      else if (event === 'replaced') replaced = true
      else if (event === 'restart') restart = Number(/\d+/.exec(data)?.[0]) || 0
      else if (event === 'message') this.deliver(data, id)
    })
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    for (let part = await reader.read(); !part.done; part = await reader.read()) feed(part.value)
    return replaced ? 'replaced' : restart
  }

  #ended(stream: AbortController, refused?: Refused | 'replaced' | number): void {
    if (this.#stream !== stream) return
    this.#stream = undefined
    this.#subscribed = false
    if (refused === 'replaced') this.replaced()
    else if (typeof refused === 'number') this.restarting(refused)
    else this.dropped(refused?.error, refused?.after)
  }

  /** Posts queued messages in order, one request at a time, in batches. */
  protected async flush(): Promise<void> {
    if (this.#posting || !this.#subscribed) return
    this.#posting = true
    // One microtask first: messages sent in the same tick (a burst of candidates) share one POST.
    await null
    // Closed while posting: what is queued (a last `bye`) still goes, each batch tried once.
    while (this.queue.length && (this.#subscribed || this.closed)) {
      const batch = this.queue.slice(0, MAX_BATCH)
      let response: Response | undefined
      try {
        response = await this.#post(JSON.stringify(batch))
      } catch {
        // Network failure: keep the batch; the stream's reconnect will bring us back here.
      }
      const status = response?.status ?? 0
      if (status >= 200 && status < 300) {
        this.queue.splice(0, batch.length)
        continue
      }
      const refused = response && (await refusalOf(response))
      // 503 from a failing hub: the first `published` messages of the batch went out; send only the rest.
      if (status === 503) this.queue.splice(0, refused?.published ?? 0)
      if (status === 400 || status === 413) {
        this.queue.splice(0, batch.length)
        this.events?.error(refusalError(status, refused?.error.serverCode, `${batch.length} message(s) dropped`))
      } else if (this.closed) {
        break
      } else {
        // 403 (our id binding is gone, e.g. the server restarted: the stream's reconnect renews
        // it), 429, 5xx or no answer: try again shortly, while the stream is up.
        const wait = Math.max(refused?.after ?? 0, (this.options.reconnectDelay ?? (() => 500))(2, 'disconnected', 0) ?? 500)
        await new Promise((resolve) => setTimeout(resolve, wait))
      }
    }
    this.#posting = false
  }

  #post(body: string): Promise<Response> {
    return this.fetcher(this.endpoint().href, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body,
      // keepalive lets a `bye` sent from pagehide outlive the page (bodies up to 64 KiB).
      keepalive: body.length < 60_000,
    })
  }

  protected shutdown(): void {
    // The stream ends; a POST under way goes on to send what is queued (a last `bye`).
    this.#stream?.abort()
    this.#stream = undefined
    // A last `bye` must leave even if the stream is already down: Chromium may fail a page's
    // stream before `pagehide` on a reload. keepalive lets it outlive the page.
    if (!this.#posting && this.queue.length && this.#welcomed) {
      this.#post(JSON.stringify(this.queue.splice(0, MAX_BATCH))).catch(() => {})
    }
  }
}
