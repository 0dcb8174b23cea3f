import mitt, { type Emitter } from 'mitt'
import { closedError, type Payload } from './channels.js'
import { PolitelyError } from './errors.js'
import type { CloseReason, PeerEvents, PeerState, ReconnectReason } from './events.js'
import {
  channelSpecs,
  DEFAULT_CHANNEL,
  onPageHide,
  parse,
  queueOf,
  repeat,
  sendSignal,
  subscribe,
  validSetup,
  warmUp,
} from './host.js'
import { randomId } from './ids.js'
import { Link, type LinkHost } from './link.js'
import { Media } from './media.js'
import type { Instance } from './pairing.js'
import { DEFAULT_MAX_SIGNAL_SIZE, type SignalMessage } from './protocol.js'
import { backoff, type ReconnectPolicy } from './reconnect.js'
import type { Signaler } from './signalers/signaler.js'

/**
 * Options of a named data channel. Both peers must declare the same channels.
 *
 * @example
 * const channels: Record<string, ChannelOptions> = { cursor: { ordered: false, maxRetransmits: 0 }, files: {} }
 */
export type ChannelOptions = Pick<RTCDataChannelInit, 'ordered' | 'maxRetransmits' | 'maxPacketLifeTime' | 'protocol'>

/**
 * The `rtcConfig` of a peer or a room: an `RTCConfiguration` whose `iceServers` may also be a
 * function, called before each RTCPeerConnection is built (the first, every rebuild, every room
 * member), so credentials that expire are fresh on every connection. One that throws or rejects is
 * an `ice-servers-failed` error, and the connection is built again as after any failure.
 *
 * @example
 * const rtcConfig: RtcConfig = {
 *   iceServers: async () => (await fetch('/turn-credentials')).json(), // [{ urls, username, credential }]
 *   iceTransportPolicy: 'relay',
 * }
 */
export interface RtcConfig extends Omit<RTCConfiguration, 'iceServers'> {
  /** A list, or a function giving one (or a promise of one), asked for every connection. Default: the signaler's, else none. */
  iceServers?: RTCIceServer[] | (() => RTCIceServer[] | Promise<RTCIceServer[]>)
}

/**
 * Options of {@link PerfectNegotiationPeer}. Only `signaler` is required.
 *
 * @example
 * const options: PeerOptions = {
 *   signaler: new SseSignaler({ url: '/signal', room: 'demo' }),
 *   rtcConfig: { iceServers: [{ urls: 'stun:stun.example.org' }] },
 * }
 */
