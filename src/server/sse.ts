import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ResolvedServerOptions } from './options.js'
import type { Relay } from './relay.js'
import type { Target } from './target.js'

/** The open event streams, each with the way to end it for a restart. */
export class EventStreams {
  readonly #open = new Map<ServerResponse, () => void>()
  #draining = false

  get size(): number {
    return this.#open.size
  }

  /** A stream opened; one that opens while draining (its admission was under way) restarts at once. */
  add(response: ServerResponse, restart: () => void): void {
    this.#open.set(response, restart)
    if (this.#draining) restart()
  }

  delete(response: ServerResponse): void {
    this.#open.delete(response)
  }

  /** Restarts every stream, now and from now on; resolves when those open now have ended. */
  async drain(): Promise<void> {
    this.#draining = true
    const ended = [...this.#open.keys()].map((response) => new Promise((done) => response.once('close', done)))
    for (const restart of this.#open.values()) restart()
    await Promise.all(ended)
  }

  destroy(): void {
    for (const response of this.#open.keys()) response.destroy()
  }
}

/**
 * Server-Sent Events: one stream per peer (a new one of the same peer ends
 * the older with a `replaced` event). Event ids are resume positions
 * (EventSource sends the last one back as `Last-Event-ID` when it
 * reconnects); `data` is always JSON the server serialized itself, so no
 * client can put a line break, and with it a forged event, into another
 * client's stream.
 */
export async function serveEvents(
  request: IncomingMessage,
  response: ServerResponse,
  target: Target,
  relay: Relay,
  options: ResolvedServerOptions,
  address: string,
  headers: Record<string, string>,
  streams: EventStreams,
): Promise<void> {
  await relay.admit(request, target, address)
  response.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    // Proxies such as nginx buffer responses unless told not to; an event stream must flow.
    'x-accel-buffering': 'no',
  })
  response.socket?.setNoDelay(true)
  let closed = false
  const write = (chunk: string) => {
    // Ended (replaced) but not yet closed: a client that stopped reading never sends the close.
    if (closed || response.writableEnded) return
    response.write(chunk)
    // A client that stops reading must not make this process hold its events forever.
    if (response.writableLength > options.maxBufferedBytes) response.destroy()
  }
  write(`retry: ${options.retryMs}\nevent: welcome\ndata: ${JSON.stringify({ peer: target.peer })}\n\n`)
  const stop = await relay.subscribe(target, {
    send: (event) => write(`id: ${event.id}\ndata: ${event.data}\n\n`),
    reset: () => write('event: reset\ndata: {}\n\n'),
    // Said before the end, so the client backs off instead of taking the id straight back.
    close: () => {
      write('event: replaced\ndata: {}\n\n')
      response.end()
    },
  })
  const heartbeat = setInterval(() => write(': ping\n\n'), options.heartbeatMs)
  relay.observers.emit('connection', 'sse', true)
  // A restart: the client reconnects within `retry` ms (to another process), resuming from its last id.
  streams.add(response, () => {
    write(`retry: ${options.retryMs}\nevent: restart\ndata: {"retry":${options.retryMs}}\n\n`)
    response.end()
  })
  const end = () => {
    if (closed) return
    closed = true
    streams.delete(response)
    clearInterval(heartbeat)
    stop()
    relay.observers.emit('connection', 'sse', false)
  }
  response.on('close', end)
  // A pipelined request's response never closes if the client leaves first: its socket does.
  request.socket.once('close', end)
  if (response.destroyed || request.socket.destroyed) end()
}
