import { Channel, type ChannelSpec, type QueueLimits } from './channels.js'
import { Connection } from './connection.js'
import type { CloseReason, PeerEvents, PeerState, RebuildReason, ReconnectReason } from './events.js'
import type { Media } from './media.js'
import { type Instance, type RemoteRecord, routeSignal } from './pairing.js'
import type { RtcConfig } from './peer.js'
import type { CandidateMessage, DescriptionMessage, SignalMessage } from './protocol.js'
import { type ReconnectPolicy, Streak } from './reconnect.js'
import type { Signaler } from './signalers/signaler.js'

/** How long a `bye` may trail the closing of the remote's channels and still be what ended them (ms). */
const BYE_GRACE_MS = 500
const MAX_RETIRED = 32

/** The options a link reads (the peer's and the room's, resolved). */
export interface LinkOptions extends QueueLimits {
  RTCPeerConnection: typeof RTCPeerConnection
  rtcConfig?: RtcConfig
  /** Asked for ICE servers when `rtcConfig` has none. */
  signaler: Signaler
  polite?: boolean
  firstOffer: 'impolite' | 'either'
  stallTimeout: number
  reconnectDelay: ReconnectPolicy<ReconnectReason>
}

/** How a link reports its events (the peer's emitter, or a room naming the member). */
export type LinkEmit = <K extends keyof PeerEvents>(type: K, event: PeerEvents[K]) => void

/** What every link of one peer or room shares: the signaler's side of things. */
export interface LinkHost {
  /** Our peer id. */
  readonly id: string
  /** When our instance started (`since` of our hellos). */
  readonly since: number
  readonly options: LinkOptions
  readonly specs: readonly ChannelSpec[]
  /** What the app sends, put on every connection. */
  readonly media: Media
  /** Instances that said `bye`: nothing more is taken from them. */
  readonly retired: Instance[]
  /** The next connection generation. One counter for every link: a link made again never reuses a session. */
  session(): number
  /** Signaling is down. */
  offline(): boolean
  /** Hands a message to the signaler. */
  send(message: SignalMessage): void
  /** The link moved to another state (never `idle` or `closed`: those are the owner's). */
  state(link: Link, state: PeerState): void
  /** The remote said `bye`, or the policy gave up: the owner decides what is left of the link. */
  end(link: Link, reason: 'remote-left' | 'gave-up'): void
  /** An RTCPeerConnection made in advance with the options' `rtcConfig`, if one is waiting (see Room). */
  spare?(): RTCPeerConnection | undefined
}

/**
 * Everything that belongs to one remote: what we know of it (pairing record), the connection to it
 * (replaced on every rebuild), its recovery attempts and the outgoing queues that outlive
 * connections. A `PerfectNegotiationPeer` is one link; a `Room` is a map of them.
 */
export class Link {
  /** The remote this link is for, if fixed (a room member); a 1:1 peer takes whichever remote pairs. */
  readonly target?: string
  readonly queues = new Map<string, Channel>()
  #remote?: RemoteRecord
  #current?: Connection
  readonly #host: LinkHost
  readonly #emit: LinkEmit
  /** Recovery attempts since the connection was last healthy. */
  readonly #streak: Streak<ReconnectReason>
  #retry?: ReturnType<typeof setTimeout>
  /** The connection whose channels closed under us, while we wait a moment for the remote's `bye`. */
  #lost?: Connection
  /** The signaling round trip (ms): the largest recent sample, slowly forgotten. */
  #rtt?: number
  /** When our last hello left (its reply is a round-trip sample). */
  #helloAt = 0
  #closed = false

  constructor(host: LinkHost, emit: LinkEmit, target?: string) {
    this.#host = host
    this.#emit = emit
    this.target = target
    this.#streak = new Streak(host.options.reconnectDelay)
    for (const { name } of host.specs) this.queues.set(name, new Channel(host.options, (error) => emit('error', error)))
  }

  /** The current connection (replaced on every rebuild). */
  get current(): Connection | undefined {
    return this.#current
  }

  /** What we know of the remote, once heard from. */
  get remote(): RemoteRecord | undefined {
    return this.#remote
  }

  /** Id of the paired remote, if any. */
  get remoteId(): string | undefined {
    return this.#current?.paired !== undefined ? this.#remote?.id : undefined
  }

