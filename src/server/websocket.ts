import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Entry } from './admission.js'
import { writeAscii } from './ascii.js'
import { parseBatch } from './body.js'
import { TurnCorks } from './cork.js'
import { Gathered } from './gathered.js'
import { closeCodeOf, Refusal } from './http-errors.js'
import { ByteEvent, type RoomEvent } from './hub.js'
import type { ResolvedServerOptions } from './options.js'
import type { Relay, Subscription } from './relay.js'
import { scanBatch } from './scan.js'
import type { Target } from './target.js'
import { iceServersFor } from './turn.js'
import { closeSocket, ONE_BUFFER_BELOW, PROTOCOL_CLOSE, textFrame, WebSocketConnection } from './ws-connection.js'
import { acceptHandshake, handshakeProblem, refuseHandshake } from './ws-handshake.js'

/** A `message` frame's text before its id, and between its id and the message. */
const EVENT_HEAD = Buffer.from('{"type":"message","id":"')
const EVENT_MIDDLE = Buffer.from('","message":')

/** How long a processed frame may wait for its acknowledgement: acks of a busy connection share a frame. */
const ACK_DELAY_MS = 100
const acknowledge = (client: Client) => client.ack()

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
 * One served socket: its peer, its frames in flight and their acknowledgement, its
 * subscription. It is the relay's sink for this peer, and holds no closures of its own:
 * per connection, this object and the socket are all the memory there is.
 */
class Client extends WebSocketConnection {
  /**
   * Bytes the socket had read at the last heartbeat: if none came since (not even the pong to
   * that heartbeat's ping), the client is gone. Read off the socket, so no 'pong' listener.
   */
  readAtBeat = -1
  /** Frames done with (published, or refused with an `error` frame): what the next `ack` says. */
  done = 0
  /**
   * The last frame still in flight with a hub that answers later (Redis); frames after it wait
   * their turn. Undefined while nothing waits: with the in-memory hub a frame is published before
   * the next is read, with no promise.
   */
  inFlight?: Promise<void>
  /** The hub failed part-way: nothing after that frame is published; the socket is closing with 1013. */
  broken = false
  /** A restart began (the server drains): frames that come now stay unacknowledged, to be sent elsewhere. */
  restarting = false
  /** Counted as an open connection (subscribed), so counted out once when it ends. */
  subscribed = false
  /** Frames refused since the last heartbeat: past the route's `maxRefusals`, the connection is closed. */
  refusals = 0
  /** Set once subscribed. */
  subscription?: Subscription
  /** Held back by the route's {@link TurnCorks} this turn. */
  corked = false
  /** Has frames done that the route's next round of `ack`s acknowledges. */
  ackDue = false

  constructor(
    socket: Duplex,
    readonly target: Target,
    /** Its admission: counted out when the socket ends. */
    readonly entry: Entry,
    readonly route: WebSocketRoute,
  ) {
    super(socket, route.maxPayload)
  }

  /** Sends one frame of `parts` joined (see {@link WebSocketConnection.sendText}). */
  write(...parts: (string | Uint8Array)[]): void {
    if (!this.open) return
    this.route.corks.hold(this)
    this.sendText(...parts)
  }

  /** Held back until the end of the turn ({@link TurnCorks}). */
  cork(): void {
    this.socket.cork()
  }

  /**
   * The turn's frames go out. A client that stops reading must not make this process hold its
   * events forever: if more than `maxBufferedBytes` still wait once the kernel took what it could,
   * the socket goes at once (a close frame would queue behind what it does not read). Checked
   * here, not per frame: a burst within one turn to a client that reads is no reason to cut it.
   */
  uncork(): void {
    this.socket.uncork()
    if (this.bufferedAmount > this.route.maxBufferedBytes) this.terminate()
  }

