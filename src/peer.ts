import mitt, { type Emitter } from 'mitt'
import { closedError, OutboundQueue, type Payload } from './channels.js'
import { type ChannelSpec, Connection } from './connection.js'
import { PolitelyError } from './errors.js'
import type { CloseReason, PeerEvents, PeerState, RebuildReason, ReconnectReason } from './events.js'
import { randomId } from './ids.js'
import { type Instance, type RemoteRecord, routeSignal } from './pairing.js'
import {
  type CandidateMessage,
  DEFAULT_MAX_SIGNAL_SIZE,
  type DescriptionMessage,
  isValidPeerId,
  parseSignal,
  type SignalMessage,
} from './protocol.js'
import { backoff, type ReconnectPolicy } from './reconnect.js'
import type { Signaler } from './signalers/signaler.js'

/** Options of a named data channel. Both peers must declare the same channels. */
export type ChannelOptions = Pick<RTCDataChannelInit, 'ordered' | 'maxRetransmits' | 'maxPacketLifeTime' | 'protocol'>

/** Options of {@link PerfectNegotiationPeer}. Only `signaler` is required. */
export interface PeerOptions {
  /** How this peer finds and talks to the other one. The peer owns it and closes it on `close()`. */
  signaler: Signaler
  /** This peer's id; random by default. Must be unique per running instance: a reloaded page needs a new one. */
  id?: string
  /** Force the role; by default the peer with the lower id is polite (both sides agree without a round trip). */
  polite?: boolean
  /** Passed to `RTCPeerConnection`. Default: no ICE servers (host candidates only). */
  rtcConfig?: RTCConfiguration
  /** Named data channels besides `'default'`, negotiated (not announced), recreated on every rebuild. */
  channels?: Record<string, ChannelOptions>
  /** The RTCPeerConnection constructor; defaults to the global one. Pass one from a Node WebRTC stack to run in Node. */
  RTCPeerConnection?: typeof RTCPeerConnection
  /**
   * Who makes the first offer of a fresh connection: `'impolite'` (default)
   * avoids glare on every start; `'either'` is the bare W3C pattern, where
   * both sides may offer at once and glare is resolved (and survived).
   */
  firstOffer?: 'impolite' | 'either'
  /**
   * A paired connection that is not open (or renegotiating, or whose ICE is down) and makes no
   * progress for this long (ms) is recovered; never less than three signaling round trips
   * (measured; before any measurement, three times this): slow signaling is not a stall. Default 2500.
   */
  stallTimeout?: number
  /** While no remote has paired with us, `hello` is repeated: after 0.5, 1 and 2 s, then this often (ms). Default 3000. */
  helloInterval?: number
  /** Largest accepted signaling message, in characters of JSON. Default 131 072 (128 Ki). */
  maxSignalSize?: number
  /** Most messages a channel holds while it is not open. Default 1000. */
  maxQueuedMessages?: number
  /** Most bytes a channel holds while it is not open. Default 16 MiB. */
  maxQueuedBytes?: number
  /** Largest message `send()` accepts, in bytes. Default 256 KiB, which crosses every browser. */
  maxMessageSize?: number
  /**
   * Recovery policy ({@link ReconnectPolicy}): the wait (ms) before recovery attempt `attempt`
   * (1, 2, … since the connection was last healthy: attempt 1 restarts ICE when the channels are
   * still open, later ones rebuild), or `undefined` to give up (the peer closes with `gave-up`).
   * Default: a 1 s grace on `disconnected` (ICE often comes back by itself), at once on the first
   * other trouble, then {@link backoff}; never gives up.
   */
  reconnectDelay?: ReconnectPolicy<ReconnectReason>
}

/**
 * The defaults of the {@link PeerOptions} fields that have a fixed one, each given in its field's
 * documentation (frozen: a write would change every later peer). `DEFAULTS.reconnectDelay` is the default policy, to wrap in your own.
 *
 * @example
 * // As by default, but give up after ten attempts in a row.
 * const reconnectDelay: ReconnectPolicy<ReconnectReason> = (attempt, reason, elapsed) =>
 *   attempt > 10 ? undefined : DEFAULTS.reconnectDelay(attempt, reason, elapsed)
 */
