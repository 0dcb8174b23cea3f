import type { Channel, ChannelSpec } from './channels.js'
import { type ErrorCode, PolitelyError } from './errors.js'
import type { PeerEvents, ReconnectReason } from './events.js'
import type { Media } from './media.js'
import { Negotiator } from './negotiation.js'
import type { CandidateInit, CandidateMessage, DescriptionMessage } from './protocol.js'

/** How long (ms) a connection that answered after taking its own offer back may go without gathering a candidate. */
const ROLLBACK_GATHER_MS = 700

/** What a connection needs to be built. */
export interface ConnectionSetup {
  session: number
  RTCPeerConnection: typeof RTCPeerConnection
  /** Its configuration, or the promise of it while its ICE servers are on their way. */
  config: RTCConfiguration | Promise<RTCConfiguration>
  channels: readonly ChannelSpec[]
  queues: ReadonlyMap<string, Channel>
  /** What the app sends: put on the connection as it was last set. */
  media: Media
  stallTimeout: number
  /** The signaling round trip measured so far (ms), or a guess before any: slow signaling is not a stall. */
  rtt(): number
  /** Signaling is down: an open connection is not watched (its renegotiation waits for signaling). */
  offline(): boolean
  /** Make the first offer in advance (not when this side is known to be polite: it would never be used). */
  advance: boolean
  /** An RTCPeerConnection made in advance with the same configuration, if one is waiting. */
  spare?(): RTCPeerConnection | undefined
}

/** What a connection tells its peer. */
export interface ConnectionHooks {
  signal(body: Pick<DescriptionMessage, 'kind' | 'description'> | Pick<CandidateMessage, 'kind' | 'candidate'>): void
  open(): void
  /** The channels closed under us. */
  lost(): void
  /** Something is wrong: the peer decides whether to restart ICE or rebuild. */
  recover(reason: ReconnectReason): void
  /** ICE is connected again (after `disconnected`, or an ICE restart). */
  healthy(): void
  /** A signaling round trip was measured (ms): our offer, its answer. */
  sample(ms: number): void
  /** Passes `message`, `track`, `track-removed`, `track-ended` and `error` events straight to the peer's emitter. */
  emit: <K extends keyof PeerEvents>(type: K, event: PeerEvents[K]) => void
}

/**
 * One RTCPeerConnection and its negotiated data channels, from creation to
 * close. A peer replaces the whole object on every rebuild, so no state of
 * a dead connection can leak into the next one.
 */
export class Connection {
  /** Undefined while its ICE servers are on their way. */
  pc?: RTCPeerConnection
  readonly session: number
  /** The remote session this connection negotiates with. */
  paired?: number
  /** Every channel is open (and `open` was reported). */
  isOpen = false
  /** Our first offer, made in advance for our hellos (undefined: none; see Negotiator.prepare). */
  readonly offer: Promise<string | undefined>
  #negotiator!: Negotiator
  /** Made once its ICE servers were here: what waits for the RTCPeerConnection chains on it. */
  #ready?: Promise<unknown>
  #closed = false
  /** Channels that opened (a negotiated channel opens once). */
  #opened = 0
  #watchdog?: ReturnType<typeof setTimeout>
  /** Local candidates gathered so far. */
  #gathered = 0
  /** ICE went down under open channels and has not come back yet. */
  #down = false
  /** The remote tracks coming in now, by their transceiver. */
  readonly #receiving = new Map<RTCRtpTransceiver, MediaStreamTrack>()

  readonly #setup: ConnectionSetup
  readonly #hooks: ConnectionHooks