  // The relay's sink. Event ids are [A-Za-z0-9_-] (hub ids): no escaping needed.
  send(event: RoomEvent): void {
    if (!this.open) return
    // A message published as bytes (the in-memory hub) goes out as those bytes: never decoded.
    const data = event instanceof ByteEvent ? event.bytes : event.data
    const { id } = event
    const dataBytes = Buffer.byteLength(data)
    const length = EVENT_HEAD.length + id.length + EVENT_MIDDLE.length + dataBytes + 1
    if (length >= ONE_BUFFER_BELOW) {
      this.#sendParts(id, data)
      return
    }
    // The frame of every relayed message: its fixed parts copied, the id's ASCII written byte by
    // byte, the message copied or encoded once. (Each Buffer#write and Buffer.byteLength is a call
    // into C++: five of each per message, for strings mostly a few bytes long, before.)
    const frame = textFrame(length)
    let at = frame.length - length
    frame.set(EVENT_HEAD, at)
    at += EVENT_HEAD.length
    const idBytes = writeAscii(frame, id, at)
    // An id of a hub that breaks its contract (not ASCII): the general way.
    if (idBytes < 0) {
      this.#sendParts(id, data)
      return
    }
    at += idBytes
    frame.set(EVENT_MIDDLE, at)
    at += EVENT_MIDDLE.length
    if (typeof data === 'string') at += frame.write(data, at)
    else {
      frame.set(data, at)
      at += dataBytes
    }
    frame[at] = 0x7d // }
    this.route.corks.hold(this)
    this.sendFrame(frame)
  }

  /** A `message` frame written part by part (see {@link WebSocketConnection.sendText}). */
  #sendParts(id: string, data: string | Uint8Array): void {
    this.write('{"type":"message","id":"', id, '","message":', data, '}')
  }
  reset(): void {
    this.write('{"type":"reset"}')
  }
  close(): void {
    this.closeWith(WS_CLOSE.replaced, 'replaced')
  }

  receive(text: Buffer | undefined): void {
    if (this.restarting || this.broken) return
    // Published in arrival order, one frame after the other; nothing after a frame the hub failed.
    const pending = this.inFlight
      ? this.inFlight.then(() => (this.broken ? undefined : this.route.publish(this, text)))
      : this.route.publish(this, text)
    if (!pending) return
    this.inFlight = pending
    pending.then(() => {
      if (this.inFlight === pending) this.inFlight = undefined
    })
  }

  /** A frame is done with: acknowledged soon, or, if the hub failed part-way (`published` of it went out), the end. */
  settle(published?: number): void {
    if (published === undefined) {
      this.done++
      this.route.acknowledgeSoon(this)
      return
    }
    this.broken = true
    this.write(`{"type":"ack","n":${this.done},"published":${published}}`)
    this.closeWith(WS_CLOSE.unavailable, 'signaling hub unavailable; try again')
  }

  ack(): void {
    this.write(`{"type":"ack","n":${this.done}}`)
  }

  /** For a restart: the frames under way are finished and acknowledged, then the client is sent elsewhere. */
  restart(retryMs: number): void {
    this.restarting = true
    Promise.resolve(this.inFlight).then(() => {
      if (!this.broken) this.ack()
      // How long the client may wait before reconnecting: clients of a process spread out over it.
      this.write(`{"type":"restart","retry":${retryMs}}`)
      this.closeWith(WS_CLOSE.restarting, 'server restarting')
    })
  }

  closed(): void {
    this.route.forget(this)
    this.subscription?.stop()
    this.entry.leave()
    if (this.subscribed) this.route.relay.observers.emit('connection', 'websocket', false)
  }
}

/**
 * Server → client frames are JSON objects with a `type`:
 * `welcome` (`{ peer }`, and `iceServers` and `ttl` when the server offers TURN), `message` (`{ id, message }`),
 * `reset`, `error` (`{ code, message }`),
 * `restart` (`{ retry }`: the server drains; reconnect within `retry` ms, then close 1012),
 * `ack` (`{ n, published? }`: the first `n` frames of this connection are done with; `published`
 * messages of frame `n` went out before the hub failed, and the connection closes with 1013 so the
 * client sends the rest again).
 * Client → server frames are signaling messages (or arrays of them).
 *
 * One heartbeat timer and one acknowledgement timer serve every socket.
 */