export const DEFAULTS: Readonly<
  Required<
    Pick<
      PeerOptions,
      | 'firstOffer'
      | 'stallTimeout'
      | 'helloInterval'
      | 'maxSignalSize'
      | 'maxQueuedMessages'
      | 'maxQueuedBytes'
      | 'maxMessageSize'
      | 'reconnectDelay'
    >
  >
> = Object.freeze({
  firstOffer: 'impolite',
  stallTimeout: 2500,
  helloInterval: 3000,
  maxSignalSize: DEFAULT_MAX_SIGNAL_SIZE,
  maxQueuedMessages: 1000,
  maxQueuedBytes: 16 * 1024 * 1024,
  maxMessageSize: 256 * 1024,
  reconnectDelay: (attempt, reason) => (attempt < 2 ? (reason === 'disconnected' ? 1000 : 0) : backoff(attempt)),
})

const DEFAULT_CHANNEL = 'default'
/** How long a `bye` may trail the closing of the remote's channels and still be what ended them (ms). */
const BYE_GRACE_MS = 500
const MAX_RETIRED = 32

/**
 * A WebRTC peer that negotiates without glare and comes back by itself.
 *
 * @example
 * const peer = new PerfectNegotiationPeer({ signaler: new BroadcastChannelSignaler({ room: 'demo' }) })
 * peer.on('open', () => peer.send('hello'))
 * peer.on('message', ({ data }) => console.log(data))
 * await peer.start()
 */
export class PerfectNegotiationPeer {
  /** This peer's id, as the remote sees it in `from`. */
  readonly id: string
  readonly #options: Required<PeerOptions> & typeof DEFAULTS
  readonly #emitter: Emitter<PeerEvents> = mitt<PeerEvents>()
  readonly #specs: ChannelSpec[]
  readonly #queues = new Map<string, OutboundQueue>()
  readonly #tracks: Array<{ track: MediaStreamTrack; streams: MediaStream[] }> = []
  readonly #retired: Instance[] = []
  /** When this instance started: a later start replaces an earlier one on the remote side. */
  readonly #since = Date.now()
  #current?: Connection
  #sessions = 0
  /** Recovery attempts since the connection was last healthy, and when the first of them began. */
  #attempts = 0
  #troubleSince = 0
  #retry?: ReturnType<typeof setTimeout>
  /** The connection whose channels closed under us, while we wait a moment for the remote's `bye`. */
  #lost?: Connection
  #remote?: RemoteRecord
  #currentState: PeerState = 'idle'
  #starting?: Promise<void>
  #cleanup: Array<() => void> = []
  /** The signaling round trip (ms): the largest recent sample, slowly forgotten. */
  #rtt?: number
  /** The signaler says it is down. */
  #offline = false
  /** When our last hello left (its reply is a round-trip sample). */
  #helloAt = 0

  constructor(options: PeerOptions) {
    // An option given as `undefined` keeps its default (a spread would let it erase the default).
    const merged: Record<string, unknown> = { ...DEFAULTS, RTCPeerConnection: globalThis.RTCPeerConnection, channels: {} }
    for (const [key, value] of Object.entries(options ?? {})) if (value !== undefined) merged[key] = value
    const resolved = merged as unknown as Required<PeerOptions> & typeof DEFAULTS
    const { channels } = resolved
    this.#options = resolved
    this.id = options?.id ?? randomId()
    if (
      !options?.signaler ||
      typeof resolved.RTCPeerConnection !== 'function' ||
      !isValidPeerId(this.id) ||
      DEFAULT_CHANNEL in channels
    ) {
      throw new PolitelyError(
        'invalid-options',
        'Needs signaler, RTCPeerConnection, id of 1-64 [\\w.:~-], no channel named default',
      )
    }
    this.#specs = [DEFAULT_CHANNEL, ...Object.keys(channels).sort()].map((name, id) => ({ name, id, init: channels[name] ?? {} }))
    for (const { name } of this.#specs) {
      this.#queues.set(name, new OutboundQueue(resolved, (error) => this.#emitter.emit('error', error)))
    }
  }