export interface PeerOptions {
  /** How this peer finds and talks to the other one. The peer owns it and closes it on `close()`. */
  signaler: Signaler
  /** This peer's id; random by default. Must be unique per running instance: a reloaded page needs a new one. */
  id?: string
  /** Force the role; by default the peer with the lower id is polite (both sides agree without a round trip). */
  polite?: boolean
  /**
   * Passed to `RTCPeerConnection`; `iceServers` may be a function, asked for every connection
   * ({@link RtcConfig}). Default: the signaler's ICE servers (a server with TURN), else none (host candidates only).
   */
  rtcConfig?: RtcConfig
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
  readonly #media = new Media(() => {
    const pc = this.#link.current?.pc
    return pc ? [pc] : []
  })
  /** The one remote: its pairing record, connection, recovery and queues. */
  readonly #link: Link
  #currentState: PeerState = 'idle'
  #starting?: Promise<void>
  #cleanup: Array<() => void> = []
  /** The signaler says it is down. */
  #offline = false

  constructor(options: PeerOptions) {
    // An option given as `undefined` keeps its default (a spread would let it erase the default).
    const merged: Record<string, unknown> = { ...DEFAULTS, RTCPeerConnection: globalThis.RTCPeerConnection, channels: {} }
    for (const [key, value] of Object.entries(options ?? {})) if (value !== undefined) merged[key] = value
    const resolved = merged as unknown as Required<PeerOptions> & typeof DEFAULTS
    this.#options = resolved
    this.id = options?.id ?? randomId()
    if (!options?.signaler || !validSetup(resolved, this.id)) {
      throw new PolitelyError(
        'invalid-options',
        'Needs signaler, RTCPeerConnection, id of 1-64 [\\w.:~-], no channel named default',
      )
    }
    let sessions = 0
    const host: LinkHost = {
      id: this.id,
      since: Date.now(),
      options: resolved,
      specs: channelSpecs(resolved.channels),
      media: this.#media,
      retired: [] as Instance[],
      session: () => ++sessions,
      offline: () => this.#offline,
      send: (message) => this.#signal(message),
      state: (_, state) => this.#setState(state),
      end: (_, reason) => reason === 'gave-up' && this.#end(reason),
    }
    this.#link = new Link(host, this.#emitter.emit)
  }

  /** Where the peer is in its life. */
  get state(): PeerState {
    return this.#currentState
  }

  /** Id of the paired remote peer, if any. */
  get remoteId(): string | undefined {
    return this.#link.remoteId
  }

  /** The current RTCPeerConnection (replaced on every rebuild), for stats and advanced use. */
  get connection(): RTCPeerConnection | undefined {
    return this.#link.current?.pc
  }

  /**
   * Subscribes to an event; returns the unsubscribe function. A handler
   * that throws does not disturb the peer or the other handlers.
   *
   * @example
   * const off = peer.on('message', ({ data, channel }) => console.log(channel, data))
   */
  on<K extends keyof PeerEvents>(type: K, handler: (event: PeerEvents[K]) => void): () => void {
    return subscribe(this.#emitter, type, handler)
  }

  /**
   * Connects the signaler and announces this peer; negotiation starts when a
   * remote answers. Resolves once signaling is up, not when the remote is
   * connected: listen to `open` for that. A first connection that waits for its ICE servers
   * (the server's, a function) has the stack started meanwhile: one `RTCPeerConnection` with no
   * configuration, closed a second after signaling is up.
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
    return queueOf(this.#link, channel).push(data)
  }

  /**
   * Sends a media track to the remote, now and after every rebuild (renegotiates, glare-free).
   *
   * @example
   * const media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true })
   * for (const track of media.getTracks()) peer.addTrack(track, media)
   */
  addTrack(track: MediaStreamTrack, ...streams: MediaStream[]): void {
    this.#media.addTrack(track, streams)
  }

  /**
   * Adds a transceiver to the remote: a track or a kind, with a direction (`'recvonly'` receives a kind
   * without sending one) and `sendEncodings` (simulcast layers). Kept as set after every rebuild.
   *
   * @example
   * peer.addTransceiver('video', { direction: 'recvonly' })
   * peer.addTransceiver(camera, { streams: [media], sendEncodings: [{ rid: 'h' }, { rid: 'l', scaleResolutionDownBy: 4 }] })
   */
  addTransceiver(trackOrKind: MediaStreamTrack | 'audio' | 'video', init?: RTCRtpTransceiverInit): void {
    this.#media.addTransceiver(trackOrKind, init)
  }

  /**
   * Stops sending `track` to the remote (renegotiates; the remote gets `track-removed`), and after
   * rebuilds. Throws `unknown-track` if it is not sent.
   *
   * @example
   * peer.removeTrack(camera)
   */
  removeTrack(track: MediaStreamTrack): void {
    this.#media.removeTrack(track)
  }

  /**
   * Sends `next` in the place of `track` to the remote without renegotiating (switch cameras, share the
   * screen): `RTCRtpSender.replaceTrack`, now and after every rebuild. Throws `unknown-track`, or
   * `invalid-track` for a track of another kind.
   *
   * @example
   * const [screen] = (await navigator.mediaDevices.getDisplayMedia()).getVideoTracks()
   * await peer.replaceTrack(camera, screen)
   */
  replaceTrack(track: MediaStreamTrack, next: MediaStreamTrack): Promise<void> {
    return this.#media.replaceTrack(track, next)
  }

  /**
   * Stops sending `track` to the remote without renegotiating, or (`muted` false) sends it again: the
   * remote's track stays and gets no media. The app's own track is untouched (its local preview
   * keeps playing). Kept after every rebuild. Throws `unknown-track`.
   *
   * @example
   * await peer.mute(microphone)
   * await peer.mute(microphone, false)
   */
  mute(track: MediaStreamTrack, muted = true): Promise<void> {
    return this.#media.mute(track, muted)
  }

  /** Says `bye`, closes the connection and the signaler. Final. */
  close(): void {
    this.#end('local-close')
  }

  #end(reason: CloseReason): void {
    if (this.#currentState === 'closed') return
    // To the whole room: a peer waiting for a seat, or one that paired with us from a replayed
    // hello, must learn we left as well as our remote.
    const session = this.#link.current?.session
    if (session) this.#signal({ kind: 'bye', from: this.id, session })
    this.#link.close(reason)
    for (const undo of this.#cleanup) undo()
    this.#options.signaler.close()
    this.#setState('closed')
  }

  async #run(): Promise<void> {
    const { signaler, helloInterval } = this.#options
    const link = this.#link
    // Once, even if start() is called again after a refusal (room-full, forbidden, …) made it reject.
    if (!link.current) {
      this.#cleanup.push(signaler.subscribe((raw) => this.#receive(raw)))
      link.start()
    }
    const connected = signaler.connect(this.id, {
      error: (error) => this.#emitter.emit('error', error),
      // Messages may have been lost while signaling was down: tell the remote our session again.
      reset: () => link.hello(),
      online: (up) => {
        this.#offline = !up
        // Down: an open connection's renegotiation waits. Up: its watch starts again, in full.
        link.progress()
      },
    })
    // The first connection waits for its ICE servers (the signaler's, say): the stack need not.
    if (!link.current?.pc) warmUp(this.#options.RTCPeerConnection, connected)
    await connected
    if (this.#currentState === 'closed') return
    this.#setState('waiting')
    link.hello()
    // Our announcement may have gone unanswered (a lost hello or reply): repeat it, to the room —
    // the remote we know may be gone without a word, and another peer waiting for us.
    this.#cleanup.push(
      repeat(helloInterval, () => link.current?.paired === undefined && link.hello()),
      onPageHide(() => this.close()),
    )
  }

  #receive(raw: unknown): void {
    const message = parse(raw, this.#options.maxSignalSize, (error) => this.#emitter.emit('error', error))
    if (message) this.#link.receive(message)
  }

  #signal(message: SignalMessage): void {
    sendSignal(this.#options.signaler, message, this.#emitter.emit as (type: string, event: unknown) => void)
  }

  #setState(state: PeerState): void {
    const previous = this.#currentState
    if (previous === state || previous === 'closed') return
    this.#currentState = state
    this.#emitter.emit('state', { state, previous })
  }
}
