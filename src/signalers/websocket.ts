import { PolitelyError } from '../errors'
import { ServerSignaler, type ServerSignalerOptions } from './server-signaler'

/** Options of {@link WebSocketSignaler}. */
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

  constructor(options: WebSocketSignalerOptions) {
    super(options, 'WebSocketSignaler')
  }

  protected open(): void {
    if (this.closed) return
    const url = this.endpoint({ peer: this.peer, token: this.token, lastEventId: this.lastEventId })
    url.protocol = url.protocol.replace(/^http/, 'ws')
    const Socket = (this.options as WebSocketSignalerOptions).WebSocket ?? globalThis.WebSocket
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
        this.deliver(frame.message, frame.id)
      } else if (frame.type === 'welcome') {
        this.#welcomed = true
        this.welcome()
      } else if (frame.type === 'reset') {
        this.events?.reset()
      } else if (frame.type === 'error') {
        this.events?.error(new PolitelyError('signaling-failed', `The server refused a message: ${frame.code}`))
      }
    }
    socket.onclose = () => {
      this.#welcomed = false
      this.reconnect()
    }
  }

  protected flush(): void {
    const socket = this.#socket
    if (!this.#welcomed || socket?.readyState !== 1) return
    // Frames of up to 64 queued messages: fewer frames, and order kept.
    while (this.queue.length) socket.send(JSON.stringify(this.queue.splice(0, 64)))
  }

  protected shutdown(): void {
    // A normal close lets queued frames (a last `bye`) leave first.
    this.#socket?.close(1000)
  }
}