  /** Where the peer is in its life. */
  get state(): PeerState {
    return this.#currentState
  }

  /** Id of the paired remote peer, if any. */
  get remoteId(): string | undefined {
    return this.#current?.paired !== undefined ? this.#remote?.id : undefined
  }

  /** The current RTCPeerConnection (replaced on every rebuild), for stats and advanced use. */
  get connection(): RTCPeerConnection | undefined {
    return this.#current?.pc
  }

  /**
   * Subscribes to an event; returns the unsubscribe function. A handler
   * that throws does not disturb the peer or the other handlers.
   *
   * @example
   * const off = peer.on('message', ({ data, channel }) => console.log(channel, data))
   */
  on<K extends keyof PeerEvents>(type: K, handler: (event: PeerEvents[K]) => void): () => void {
    const guarded = (event: PeerEvents[K]) => {
      try {
        handler(event)
      } catch (error) {
        setTimeout(() => {
          throw error
        })
      }
    }
    this.#emitter.on(type, guarded)
    return () => this.#emitter.off(type, guarded)
  }

  /**
   * Connects the signaler and announces this peer; negotiation starts when a
   * remote answers. Resolves once signaling is up, not when the remote is
   * connected: listen to `open` for that.
   */
  start(): Promise<void> {
    if (this.#currentState === 'closed') return Promise.reject(closedError())
    // A start whose signaler failed to connect may be tried again.
    this.#starting ??= this.#run().catch((error) => {
      this.#starting = undefined
      throw error
    })
    return this.#starting
  }

  /**
   * Sends a message on a channel (`'default'` unless named). Before the
   * channel is open (or while it reconnects) the message waits in a bounded
   * queue. Throws a `PolitelyError` (`queue-full`, `message-too-large`,
   * `unknown-channel`, `closed`) rather than dropping it. The promise
   * resolves when the message is handed to the data channel below its
   * high-water mark (await it for backpressure), and rejects (`closed`) if
   * the peer closes first; awaiting it is optional.
   *
   * @example
   * peer.send(JSON.stringify({ x: 1 }))
   * for (const chunk of chunks) await peer.send(chunk, 'files')
   */
  send(data: Payload, channel: string = DEFAULT_CHANNEL): Promise<void> {
    if (this.#currentState === 'closed') throw closedError()
    const queue = this.#queues.get(channel)
    if (!queue) throw new PolitelyError('unknown-channel', `No channel "${channel}"`)
    return queue.push(data)
  }

  /** Sends a media track to the remote, now and after every rebuild; renegotiates glare-free. */
  addTrack(track: MediaStreamTrack, ...streams: MediaStream[]): void {
    this.#tracks.push({ track, streams })
    this.#current?.pc.addTrack(track, ...streams)
  }

  /** Says `bye`, closes the connection and the signaler. Final. */
  close(): void {
    this.#end('local-close')
  }

  #end(reason: CloseReason): void {
    if (this.#currentState === 'closed') return
    // To the whole room: a peer waiting for a seat, or one that paired with us from a replayed
    // hello, must learn we left as well as our remote.
    if (this.#current) this.#signal({ kind: 'bye' })
    this.#dispose(reason)
    for (const undo of this.#cleanup) undo()
    for (const queue of this.#queues.values()) queue.close()
    this.#options.signaler.close()
    this.#setState('closed')
  }

  async #run(): Promise<void> {
    const { signaler, helloInterval } = this.#options
    // Once, even if start() is called again after a refusal (room-full, forbidden, …) made it reject.
    if (!this.#current) {
      this.#cleanup.push(signaler.subscribe((raw) => this.#receive(raw)))
      this.#current = this.#build()
    }
    await signaler.connect(this.id, {
      error: (error) => this.#emitter.emit('error', error),
      // Messages may have been lost while signaling was down: tell the remote our session again.
      reset: () => this.#hello(),
      online: (up) => {
        this.#offline = !up
        // Down: an open connection's renegotiation waits. Up: its watch starts again, in full.
        this.#current?.progress()
      },
    })
    if (this.#currentState === 'closed') return
    this.#setState('waiting')
    this.#hello()
    let timer: ReturnType<typeof setTimeout>
    // Our announcement may have gone unanswered (a lost hello or reply): repeat it, to the room —
    // the remote we know may be gone without a word, and another peer waiting for us. Soon at
    // first (a lost one costs half a second, not `helloInterval`), then every `helloInterval`.
    const repeat = (wait: number) => {
      timer = setTimeout(() => {
        if (this.#current?.paired === undefined) this.#hello()
        repeat(Math.min(wait * 2, helloInterval))
      }, wait)
    }
    repeat(Math.min(500, helloInterval))
    this.#cleanup.push(() => clearTimeout(timer))
    const onPageHide = () => this.close()
    globalThis.addEventListener?.('pagehide', onPageHide)
    this.#cleanup.push(() => globalThis.removeEventListener?.('pagehide', onPageHide))
  }

  #receive(raw: unknown): void {
    const connection = this.#current
    if (!connection) return
    let message: SignalMessage
    try {
      message = parseSignal(raw, this.#options.maxSignalSize)
    } catch (error) {
      this.#emitter.emit('error', error as PolitelyError)
      return
    }
    const retired = this.#retired
    const { session, paired } = connection
    const route = routeSignal({ id: this.id, session, paired, open: connection.isOpen, remote: this.#remote, retired }, message)
    if (route.drop) {
      if (route.drop !== 'not-for-me') this.#emitter.emit('dropped', { code: route.drop, kind: message.kind })
      return
    }
    this.#emitter.emit('signal', { direction: 'in', message })
    // A hello that answers ours (it names our session): a round trip.
    if (message.kind === 'hello' && message.toSession === session && this.#helloAt) {
      this.#sample(Date.now() - this.#helloAt)
      this.#helloAt = 0
    }
    if (route.retire) {
      retired.push(route.retire)
      if (retired.length > MAX_RETIRED) retired.shift()
      this.#remote = undefined
    }
    if (route.rebuild) this.#rebuild(route.rebuild)
    if (route.remote) this.#remote = route.remote
    if (route.pair) this.#pair(route.pair, message.kind === 'hello' ? message.offer : undefined)
    if (route.deliver) this.#current?.deliver(message as DescriptionMessage | CandidateMessage)
    // The remote is alive and working on it: on slow signaling, that is all the progress there is.
    this.#current?.progress()
    if (route.reply) this.#hello(message.from)
  }

  #pair(session: number, offer?: string): void {
    const connection = this.#current
    const id = this.#remote?.id
    if (!connection || !id) return
    connection.pair(session, this.#options.polite ?? this.id < id, this.#options.firstOffer === 'impolite', offer)
    this.#emitter.emit('remote', { id, session })
    this.#setState('connecting')
  }

  #build(): Connection {
    const session = ++this.#sessions
    const connection: Connection = new Connection(
      {
        ...this.#options,
        session,
        // Each attempt in a row doubles the wait (up to 16×): signaling slower than the timeout must still get through.
        stallTimeout: this.#options.stallTimeout * 2 ** Math.min(this.#attempts, 4),
        // Nothing measured yet: the path may be slow (a fast one gives a sample within the first hellos).
        rtt: () => this.#rtt ?? this.#options.stallTimeout,
        offline: () => this.#offline,
        channels: this.#specs,
        queues: this.#queues,
        tracks: this.#tracks,
      },
      {
        signal: (body) => this.#signal({ ...body, toSession: connection.paired }, this.#remote?.id, session),
        open: () => {
          this.#setState('connected')
          this.#emitter.emit('open', { remoteId: this.#remote?.id ?? '' })
          this.#healthy()
        },
        lost: () => {
          this.#setState('connecting')
          // A remote that closes sends `bye`, which usually lands a moment after its channels
          // closed under us: wait for it, so that is reported once, as `remote-left`, and not recovered.
          this.#lost = connection
          setTimeout(() => {
            if (this.#current !== connection) return
            this.#lost = undefined
            this.#emitter.emit('close', { reason: 'connection-lost' })
            this.#recover('connection-lost', connection)
          }, BYE_GRACE_MS)
        },
        recover: (reason) => this.#recover(reason, connection),
        healthy: () => this.#healthy(),
        sample: (ms) => this.#sample(ms),
        emit: this.#emitter.emit,
      },
    )
    return connection
  }

  /**
   * One recovery attempt, after the policy's delay: an ICE restart when ICE
   * failed under open channels (first attempt), else a rebuild. One at a time.
   */
  #recover(reason: ReconnectReason, connection: Connection): void {
    // One attempt at a time; and ICE going `disconnected` again while a recovery is under way is
    // the stall watchdog's to judge (an ICE restart gets its time).
    if (this.#current !== connection || this.#retry || (reason === 'disconnected' && this.#attempts)) return
    const attempt = ++this.#attempts
    if (attempt < 2) this.#troubleSince = Date.now()
    const delay = this.#options.reconnectDelay(attempt, reason, Date.now() - this.#troubleSince)
    if (delay === undefined) {
      this.#end('gave-up')
      return
    }
    this.#emitter.emit('reconnecting', { reason, attempt })
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      if (this.#current !== connection) return
      // ICE trouble on open channels: an ICE restart keeps them (and what is in flight). A stalled
      // renegotiation is not ICE's doing: rebuild.
      if (attempt < 2 && connection.isOpen && reason !== 'stalled') return connection.pc.restartIce()
      this.#rebuild(reason)
      // Broadcast: if the remote is gone for good (a crash, a reload that said no bye), a newer
      // instance waiting for the seat answers too, and takes it.
      this.#hello()
    }, delay)
  }

  /** The connection works (again): a recovery under way ends. */
  #healthy(): void {
    this.#cancelRetry()
    if (this.#attempts) this.#emitter.emit('reconnected', { attempts: this.#attempts })
    this.#attempts = 0
  }

  #cancelRetry(): void {
    clearTimeout(this.#retry)
    this.#retry = undefined
  }

  #rebuild(reason: RebuildReason): void {
    const old = this.#current
    if (old?.paired !== undefined && this.#remote) this.#remote.used = Math.max(this.#remote.used, old.paired)
    this.#dispose(reason)
    this.#current = this.#build()
    this.#emitter.emit('rebuild', { reason, session: this.#current.session })
    this.#setState('waiting')
  }

  /** Closes the current connection, reporting `close` if its channels were open. */
  #dispose(reason: CloseReason): void {
    const connection = this.#current
    this.#current = undefined
    this.#cancelRetry()
    connection?.close()
    if (connection?.isOpen || connection === this.#lost || reason === 'gave-up') this.#emitter.emit('close', { reason })
  }

  /** A signaling round-trip sample (ms); a stale one (a reply to an old hello) counts 20 s at most. */
  #sample(ms: number): void {
    this.#rtt = Math.max(Math.min(ms, 2e4), (this.#rtt ?? 0) * 0.8)
  }

  #hello(to?: string): void {
    const connection = this.#current
    // Once the connection's offer made in advance is ready: unpaired, it goes along.
    void connection?.offer.then((offer) => {
      if (this.#current !== connection) return
      const { paired } = connection
      this.#helloAt = Date.now()
      // Fields left undefined vanish in JSON: a broadcast hello has neither `to` nor `toSession`.
      this.#signal({ kind: 'hello', toSession: to && paired, since: this.#since, offer: paired ? undefined : offer }, to)
    })
  }

  #signal(body: object, to?: string, session = this.#current?.session): void {
    const message = { ...body, from: this.id, session, to } as SignalMessage
    try {
      this.#options.signaler.send(message)
      this.#emitter.emit('signal', { direction: 'out', message })
    } catch (cause) {
      this.#emitter.emit('error', new PolitelyError('signaling-failed', `Sending a ${message.kind} failed`, { cause }))
    }
  }

  #setState(state: PeerState): void {
    const previous = this.#currentState
    if (previous === state || previous === 'closed') return
    this.#currentState = state
    this.#emitter.emit('state', { state, previous })
  }
}