export class WebSocketRoute {
  readonly relay: Relay
  readonly #options: ResolvedServerOptions
  /** Served sockets. */
  readonly #served = new Set<Client>()
  /** Sockets answered only to be closed with a refusal. */
  readonly #refusing = new Set<Duplex>()
  /** Every frame written to a socket in one turn of the event loop leaves in one write. */
  readonly corks = new TurnCorks()
  /** Clients with frames done since their last `ack`. */
  readonly #acking = new Gathered<'ackDue', Client>('ackDue')
  #ackTimer?: ReturnType<typeof setTimeout>
  #heartbeat?: ReturnType<typeof setInterval>
  #draining = false
  readonly maxBufferedBytes: number
  /** Bytes a frame (a message) may have: over it, the socket closes with 1009 before the payload is kept. */
  readonly maxPayload: number
  /** Frames one connection may have refused between two heartbeats (as many as it may send at once, `rateBurst`). */
  readonly maxRefusals: number

  constructor(relay: Relay, options: ResolvedServerOptions) {
    this.relay = relay
    this.#options = options
    this.maxBufferedBytes = options.maxBufferedBytes
    this.maxPayload = options.maxBodyBytes
    this.maxRefusals = options.rateBurst
  }

  /** Admits and upgrades; `entry` leaves when the socket ends. Throws a {@link Refusal} (see {@link refuse}). */
  async upgrade(request: IncomingMessage, socket: Duplex, head: Buffer, target: Target, entry: Entry): Promise<void> {
    // A request that is no handshake claims nothing: refuse() answers it with its HTTP status.
    if (handshakeProblem(request)) throw new Refusal('bad-request', 'Not a WebSocket handshake')
    await this.relay.admit(request, target, entry.address)
    // Gone while it was admitted: the claim and the count go now, as nothing will end them later.
    if (socket.destroyed) {
      this.relay.release(target)
      entry.leave()
      return
    }
    acceptHandshake(socket, request)
    const client = new Client(socket, target, entry, this)
    this.#serve(client, head).catch(() => client.terminate())
  }

