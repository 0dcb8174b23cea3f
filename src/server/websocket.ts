import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { type ServerOptions, type WebSocket, WebSocketServer } from 'ws'
import { parseBatch } from './body.js'
import { closeCodeOf, Refusal } from './http-errors.js'
import type { ResolvedServerOptions } from './options.js'
import type { Relay } from './relay.js'
import type { Target } from './target.js'

/** How long a processed frame may wait for its acknowledgement: acks of a busy connection share a frame. */
const ACK_DELAY_MS = 100

/**
 * Close codes of the route besides a refusal's `4000 + status` and `ws`'s own (1002, 1007, 1009 for bad frames).
 *
 * @example
 * // A client of the WebSocket route (here with the `ws` package):
 * socket.on('close', (code) => {
 *   if (code === WS_CLOSE.unavailable) reconnectAndResend() // the frames not acknowledged yet
 *   else if (code === WS_CLOSE.replaced) console.log('another connection with our token took over')
 * })
 */
export const WS_CLOSE = {
  /** The hub failed part-way through a frame: reconnect and send the rest (the `ack` before it says how much went out). */
  unavailable: 1013,
  /** Another connection with this peer's token took over. */
  replaced: 4000,
  /**
   * The server is restarting (it drains on SIGTERM): reconnect at once, to another process. Every
   * frame it processed was acknowledged first; send again the ones that were not.
   */
  restarting: 1012,
} as const

/**
 * Server → client frames are JSON objects with a `type`:
 * `welcome`, `message` (`{ id, message }`), `reset`, `error` (`{ code, message }`),
 * `restart` (`{ retry }`: the server drains; reconnect within `retry` ms, then close 1012),
 * `ack` (`{ n, published? }`: the first `n` frames of this connection are done with; `published`
 * messages of frame `n` went out before the hub failed, and the connection closes with 1013 so the
 * client sends the rest again).
 * Client → server frames are signaling messages (or arrays of them).
 */
export class WebSocketRoute {
  readonly #server: WebSocketServer
  readonly #relay: Relay
  readonly #options: ResolvedServerOptions
  /** Served sockets, each with the way to end it for a restart once its frames in flight are done. */
  readonly #served = new Map<WebSocket, () => void>()
  #draining = false

  constructor(relay: Relay, options: ResolvedServerOptions) {
    this.#relay = relay
    this.#options = options
    // maxPayload: ws closes an oversized frame's socket with 1009 before buffering it.
    // closeTimeout: a client that never answers our close frame (a refused one, say) holds its
    // socket 2 s, not ws's default 30 s — uncounted sockets would let one address hold thousands.
    // (ws 8.23 has the option; its type definitions do not know it yet.)
    const settings: ServerOptions & { closeTimeout: number } = {
      noServer: true,
      maxPayload: options.maxBodyBytes,
      perMessageDeflate: false,
      closeTimeout: 2000,
    }
    this.#server = new WebSocketServer(settings)
  }

