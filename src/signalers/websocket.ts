/**
 * The reference server over one WebSocket.
 *
 * @module politely/websocket
 */
import type { SignalMessage } from '../protocol.js'
import { refusalError, ServerSignaler, type ServerSignalerOptions } from './server-signaler.js'

export type { ReconnectPolicy } from '../reconnect.js'
export type { ServerSignalerOptions, SignalerTrouble } from './server-signaler.js'

/** Close code of a socket another connection with our secret took over. */
const REPLACED = 4000
/** Close code of a server that restarts (WebSocket "service restart"). */
const RESTARTING = 1012
/** How soon to be back after a 1012 when the server said nothing more (ms). */
const RESTART_WITHIN = 1000

/**
 * Options of {@link WebSocketSignaler}.
 *
 * @example
 * // Node before 22 has no global WebSocket: pass the `ws` package's.
 * import WebSocket from 'ws'
 * const Socket = WebSocket as unknown as typeof globalThis.WebSocket // typed apart from the DOM's, same API
 * new WebSocketSignaler({ url: 'http://127.0.0.1:8787/signal', room: 'abc', WebSocket: Socket })
 */
export interface WebSocketSignalerOptions extends ServerSignalerOptions {
  /** The WebSocket constructor; the global one by default (pass the `ws` package in Node). */
  WebSocket?: typeof WebSocket
}

/**
 * Signaling through the reference server over one WebSocket. Reconnects with
 * backoff, resumes where it stopped (`lastEventId`), and holds outgoing
 * messages until the server has welcomed it back.
 *
 * @example
 * new WebSocketSignaler({ url: 'wss://example.com/signal', room: 'abc' })
 */
export class WebSocketSignaler extends ServerSignaler {
  #socket?: WebSocket
  #welcomed = false
  /** Frames sent on this socket that the server has not acknowledged: sent again if it drops. */
  #unacked: SignalMessage[][] = []
  #acked = 0

  constructor(options: WebSocketSignalerOptions) {
    super(options, 'WebSocketSignaler')
  }

  protected open(): void {
    if (this.closed) return
    const url = this.endpoint(this.subscription())
    url.protocol = url.protocol.replace(/^http/, 'ws')
    const Socket = (this.options as WebSocketSignalerOptions).WebSocket ?? globalThis.WebSocket
    const socket = new Socket(url.href)
    this.#socket = socket
    /** What the server's `restart` frame asked for, if one came before its close. */
    let restartWithin = Number.NaN
    socket.onmessage = (event) => {
      if (this.#socket !== socket) return
      let frame: {
        type?: string
        id?: string
        message?: unknown
        code?: string
        n?: number
        published?: number
        retry?: number
        iceServers?: unknown
        ttl?: unknown
      }
      try {
        frame = JSON.parse(String(event.data))
      } catch {
        return
      }
      if (frame.type === 'message') {
        this.deliver(frame.message, frame.id)
      } else if (frame.type === 'welcome') {
        this.#welcomed = true
        this.welcome(frame)
      } else if (frame.type === 'ack') {
        const n = Number(frame.n)
        // A garbled count must not drop what is still unacknowledged.
        if (!Number.isSafeInteger(n) || n < this.#acked) return
        this.#unacked.splice(0, n - this.#acked)
        this.#acked = n
        // The hub failed part-way through the next frame (the socket closes next): keep only the rest.
        this.#unacked[0]?.splice(0, Number(frame.published) || 0)
      } else if (frame.type === 'reset') {
        this.events?.reset()
      } else if (frame.type === 'restart') {
        restartWithin = Number(frame.retry)
      } else if (frame.type === 'error') {
        this.events?.error(refusalError(0, frame.code, 'a message was refused'))
      }
    }
    // A refused upgrade (e.g. 503 while the server's hub is down) ends in close too; without a listener
    // Node's `ws` would throw the error instead.
    socket.onerror = () => {}
    socket.onclose = ({ code, reason }) => {
      // A late close of a socket we already replaced says nothing about the current one.
      if (this.#socket !== socket) return
      this.#socket = undefined
      this.#welcomed = false
      // What the server may not have published goes first when we are back (at worst a duplicate the peer ignores).
      this.queue.unshift(...this.#unacked.flat())
      this.#unacked = []
      this.#acked = 0
      if (code === REPLACED) this.replaced()
      else if (code === RESTARTING) this.restarting(Number.isFinite(restartWithin) ? restartWithin : RESTART_WITHIN)
      // A refusal: 4000 + the HTTP status, the server's code as the reason.
      else if (code >= 4400 && code < 4600) this.dropped(refusalError(code - 4000, reason || undefined))
      else this.dropped()
    }
  }

  protected flush(): void {
    const socket = this.#socket
    if (!this.#welcomed || socket?.readyState !== 1) return
    // Frames of up to 64 queued messages: fewer frames, and order kept.
    while (this.queue.length) {
      const frame = this.queue.splice(0, 64)
      this.#unacked.push(frame)
      socket.send(JSON.stringify(frame))
    }
  }

  protected shutdown(): void {
    // A normal close lets queued frames (a last `bye`) leave first.
    this.#socket?.close(1000)
    this.#socket = undefined
  }
}