  /**
   * Refuses an upgrade by accepting it and closing at once with `4000 + status`
   * and the refusal's code as the reason: a browser's WebSocket never exposes
   * the HTTP status of a refused upgrade, so an HTTP answer would reach the app
   * as a nameless error. A request that is no WebSocket handshake gets its HTTP status.
   */
  refuse(request: IncomingMessage, socket: Duplex, _head: Buffer, refusal: Refusal, entry?: Entry): void {
    if (socket.destroyed) {
      entry?.leave()
      return
    }
    // Counted until the socket is gone.
    if (entry) socket.once('close', () => entry.leave())
    const problem = handshakeProblem(request)
    if (problem) {
      refuseHandshake(socket, problem)
      return
    }
    acceptHandshake(socket, request)
    this.#refusing.add(socket)
    socket.once('close', () => this.#refusing.delete(socket))
    // What it sends is read and dropped, so its end is seen.
    socket.resume()
    closeSocket(socket, closeCodeOf(refusal.code), refusal.code)
  }

  /** Sockets served now. */
  get size(): number {
    return this.#served.size
  }

  close(): void {
    clearInterval(this.#heartbeat)
    clearTimeout(this.#ackTimer)
    this.#acking.clear()
    for (const client of this.#served) client.terminate()
    for (const socket of this.#refusing) socket.destroy()
  }

  /**
   * Ends every socket for a restart: each takes no new frame, finishes the ones under way,
   * acknowledges them all and closes with 1012. Resolves when every socket is gone.
   */
  async drain(): Promise<void> {
    this.#draining = true
    const sockets = [...[...this.#served].map((client) => client.socket), ...this.#refusing]
    const gone = sockets.filter((socket) => !socket.destroyed).map((socket) => new Promise((done) => socket.once('close', done)))
    for (const client of this.#served) client.restart(this.#options.retryMs)
    await Promise.all(gone)
  }

  /** `client` has frames done: they are acknowledged within {@link ACK_DELAY_MS}, with everyone else's. */
  acknowledgeSoon(client: Client): void {
    this.#acking.add(client)
    this.#ackTimer ??= setTimeout(this.#acknowledge, ACK_DELAY_MS)
  }

  readonly #acknowledge = () => {
    this.#ackTimer = undefined
    this.#acking.take(acknowledge)
  }

  /** `client`'s socket ended. */
  forget(client: Client): void {
    this.#served.delete(client)
    // Still in #acking if it had frames done: its `ack` then writes nothing (the socket is closed).
    if (!this.#served.size) {
      clearInterval(this.#heartbeat)
      this.#heartbeat = undefined
    }
  }

  /** One ping for every socket per `heartbeatMs`; a socket that did not answer the last one is gone (a pulled cable). */
  #beat(): void {
    for (const client of this.#served) {
      // NaN (a stream that counts no bytes) never equals itself: such a socket is never cut.
      const read = (client.socket as Partial<Socket>).bytesRead ?? Number.NaN
      client.controlFrames = 0
      client.refusals = 0
      if (read === client.readAtBeat) client.terminate()
      else {
        client.readAtBeat = read
        client.ping()
      }
    }
  }

  async #serve(client: Client, head: Buffer): Promise<void> {
    const { target } = client
    this.#served.add(client)
    this.#heartbeat ??= setInterval(() => this.#beat(), this.#options.heartbeatMs)
    const { turn } = this.#options
    client.write(JSON.stringify({ type: 'welcome', peer: target.peer, ...(turn && iceServersFor(turn, target.peer)) }))
    // Reading starts now, before the await: if the hub fails the subscription, the socket is cut and its state must go.
    client.start(head)
    if (this.#draining) client.restart(this.#options.retryMs)
    const subscription = await this.relay.subscribe(target, client)
    if (!client.open) return subscription.stop()
    client.subscription = subscription
    client.subscribed = true
    this.relay.observers.emit('connection', 'websocket', true)
  }

  /** Publishes one frame of `client`'s and settles it: at once with the in-memory hub, or returns the promise of it. */
  publish(client: Client, text: Buffer | undefined): undefined | Promise<void> {
    let published: string[] | Promise<string[]>
    try {
      if (text === undefined) throw new Refusal('bad-request', 'Send text frames of JSON')
      const { room, peer, key } = client.target
      const { maxBatch, maxMessageBytes } = this.#options
      const batch = scanBatch(text, peer, maxBatch, maxMessageBytes) ?? parseBatch(text.toString(), maxBatch)
      published = this.relay.publish(room, peer, batch, key)
    } catch (error) {
      this.#refused(client, error)
      return
    }
    if (!(published instanceof Promise)) {
      client.settle()
      return
    }
    return published.then(
      () => client.settle(),
      (error) => this.#refused(client, error),
    )
  }

  /** A frame refused: the client is told why and the frame is done with; a failing hub ends the connection. */
  #refused(client: Client, error: unknown): void {
    const refusal = error instanceof Refusal ? error : new Refusal('unavailable', 'Could not publish; try again')
    if (refusal.code === 'unavailable') {
      client.settle(refusal.published)
      return
    }
    const { code, message } = refusal
    this.relay.observers.emit('refused', { code, route: 'websocket', address: client.entry.address, message })
    client.write(JSON.stringify({ type: 'error', code, message }))
    client.settle()
    // Each refused frame costs a parse and an answer, and the rate limit counts only what it lets
    // through: a client that keeps sending what is refused is closed rather than served.
    if (++client.refusals > this.maxRefusals) client.closeWith(PROTOCOL_CLOSE.policy, 'Too many refused frames')
  }
}