  /** Admits and upgrades; `leave` is called when the socket ends. Throws a {@link Refusal} (see {@link refuse}). */
  async upgrade(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: Target,
    address: string,
    leave: () => void,
  ): Promise<void> {
    await this.#relay.admit(request, target, address)
    // The claim is released when the socket ends; a handshake that never completes (the client
    // went away, or ws refused a bad key) must release it too, or the id and its seat stay taken.
    let upgraded = false
    const abandon = () => {
      if (upgraded) return
      this.#relay.release(target)
      leave()
    }
    if (socket.destroyed) return abandon()
    socket.once('close', abandon)
    this.#server.handleUpgrade(request, socket, head, (ws) => {
      upgraded = true
      ws.on('close', leave)
      this.#serve(ws, target, address).catch(() => ws.terminate())
    })
  }

  /**
   * Refuses an upgrade by accepting it and closing at once with `4000 + status`
   * and the refusal's code as the reason: a browser's WebSocket never exposes
   * the HTTP status of a refused upgrade, so an HTTP answer would reach the app
   * as a nameless error.
   */
  refuse(request: IncomingMessage, socket: Duplex, head: Buffer, refusal: Refusal, leave = () => {}): void {
    if (socket.destroyed) {
      leave()
      return
    }
    // Counted until the socket is gone (a bad handshake that ws refuses ends it too).
    socket.once('close', leave)
    this.#server.handleUpgrade(request, socket, head, (ws) => {
      ws.on('error', () => {})
      ws.close(closeCodeOf(refusal.code), refusal.code)
    })
  }

  /** Sockets served now. */
  get size(): number {
    return this.#served.size
  }

  close(): void {
    for (const client of this.#server.clients) client.terminate()
    this.#server.close()
  }

  /**
   * Ends every socket for a restart: each takes no new frame, finishes the ones under way,
   * acknowledges them all and closes with 1012. Resolves when every socket is gone.
   */
  async drain(): Promise<void> {
    this.#draining = true
    const gone = [...this.#server.clients].map((ws) => new Promise((done) => ws.once('close', done)))
    for (const restart of this.#served.values()) restart()
    for (const ws of this.#server.clients) if (!this.#served.has(ws)) ws.close(WS_CLOSE.restarting, 'server restarting')
    await Promise.all(gone)
  }

  async #serve(ws: WebSocket, target: Target, address: string): Promise<void> {
    // Sent as a Buffer marked as text: ws then knows the length without measuring the string again.
    const send = (frame: string) => {
      if (ws.readyState !== ws.OPEN) return
      ws.send(Buffer.from(frame), { binary: false })
      // A client that stops reading must not make this process hold its events forever (a close
      // frame would queue behind what it does not read: the socket goes at once).
      if (ws.bufferedAmount > this.#options.maxBufferedBytes) ws.terminate()
    }
    // A protocol violation (bad frame, invalid UTF-8, oversized payload…) makes `ws` close that
    // socket with the matching code (1002, 1007, 1009) and then emit 'error': unheard, it would
    // end the process and every other client with it.
    ws.on('error', () => {})
    send(JSON.stringify({ type: 'welcome', peer: target.peer }))
    let alive = true
    ws.on('pong', () => {
      alive = true
    })
    const heartbeat = setInterval(() => {
      // No pong since the last ping: the peer is gone without closing (a pulled cable).
      if (!alive) return ws.terminate()
      alive = false
      ws.ping()
    }, this.#options.heartbeatMs)
    let chain = Promise.resolve()
    let done = 0
    let broken = false
    let ackTimer: ReturnType<typeof setTimeout> | undefined
    const ack = () => {
      clearTimeout(ackTimer)
      ackTimer = undefined
      send(`{"type":"ack","n":${done}}`)
    }
    /** A frame is done with: acknowledged soon, or, if the hub failed part-way, the connection ends. */
    const settle = (published: number | undefined) => {
      if (published === undefined) {
        done++
        ackTimer ??= setTimeout(ack, ACK_DELAY_MS)
        return
      }
      broken = true
      clearTimeout(ackTimer)
      send(`{"type":"ack","n":${done},"published":${published}}`)
      ws.close(WS_CLOSE.unavailable, 'signaling hub unavailable; try again')
    }
    let restarting = false
    ws.on('message', (data, isBinary) => {
      // A frame after the restart began is left unacknowledged: the client sends it again elsewhere.
      if (restarting) return
      // Publish in arrival order, one frame after the other; nothing after a frame the hub failed.
      const text = isBinary ? undefined : data.toString()
      chain = chain.then(() => (broken ? undefined : this.#receive(ws, target, address, text, settle)))
    })
    const restart = () => {
      restarting = true
      chain.then(() => {
        if (!broken) ack()
        // How long the client may wait before reconnecting: clients of a process spread out over it.
        send(`{"type":"restart","retry":${this.#options.retryMs}}`)
        ws.close(WS_CLOSE.restarting, 'server restarting')
      })
    }
    this.#served.set(ws, restart)
    // Before the await: if the hub fails the subscription, the socket is terminated and the timers must go.
    ws.on('close', () => {
      this.#served.delete(ws)
      clearInterval(heartbeat)
      clearTimeout(ackTimer)
    })
    if (this.#draining) restart()
    const stop = await this.#relay.subscribe(target, {
      // Event ids are [A-Za-z0-9_-] (hub ids): no escaping needed.
      send: (event) => send(`{"type":"message","id":"${event.id}","message":${event.data}}`),
      reset: () => send('{"type":"reset"}'),
      close: () => ws.close(WS_CLOSE.replaced, 'replaced'),
    })
    if (ws.readyState !== ws.OPEN) return stop()
    const observers = this.#relay.observers
    observers.emit('connection', 'websocket', true)
    ws.on('close', () => {
      stop()
      observers.emit('connection', 'websocket', false)
    })
  }

  /** Publishes one frame, then settles it with how much of it went out if the hub failed (undefined otherwise). */
  async #receive(
    ws: WebSocket,
    target: Target,
    address: string,
    text: string | undefined,
    settle: (published: number | undefined) => void,
  ): Promise<void> {
    try {
      if (text === undefined) throw new Refusal('bad-request', 'Send text frames of JSON')
      const messages = parseBatch(text, this.#options.maxBatch)
      await this.#relay.publish(target.room, target.peer, messages)
    } catch (error) {
      const refusal = error instanceof Refusal ? error : new Refusal('unavailable', 'Could not publish; try again')
      if (refusal.code === 'unavailable') return settle(refusal.published)
      this.#relay.observers.emit('refused', { code: refusal.code, route: 'websocket', address, message: refusal.message })
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'error', code: refusal.code, message: refusal.message }))
    }
    settle(undefined)
  }
}
