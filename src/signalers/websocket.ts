import { PolitelyError } from '../errors'
import type { SignalMessage } from '../protocol'
import { defaultReconnectDelay, type ReconnectDelay, randomToken } from './backoff'
import type { Signaler, SignalerEvents } from './signaler'

/** Options of {@link WebSocketSignaler}. */
export interface WebSocketSignalerOptions {
  /** The server's signaling URL, `ws(s)://` or `http(s)://` (rooms live under it). */
  url: string
  room: string
  /** The WebSocket constructor; the global one by default. */
  WebSocket?: typeof WebSocket
  /** Reconnect policy; jittered exponential backoff by default. */
  reconnectDelay?: ReconnectDelay
  /** Most messages held while the server cannot be reached. */
  maxQueued?: number
}

/**
 * Signaling through the reference server over one WebSocket. Reconnects with
 * backoff, resumes where it stopped (`lastEventId`), and holds outgoing
 * messages until the server has welcomed it back.
 *
 * @example
 * new WebSocketSignaler({ url: 'wss://example.com/signal', room: 'abc' })
 */
export class WebSocketSignaler implements Signaler {
  readonly #options: WebSocketSignalerOptions
  readonly #token = randomToken()
  readonly #handlers = new Set<(message: unknown) => void>()
  #queue: SignalMessage[] = []
  #socket?: WebSocket
  #peer = ''
  #events?: SignalerEvents
  #lastEventId?: string
  #attempt = 0
  #welcomed = false
  #closed = false
  #retry?: ReturnType<typeof setTimeout>

  constructor(options: WebSocketSignalerOptions) {
    if (!options?.url || !options.room) throw new PolitelyError('invalid-options', 'WebSocketSignaler needs a url and a room')
    this.#options = options
  }

  connect(peerId: string, events: SignalerEvents): Promise<void> {
    this.#peer = peerId
    this.#events = events
    return new Promise((resolve) => this.#open(resolve))
  }

  #open(welcomed?: () => void): void {
    if (this.#closed) return
    const url = new URL(
      `${this.#options.url.replace(/\/$/, '')}/${encodeURIComponent(this.#options.room)}`,
      globalThis.location?.href,
    )
    url.protocol = url.protocol.replace(/^http/, 'ws')
    url.searchParams.set('peer', this.#peer)
    url.searchParams.set('token', this.#token)
    if (this.#lastEventId) url.searchParams.set('lastEventId', this.#lastEventId)
    const Socket = this.#options.WebSocket ?? globalThis.WebSocket
    const socket = new Socket(url.href)
    this.#socket = socket
    socket.onmessage = (event) => {
      let frame: { type?: string; id?: string; message?: unknown; code?: string }
      try {
        frame = JSON.parse(String(event.data))
      } catch {
        return
      }
      if (frame.type === 'message') {
        if (typeof frame.id === 'string') this.#lastEventId = frame.id
        for (const handler of this.#handlers) handler(frame.message)
      } else if (frame.type === 'welcome') {
        this.#attempt = 0
        this.#welcomed = true
        welcomed?.()
        this.#flush()
      } else if (frame.type === 'reset') {
        this.#events?.reset()
      } else if (frame.type === 'error') {
        this.#events?.error(new PolitelyError('signaling-failed', `The server refused a message: ${frame.code}`))
      }
    }
    socket.onclose = () => {
      this.#welcomed = false
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
    this.#flush()
  }

  #flush(): void {
    const socket = this.#socket
    if (!this.#welcomed || !socket || socket.readyState !== 1) return
    // One frame for everything queued: fewer frames, and order kept.
    if (this.#queue.length) socket.send(JSON.stringify(this.#queue.splice(0, 64)))
    if (this.#queue.length) this.#flush()
  }

  subscribe(handler: (message: unknown) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  close(): void {
    this.#closed = true
    clearTimeout(this.#retry)
    const socket = this.#socket
    // Let queued frames (a last `bye`) leave before closing.
    if (socket?.readyState === 1) socket.close(1000)
    else socket?.close()
    this.#handlers.clear()
  }
}