  /** Builds the first connection (for a room member, `since`: when the member started, from its first hello). */
  start(since?: number): void {
    this.#current ??= this.#build(since)
  }

  /** Takes an incoming, validated message from this link's remote (or, for a 1:1 peer, anyone). */
  receive(message: SignalMessage): void {
    const connection = this.#current
    if (!connection || this.#closed) return
    const retired = this.#host.retired
    const { session, paired } = connection
    const route = routeSignal(
      { id: this.#host.id, session, paired, open: connection.isOpen, remote: this.#remote, retired },
      message,
    )
    if (route.drop) {
      if (route.drop !== 'not-for-me') this.#emit('dropped', { code: route.drop, kind: message.kind })
      return
    }
    this.#emit('signal', { direction: 'in', message })
    // A hello that answers ours (it names our session): a round trip.
    if (message.kind === 'hello' && message.toSession === session && this.#helloAt) {
      this.#sample(Date.now() - this.#helloAt)
      this.#helloAt = 0
    }
    if (route.retire) {
      retired.push(route.retire)
      if (retired.length > MAX_RETIRED) retired.shift()
      this.#remote = undefined
      this.#host.end(this, 'remote-left')
      if (this.#closed) return
    }
    if (route.rebuild) this.#rebuild(route.rebuild, route.remote?.since)
    if (route.remote) this.#remote = route.remote
    if (route.pair) this.#pair(route.pair, message.kind === 'hello' ? message.offer : undefined)
    if (route.deliver) this.#current?.deliver(message as DescriptionMessage | CandidateMessage)
    // The remote is alive and working on it: on slow signaling, that is all the progress there is.
    this.#current?.progress()
    if (route.reply) this.hello(message.from)
  }

  /**
   * Announces the current connection: to `to`, or to everyone. Unpaired, our
   * offer made in advance goes along (once it is ready).
   */
  hello(to?: string): void {
    const connection = this.#current
    void connection?.offer.then((offer) => {
      // Without an RTCPeerConnection (its ICE servers could not be had) it is about to be rebuilt:
      // announcing it would only pair the remote with a session that never negotiates.
      if (this.#current !== connection || !connection.pc) return
      const { paired } = connection
      this.#helloAt = Date.now()
      const withOffer = paired ? undefined : offer
      // Fields left undefined vanish in JSON: a broadcast hello has neither `to` nor `toSession`.
      this.#signal({ kind: 'hello', toSession: to && paired, since: this.#host.since, offer: withOffer }, to)
      // A room member answers the offer of the hello that pairs it with us: no description need repeat it.
      if (withOffer && to && to === this.target) connection.offerDelivered()
    })
  }

  /** Re-arms the current connection's watch (signaling went down or came back). */
  progress(): void {
    this.#current?.progress()
  }

  /** Closes the connection (reporting `close` if its channels were open) and the queues. Final. */
  close(reason: CloseReason): void {
    this.#dispose(reason)
    this.#closed = true
    for (const queue of this.queues.values()) queue.close()
  }

  #pair(session: number, offer?: string): void {
    const connection = this.#current
    const id = this.#remote?.id
    if (!connection || !id) return
    connection.pair(session, this.#polite(id, this.#remote?.since), this.#host.options.firstOffer === 'impolite', offer)
    this.#emit('remote', { id, session })
    this.#host.state(this, 'connecting')
  }

  /**
   * Whether we are the polite side towards the remote `id` that started at `since`: as the option
   * says, else, in a room, the member that was there first is impolite (its answer to a newcomer's
   * presence carries its offer: the newcomer answers, a trip less than offering itself); a tie, or
   * a 1:1 peer: the lower id is polite. Both sides read the same two hellos: they agree.
   */
  #polite(id: string, since = 0): boolean {
    const host = this.#host
    return host.options.polite ?? (this.target && since && since !== host.since ? host.since > since : host.id < id)
  }

  #build(since = this.#remote?.since): Connection {
    const host = this.#host
    const { options } = host
    const session = host.session()
    // The app's ICE servers (a list, or a function asked for every connection: credentials
    // expire), else the signaler's (the reference server's TURN credentials).
    const { iceServers, ...base } = options.rtcConfig ?? {}
    // The app's function is always awaited: what it throws becomes a rejection, like what it rejects.
    const servers =
      typeof iceServers === 'function'
        ? new Promise<RTCIceServer[]>((resolve) => resolve(iceServers()))
        : (iceServers ?? options.signaler.iceServers?.())
    const config = (list?: RTCIceServer[]): RTCConfiguration => (list ? { ...base, iceServers: list } : base)
    const connection: Connection = new Connection(
      {
        ...options,
        session,
        // A list is used at once (the connection is made now); only a promise makes it wait.
        config: servers instanceof Promise ? servers.then(config) : config(servers),
        // Each attempt in a row doubles the wait (up to 16×): signaling slower than the timeout must still get through.
        stallTimeout: options.stallTimeout * 2 ** Math.min(this.#streak.attempt, 4),
        // Nothing measured yet: the path may be slow (a fast one gives a sample within the first hellos).
        rtt: () => this.#rtt ?? options.stallTimeout,
        offline: host.offline,
        channels: host.specs,
        queues: this.queues,
        media: host.media,
        spare: host.spare,
        // A room's link knows its remote, hence its role: a polite side's offer would go unused.
        advance: !this.target || !this.#polite(this.target, since),
      },
      {
        signal: (body) => this.#signal({ ...body, toSession: connection.paired }, this.#remote?.id, session),
        open: () => {
          host.state(this, 'connected')
          this.#emit('open', { remoteId: this.#remote?.id ?? '' })
          this.#healthy()
        },
        lost: () => {
          host.state(this, 'connecting')
          // A remote that closes sends `bye`, which usually lands a moment after its channels
          // closed under us: wait for it, so that is reported once, as `remote-left`, and not recovered.
          this.#lost = connection
          setTimeout(() => {
            if (this.#current !== connection) return
            this.#lost = undefined
            this.#emit('close', { reason: 'connection-lost' })
            this.#recover('connection-lost', connection)
          }, BYE_GRACE_MS)
        },
        recover: (reason) => this.#recover(reason, connection),
        healthy: () => this.#healthy(),
        sample: (ms) => this.#sample(ms),
        emit: this.#emit,
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
    if (this.#current !== connection || this.#retry || (reason === 'disconnected' && this.#streak.attempt)) return
    const delay = this.#streak.next(reason)
    const { attempt } = this.#streak
    if (delay === undefined) {
      this.#host.end(this, 'gave-up')
      return
    }
    this.#emit('reconnecting', { reason, attempt })
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      if (this.#current !== connection) return
      // ICE trouble on open channels: an ICE restart keeps them (and what is in flight). A stalled
      // renegotiation is not ICE's doing: rebuild.
      if (attempt < 2 && connection.isOpen && reason !== 'stalled') return connection.pc!.restartIce()
      this.#rebuild(reason)
      // A 1:1 peer broadcasts: if the remote is gone for good (a crash, a reload that said no
      // bye), a newer instance waiting for the seat answers too, and takes it.
      this.hello(this.target)
    }, delay)
  }

  /** The connection works (again): a recovery under way ends. */
  #healthy(): void {
    this.#cancelRetry()
    const attempts = this.#streak.attempt
    if (attempts) this.#emit('reconnected', { attempts })
    this.#streak.attempt = 0
  }

  #cancelRetry(): void {
    clearTimeout(this.#retry)
    this.#retry = undefined
  }

  /** A fresh connection (`since`: the start of a new instance of the remote, when that is why). */
  #rebuild(reason: RebuildReason, since?: number): void {
    const old = this.#current
    if (old?.paired !== undefined && this.#remote) this.#remote.used = Math.max(this.#remote.used, old.paired)
    this.#dispose(reason)
    this.#current = this.#build(since)
    this.#emit('rebuild', { reason, session: this.#current.session })
    this.#host.state(this, 'waiting')
  }

  /** Closes the current connection, reporting `close` if its channels were open. */
  #dispose(reason: CloseReason): void {
    const connection = this.#current
    this.#current = undefined
    this.#cancelRetry()
    connection?.close()
    if (connection?.isOpen || connection === this.#lost || reason === 'gave-up') this.#emit('close', { reason })
  }

  /** A signaling round-trip sample (ms); a stale one (a reply to an old hello) counts 20 s at most. */
  #sample(ms: number): void {
    this.#rtt = Math.max(Math.min(ms, 2e4), (this.#rtt ?? 0) * 0.8)
  }

  #signal(body: object, to?: string, session = this.#current?.session): void {
    this.#host.send({ ...body, from: this.#host.id, session, to } as SignalMessage)
  }
}
