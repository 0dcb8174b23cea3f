import { type IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import type { Entry } from './admission.js'
import { TurnCorks } from './cork.js'
import { bareHead } from './http-errors.js'
import type { RoomEvent } from './hub.js'
import type { ResolvedServerOptions } from './options.js'
import type { Relay, Subscription } from './relay.js'
import type { Target } from './target.js'
import { iceServersFor } from './turn.js'

/**
 * Node keeps a response's header block for as long as the response lives, as it built it: a
 * string concatenated header by header, twenty-odd pieces. A held stream keeps one flat copy
 * (the same text, latin1 as Node writes it): ~0.6 KB less heap per stream.
 */
function flattenHeader(response: ServerResponse): void {
  const held = response as { _header?: unknown }
  if (typeof held._header === 'string') held._header = Buffer.from(held._header, 'latin1').toString('latin1')
}

/**
 * Where a subscription is answered: its node:http response, or the bare socket when the front
 * ({@link SignalingServer.takeEventStreams}) read its request. Both are written to alike once
 * the head is out: a socket carries the events as they are, a response in chunked framing.
 */
export type EventAnswer = ServerResponse | Socket

/** An answer once its head is written: what a {@link Stream} writes its events to. */
interface Sink {
  write(chunk: string): boolean
  end(): unknown
  cork(): void
  uncork(): void
  destroy(): unknown
  readonly writableLength: number
  readonly writableEnded: boolean
  readonly destroyed: boolean
  once(event: 'close', listener: () => void): unknown
}

/** One open event stream of an admitted peer: the relay's sink for it. */
class Stream {
  closed = false
  /** Held back by the route's {@link TurnCorks} this turn. */
  corked = false
  /** Set once subscribed. */
  subscription?: Subscription

  constructor(
    readonly response: Sink,
    readonly streams: EventStreams,
  ) {}

  write(chunk: string): void {
    const { response } = this
    // Ended (replaced) but not yet closed: a client that stopped reading never sends the close.
    if (this.closed || response.writableEnded) return
    this.streams.corks.hold(this)
    response.write(chunk)
  }

  /** Held back until the end of the turn ({@link TurnCorks}). */
  cork(): void {
    this.response.cork()
  }

  /**
   * The turn's events go out. A client that stops reading must not make this process hold its
   * events forever: if more than `maxBufferedBytes` still wait once the kernel took what it
   * could, the stream goes. Checked here, not per event: a burst within one turn is no reason.
   * (`end()` uncorks a response itself; uncorking it again does nothing.)
   */
  uncork(): void {
    const { response } = this
    response.uncork()
    if (response.writableLength > this.streams.options.maxBufferedBytes) response.destroy()
  }

  // The relay's sink.
  send(event: RoomEvent): void {
    this.write(`id: ${event.id}\ndata: ${event.data}\n\n`)
  }
  reset(): void {
    this.write('event: reset\ndata: {}\n\n')
  }
  /** Said before the end, so the client backs off instead of taking the id straight back. */
  close(): void {
    this.write('event: replaced\ndata: {}\n\n')
    this.#finish()
  }

  /** A restart: the client reconnects within `retry` ms (to another process), resuming from its last id. */
  restart(): void {
    const { retryMs } = this.streams.options
    this.write(`retry: ${retryMs}\nevent: restart\ndata: {"retry":${retryMs}}\n\n`)
    this.#finish()
  }

  /**
   * Ends the answer. A bare socket is closed too once its last bytes are out: node:http's sockets
   * are half-open, and `end()` alone would wait for the client's own end, maybe forever.
   */
  #finish(): void {
    const { response } = this
    if (response instanceof Socket) response.destroySoon()
    else response.end()
  }

  end(): void {
    if (this.closed) return
    this.closed = true
    this.streams.delete(this)
    this.subscription?.stop()
  }
}

/** The open event streams: one heartbeat timer for all of them, and the way to end them all for a restart. */
export class EventStreams {
  readonly #open = new Set<Stream>()
  #heartbeat?: ReturnType<typeof setInterval>
  #draining = false
  /** Every event written to a stream in one turn of the event loop leaves in one write. */
  readonly corks = new TurnCorks()
  readonly options: ResolvedServerOptions
  readonly #relay: Relay

  constructor(relay: Relay, options: ResolvedServerOptions) {
    this.#relay = relay
    this.options = options
  }

  get size(): number {
    return this.#open.size
  }

  /** A stream subscribed; one that does while draining (its admission was under way) restarts at once. */
  add(stream: Stream): void {
    this.#open.add(stream)
    this.#relay.observers.emit('connection', 'sse', true)
    this.#heartbeat ??= setInterval(() => {
      for (const open of this.#open) open.write(': ping\n\n')
    }, this.options.heartbeatMs)
    if (this.#draining) stream.restart()
  }

  delete(stream: Stream): void {
    if (!this.#open.delete(stream)) return
    this.#relay.observers.emit('connection', 'sse', false)
    if (!this.#open.size) {
      clearInterval(this.#heartbeat)
      this.#heartbeat = undefined
    }
  }

  /** Restarts every stream, now and from now on; resolves when those open now have ended. */
  async drain(): Promise<void> {
    this.#draining = true
    const open = [...this.#open]
    const ended = open.map(({ response }) => new Promise<void>((done) => response.once('close', done)))
    for (const stream of open) stream.restart()
    await Promise.all(ended)
  }

  destroy(): void {
    clearInterval(this.#heartbeat)
    for (const { response } of this.#open) response.destroy()
  }
}

/**
 * Server-Sent Events: one stream per peer (a new one of the same peer ends
 * the older with a `replaced` event). Event ids are resume positions
 * (EventSource sends the last one back as `Last-Event-ID` when it
 * reconnects); `data` is always JSON without a line break (the validated copy
 * the server serialized, or a sender's own text checked to hold exactly that
 * and no CR or LF), so no client can put a line break, and with it a forged
 * event, into another client's stream.
 */
export async function serveEvents(
  request: IncomingMessage,
  answer: EventAnswer,
  target: Target,
  relay: Relay,
  entry: Entry,
  headers: Record<string, string>,
  streams: EventStreams,
): Promise<void> {
  await relay.admit(request, target, entry.address)
  const head = {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    // Proxies such as nginx buffer responses unless told not to; an event stream must flow.
    'x-accel-buffering': 'no',
  }
  if (answer instanceof ServerResponse) {
    answer.writeHead(200, { ...head, connection: 'keep-alive' })
    answer.socket?.setNoDelay(true)
  } else {
    // No length and no chunked framing: the events run until the connection closes.
    answer.setNoDelay(true)
    answer.write(bareHead(200, { ...head, connection: 'close' }))
  }
  const stream = new Stream(answer, streams)
  const { retryMs, turn } = streams.options
  const welcome = { peer: target.peer, ...(turn && iceServersFor(turn, target.peer)) }
  stream.write(`retry: ${retryMs}\nevent: welcome\ndata: ${JSON.stringify(welcome)}\n\n`)
  if (answer instanceof ServerResponse) flattenHeader(answer)
  stream.subscription = await relay.subscribe(target, stream)
  // Ended when its admission leaves: when the response closes, or its socket does (a pipelined
  // request's response never closes if the client leaves first).
  entry.holder = stream
  if (answer.destroyed || request.socket.destroyed) stream.end()
  else streams.add(stream)
}