  constructor(setup: ConnectionSetup, hooks: ConnectionHooks) {
    this.#setup = setup
    this.#hooks = hooks
    this.session = setup.session
    let { config } = setup
    let offer: Promise<string | undefined> | undefined
    let code: ErrorCode = 'ice-servers-failed'
    if (!(config instanceof Promise))
      try {
        // A list is used at once (the connection is made now).
        this.offer = this.#build(config)!
        return
      } catch (cause) {
        // The stack refused the configuration (a malformed ICE server URL, say): reported, and
        // recovered as a failed build is, once the link holds this connection (a microtask later).
        code = 'invalid-options'
        config = Promise.reject(cause)
      }
    // The ICE servers of an async function (or the signaler's) may be on their way: the connection
    // pairs and is watched meanwhile; what its negotiator is told waits for it. One that cannot be
    // had is a failed build, recovered (and so asked again) like any other.
    this.offer = (this.#ready = config
      .then((config) => {
        offer = this.#build(config)
      })
      .catch((cause) => {
        if (this.#closed) return
        hooks.emit('error', new PolitelyError(code, 'No RTCPeerConnection', { cause }))
        this.#fire('failed')
      })).then(() => offer)
  }

  #build(config: RTCConfiguration): Promise<string | undefined> | undefined {
    if (this.#closed) return
    const setup = this.#setup
    const pc = setup.spare?.() ?? new setup.RTCPeerConnection(config)
    this.pc = pc
    this.#negotiator = new Negotiator(pc, {
      sendDescription: (description) => this.#hooks.signal({ kind: 'description', description }),
      error: (error) => this.#hooks.emit('error', error),
      stalled: () => this.#fire('stalled'),
      sample: this.#hooks.sample,
      // A negotiation ended: a transceiver that no longer receives is a track the remote removed.
      negotiated: () => {
        for (const [transceiver, track] of this.#receiving)
          if (!/recv/.test(transceiver.currentDirection ?? '')) {
            this.#receiving.delete(transceiver)
            this.#hooks.emit('track-removed', { track })
          }
      },
      rtt: setup.rtt,
      // Chromium's post-rollback bug (TOOLCHAIN.md): a connection that took its first offer back
      // may never gather a candidate again. A fresh connection gathers host candidates within
      // milliseconds: none soon after the answer, still gathering, is that bug, and only a rebuild
      // ends it (a stack that kept its finished gathering across the rollback, werift, is fine).
      rolledBack: () => {
        const gathered = this.#gathered
        setTimeout(
          () => this.isOpen || this.#gathered !== gathered || pc.iceGatheringState === 'complete' || this.#fire('stalled'),
          ROLLBACK_GATHER_MS,
        )
      },
    })
    pc.onnegotiationneeded = () => void this.#negotiator.negotiate()
    pc.onicecandidate = (event) => {
      const candidate = event.candidate
      this.#gathered++
      this.progress()
      // Firefox reports end-of-candidates as an empty candidate; the remote skips it anyway.
      if (!this.#closed && candidate?.candidate)
        this.#hooks.signal({ kind: 'candidate', candidate: candidate.toJSON() as CandidateInit })
    }
    pc.oniceconnectionstatechange = () => {
      const state = pc.iceConnectionState
      this.progress()
      // Only an open connection is recovered here; until then the stall watchdog covers it.
      if (this.isOpen && !this.#closed) {
        const down = state === 'disconnected' || state === 'failed'
        // Sends wait in the queues while the path is down (see Channel.hold).
        if (down || this.#iceUp) for (const queue of setup.queues.values()) queue.hold(down)
        if (down) this.#hooks.recover(state)
        // Healthy again only after being down: ICE reconnecting after a restart the app or a
        // renegotiation asked for says nothing about a recovery under way (e.g. a stalled one).
        else if (this.#iceUp && this.#down) this.#hooks.healthy()
        this.#down = down || (this.#down && !this.#iceUp)
      }
    }
    pc.onicegatheringstatechange = () => this.progress()
    pc.onsignalingstatechange = () => {
      this.progress()
      if (pc.signalingState === 'stable') this.#negotiator.settled()
      else if (pc.signalingState === 'closed') this.#lost()
    }
    pc.onconnectionstatechange = () => (pc.connectionState === 'failed' ? this.#fire('failed') : this.progress())
    pc.ontrack = ({ track, streams, transceiver }) => {
      if (this.#closed) return
      this.#receiving.set(transceiver, track)
      this.#hooks.emit('track', { track, streams: streams ?? [] })
    }
    setup.media.attach(pc)
    for (const spec of setup.channels) this.#openChannel(spec)
    // Not with tracks: werift gives transceivers their mids in createOffer, and an offer of the
    // remote that uses them differently then fails (as after its rollbacks).
    return setup.media.sending || !setup.advance ? Promise.resolve(undefined) : this.#negotiator.prepare()
  }

  /** Pairs with a remote session and starts negotiating (answering `offer`, from its hello, if we are polite). */
  pair(remoteSession: number, polite: boolean, politeWaitsForFirstOffer: boolean, offer?: string): void {
    this.paired = remoteSession
    this.#later(() => this.#negotiator.start(polite, politeWaitsForFirstOffer, offer))
    this.progress()
  }

  /** Our offer made in advance went with a hello addressed to the remote (see Negotiator.delivered). */
  offerDelivered(): void {
    // Only ever after the offer was made: the RTCPeerConnection is there.
    this.#negotiator.delivered()
  }

  /** Hands a description or candidate meant for this connection to the negotiator. */
  deliver(message: DescriptionMessage | CandidateMessage): void {
    this.#later(() =>
      message.kind === 'description'
        ? this.#negotiator.handleDescription(message.description)
        : message.candidate && this.#negotiator.handleCandidate(message.candidate),
    )
  }

  /** Runs `action` now, or, while the RTCPeerConnection is on its way, in order once it is there (never if it is not). */
  #later(action: () => unknown): void {
    if (this.#ready) this.#ready = this.#ready.then(() => this.pc && void action())
    else void action()
  }

  /**
   * Closes everything; no hook fires after this (every hook checks `#closed`).
   * The queues need not be told: they write only to a channel that is open.
   */
  close(): void {
    clearTimeout(this.#watchdog)
    if (!this.#closed) for (const track of this.#receiving.values()) this.#hooks.emit('track-ended', { track })
    this.#closed = true
    this.pc?.close()
  }

  /** ICE works. werift may report `checking` for good on a working connection (after a renegotiation during its first checks): its connectionState tells. */
  get #iceUp(): boolean {
    const pc = this.pc!
    return /^con|^com/.test(pc.iceConnectionState) || pc.connectionState === 'connected'
  }

  #openChannel(spec: ChannelSpec): void {
    this.#setup.queues.get(spec.name)!.open(this.pc!, spec, {
      opened: () => {
        if (++this.#opened === this.#setup.channels.length) {
          this.isOpen = true
          this.progress()
          this.#hooks.open()
        }
      },
      closed: () => this.#lost(),
      received: (data) => this.#hooks.emit('message', { data, channel: spec.name }),
    })
  }

  /**
   * The channels closed under us: the remote went, or the RTCPeerConnection itself was closed
   * under us (by the app, or the browser). Chromium tells the latter only by the channels
   * closing; node-webrtc and werift by the signaling state, their channels staying silent.
   */
  #lost(): void {
    if (!this.isOpen || this.#closed) return
    this.isOpen = false
    this.#hooks.lost()
    this.progress()
  }

  /**
   * Re-arms the stall watchdog. A paired connection that is not open and
   * makes no progress for `stallTimeout` is recovered: this covers a lost
   * offer or answer, an ICE restart that does not bring the path back, and
   * Chromium's glare bug where a rolled-back peer gathers no candidate ever again.
   */
  progress(): void {
    clearTimeout(this.#watchdog)
    // Watched until open, whenever a (re)negotiation is under way (a lost renegotiation offer or
    // answer would leave the connection in have-local-offer for good), and while ICE is down;
    // an open connection not while signaling is down (nothing can progress; its channels work).
    if (
      this.#closed ||
      this.paired === undefined ||
      (this.isOpen && ((this.pc!.signalingState === 'stable' && this.#iceUp) || this.#setup.offline()))
    )
      return
    // Never shorter than a few signaling round trips: a slow path is not a stalled one.
    this.#watchdog = setTimeout(() => this.#fire('stalled'), Math.max(this.#setup.stallTimeout, 3 * this.#setup.rtt()))
  }

  #fire(reason: 'stalled' | 'failed'): void {
    if (!this.#closed) this.#hooks.recover(reason)
  }
}
