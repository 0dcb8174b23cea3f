/**
 * Rooms: a full mesh of peers over one signaler, every link as correct as a `PerfectNegotiationPeer`.
 *
 * @module politely/room
 */
import mitt, { type Emitter } from 'mitt'
import { closedError, type Payload } from './channels.js'
import { PolitelyError } from './errors.js'
import type { PeerEvents, PeerState } from './events.js'
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
import { DEFAULTS, type PeerOptions } from './peer.js'
import type { SignalMessage } from './protocol.js'

/**
 * Options of a {@link Room}: those of a peer (but `polite`: of two members, the one that started first is impolite), and its size.
 *
 * @example
 * const options: RoomOptions = { signaler: new WebSocketSignaler({ url: '/signal', room: 'team' }), maxPeers: 6, channels: { moves: { ordered: false } } }
 */
export interface RoomOptions extends Omit<PeerOptions, 'polite'> {
  /** Most members, this one included; a member beyond it is not linked to (`dropped`, `room-full`). Default 8. */
  maxPeers?: number
  /**
   * A member whose link is not open and from whom nothing was heard for this long (ms) has
   * left (`peer-leave`, `gave-up`). Members announce themselves every `helloInterval`, so this is
   * three of them by default (9 s). Not judged while our own signaling is down.
   */
  leaveAfter?: number
}

/**
 * Where one link of a room is: no remote session paired yet, negotiating or recovering, or open.
 *
 * @example
 * const linked = room.peers.filter(({ state }: { state: LinkState }) => state === 'connected').length
 */
export type LinkState = Exclude<PeerState, 'idle' | 'closed'>

/**
 * Why a member is gone: `left`, it said `bye` (closed its room or its page); `replaced`, a newer
 * instance under its id took its place (a `peer-join` follows once linked); `gave-up`, silent
 * for `leaveAfter` with its link down, or the `reconnectDelay` policy gave up on it.
 *
 * @example
 * room.on('peer-leave', ({ id, reason }: { id: string; reason: LeaveReason }) => reason === 'left' || console.warn(`lost ${id}`))
 */
export type LeaveReason = 'left' | 'replaced' | 'gave-up'

/**
 * Names the member a room event is about.
 *
 * @example
 * room.on('message', ({ from, data }) => console.log(`${from}: ${data}`))
 */
export interface FromMember {
  /** The member's id. */
  from: string
}

/**
 * A member and the state of the link to it.
 *
 * @example
 * for (const { id, state } of room.peers) console.log(id, state)
 */
export interface MemberLink {
  /** The member's id. */
  id: string
  /** Its link's state. */
  state: LinkState
}

/**
 * Every event a {@link Room} emits, with its payload; `from` or `id` names the member.
 *
 * @example
 * const onJoin = ({ id }: RoomEvents['peer-join']) => console.log(`${id} joined`)
 * room.on('peer-join', onJoin)
 */
export type RoomEvents = {
  /** A link to a new member opened (every channel): messages to it go straight to the wire. */
  'peer-join': {
    /** The member's id. */
    id: string
  }
  /** A member is gone; nothing is tried towards it any more. */
  'peer-leave': {
    /** The member's id. */
    id: string
    /** Why it is gone. */
    reason: LeaveReason
  }
  /** A message arrived from `from`. */
  message: PeerEvents['message'] & FromMember
  /** A media track arrived from `from`. */
  track: PeerEvents['track'] & FromMember
  /** `from` stopped sending a track (as the peer's event of that name). */
  'track-removed': PeerEvents['track-removed'] & FromMember
  /** A track from `from` ended for good: its link was rebuilt or closed (as the peer's event). */
  'track-ended': PeerEvents['track-ended'] & FromMember
  /** The link to member `id` moved to another state (`previous` is absent for a new link). */
  state: MemberLink & {
    /** The state it left. */
    previous?: LinkState
  }
  /** The link to `from` is being brought back (as the peer's event of that name). */
  reconnecting: PeerEvents['reconnecting'] & FromMember
  /** The link to `from` is back. */
  reconnected: PeerEvents['reconnected'] & FromMember
  /** The link to `from` got a fresh RTCPeerConnection. */
  rebuild: PeerEvents['rebuild'] & FromMember
  /** A signaling message was sent, or received and accepted. */
  signal: PeerEvents['signal']
  /** A signaling message was dropped: a race (as the peer's event), or `room-full` (a member beyond `maxPeers`). */
  dropped: {
    /** Why: the peer's codes, or `room-full`. */
    code: PeerEvents['dropped']['code'] | 'room-full'
    /** The message's `kind`. */
    kind: string
  }
  /** Something unexpected went wrong; the room keeps running. */
  error: PolitelyError
}

/** Per-link events a room passes on, naming the member. */
const FORWARDED = new Set(['message', 'track', 'track-removed', 'track-ended', 'reconnecting', 'reconnected', 'rebuild'])

/**
 * A full mesh of up to `maxPeers` members over one signaler. Each pair of members is a link
 * with every guarantee of a `PerfectNegotiationPeer`: glare-free (re)negotiation, rebuilt
 * at once when that member reloads, recovered after a network drop, messages queued while it
 * is down, named channels and tracks. A reload or a drop touches only that member's links.
 *
 * @example
 * const room = new Room({ signaler: new BroadcastChannelSignaler({ room: 'team' }) })
 * room.on('peer-join', ({ id }) => room.send(`hi ${id}`, { to: id }))
 * room.on('message', ({ from, data }) => console.log(from, data))
 * await room.start()
 */
export class Room {
  /** This member's id. */
  readonly id: string
  readonly #options: Required<RoomOptions> & typeof DEFAULTS
  readonly #emitter: Emitter<RoomEvents> = mitt<RoomEvents>()
  readonly #media = new Media(() => [...this.#links.values()].flatMap((link) => link.current?.pc ?? []))
  readonly #links = new Map<string, Link>()
  readonly #states = new Map<Link, LinkState>()
  /** When each member was last heard from (its messages, and its announcements). */
  readonly #heard = new Map<Link, number>()
  /** Members whose link has opened once: `peer-join` was said. */
  readonly #joined = new Set<Link>()
  readonly #host: LinkHost
  /** RTCPeerConnections made in advance for the links to come (see #makeSpares). */
  #spares: RTCPeerConnection[] = []
  #sessions = 0
  #offline = false
  #started?: Promise<void>
  #closed = false
  #cleanup: Array<() => void> = []

  constructor(options: RoomOptions) {
    const merged: Record<string, unknown> = {
      ...DEFAULTS,
      maxPeers: 8,
      RTCPeerConnection: globalThis.RTCPeerConnection,
      channels: {},
    }
    for (const [key, value] of Object.entries(options ?? {})) if (value !== undefined) merged[key] = value
    merged.leaveAfter ??= 3 * (merged.helloInterval as number)
    const resolved = merged as unknown as Required<RoomOptions> & typeof DEFAULTS
    this.#options = resolved
    this.id = options?.id ?? randomId()
    if (!options?.signaler || !validSetup(resolved, this.id) || !(resolved.maxPeers >= 2)) {
      throw new PolitelyError('invalid-options', 'Needs signaler, RTCPeerConnection, id of 1-64 [\\w.:~-], maxPeers >= 2')
    }
    this.#host = {
      id: this.id,
      since: Date.now(),
      options: { ...resolved, polite: undefined },
      specs: channelSpecs(resolved.channels),
      media: this.#media,
      retired: [] as Instance[],
      session: () => ++this.#sessions,
      offline: () => this.#offline,
      send: (message) => this.#signal(message),
      state: (link, state) => this.#setState(link, state),
      end: (link, reason) => this.#remove(link, reason === 'remote-left' ? 'left' : 'gave-up'),
      spare: () => this.#spares.shift(),
    }
  }

  /** The members linked to now, with their link's state. */
  get peers(): MemberLink[] {
    return [...this.#links].map(([id, link]) => ({ id, state: this.#states.get(link) ?? 'waiting' }))
  }

  /** The RTCPeerConnection to member `id` (replaced on every rebuild), for stats and advanced use. */
  connection(id: string): RTCPeerConnection | undefined {
    return this.#links.get(id)?.current?.pc
  }

  /**
   * Subscribes to an event; returns the unsubscribe function. A handler that throws disturbs
   * neither the room nor the other handlers.
   *
   * @example
   * const off = room.on('peer-leave', ({ id, reason }) => console.log(id, 'left:', reason))
   */
  on<K extends keyof RoomEvents>(type: K, handler: (event: RoomEvents[K]) => void): () => void {
    return subscribe(this.#emitter, type, handler)
  }

  /**
   * Connects the signaler and announces this member; links follow as members answer. Resolves once
   * signaling is up. Over a signaler that brings ICE servers (the reference server), the stack is
   * started meanwhile: one `RTCPeerConnection` with no configuration, closed a second after signaling is up.
   */
  start(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError())
    this.#started ??= this.#run().catch((error) => {
      this.#started = undefined
      throw error
    })
    return this.#started
  }

  /**
   * Sends a message to every member linked to now, or to one (`to`), on a channel (`'default'`
   * unless named). Like the peer's `send()`: queued while a link is down, and the promise resolves
   * once every link took it below its high-water mark. A member whose queue is full misses it
   * (an `error` event, `queue-full`); the others get it. Throws `unknown-peer` for a `to` that is
   * not a member, and the peer's codes otherwise.
   *
   * @example
   * room.send('to everyone')
   * await room.send(JSON.stringify(move), { to: 'player-2', channel: 'moves' })
   */
  send(data: Payload, { to, channel = DEFAULT_CHANNEL }: { to?: string; channel?: string } = {}): Promise<void> {
    if (this.#closed) throw closedError()
    if (to !== undefined) {
      const link = this.#links.get(to)
      if (!link) throw new PolitelyError('unknown-peer', `No member "${to}"`)
      return queueOf(link, channel).push(data)
    }
    if (!this.#host.specs.some((spec) => spec.name === channel))
      throw new PolitelyError('unknown-channel', `No channel "${channel}"`)
    const handed: Array<Promise<void>> = []
    for (const link of this.#links.values()) {
      try {
        // A member that leaves meanwhile does not fail the others' delivery.
        handed.push(
          queueOf(link, channel)
            .push(data)
            .catch((error) => {
              if (this.#closed) throw error
            }),
        )
      } catch (error) {
        // Too large or not sendable is so for every member: thrown before any took it.
        if ((error as PolitelyError).code !== 'queue-full') throw error
        this.#emitter.emit('error', error as PolitelyError)
      }
    }
    return Promise.all(handed).then(() => {})
  }

  /**
   * Sends a media track to every member (later ones too), now and after every rebuild (renegotiates, glare-free).
   *
   * @example
   * const media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true })
   * for (const track of media.getTracks()) room.addTrack(track, media)
   */
  addTrack(track: MediaStreamTrack, ...streams: MediaStream[]): void {
    this.#media.addTrack(track, streams)
  }

  /**
   * Adds a transceiver to every member (later ones too): a track or a kind, with a direction (`'recvonly'` receives a kind
   * without sending one) and `sendEncodings` (simulcast layers). Kept as set after every rebuild.
   *
   * @example
   * room.addTransceiver('video', { direction: 'recvonly' })
   * room.addTransceiver(camera, { streams: [media], sendEncodings: [{ rid: 'h' }, { rid: 'l', scaleResolutionDownBy: 4 }] })
   */
  addTransceiver(trackOrKind: MediaStreamTrack | 'audio' | 'video', init?: RTCRtpTransceiverInit): void {
    this.#media.addTransceiver(trackOrKind, init)
  }

  /**
   * Stops sending `track` to every member (later ones too) (renegotiates; the remote gets `track-removed`), and after
   * rebuilds. Throws `unknown-track` if it is not sent.
   *
   * @example
   * room.removeTrack(camera)
   */
  removeTrack(track: MediaStreamTrack): void {
    this.#media.removeTrack(track)
  }

  /**
   * Sends `next` in the place of `track` to every member (later ones too) without renegotiating (switch cameras, share the
   * screen): `RTCRtpSender.replaceTrack`, now and after every rebuild. Throws `unknown-track`, or
   * `invalid-track` for a track of another kind.
   *
   * @example
   * const [screen] = (await navigator.mediaDevices.getDisplayMedia()).getVideoTracks()
   * await room.replaceTrack(camera, screen)
   */
  replaceTrack(track: MediaStreamTrack, next: MediaStreamTrack): Promise<void> {
    return this.#media.replaceTrack(track, next)
  }

  /**
   * Stops sending `track` to every member (later ones too) without renegotiating, or (`muted` false) sends it again: the
   * remote's track stays and gets no media. The app's own track is untouched (its local preview
   * keeps playing). Kept after every rebuild. Throws `unknown-track`.
   *
   * @example
   * await room.mute(microphone)
   * await room.mute(microphone, false)
   */
  mute(track: MediaStreamTrack, muted = true): Promise<void> {
    return this.#media.mute(track, muted)
  }

  /** Says `bye` to every member, closes every link and the signaler. Final. */
  close(): void {
    this.#end(true)
  }

  /** Says `bye` (once signaling was started: before that, nobody heard of us) and ends; the links too if `links`. */
  #end(links: boolean): void {
    if (this.#closed) return
    if (this.#started) this.#signal({ kind: 'bye', from: this.id, session: this.#sessions || 1 })
    this.#closed = true
    if (links) for (const link of this.#links.values()) link.close('local-close')
    this.#links.clear()
    this.#dropSpares()
    for (const undo of this.#cleanup) undo()
    this.#options.signaler.close()
  }

  async #run(): Promise<void> {
    const { signaler, helloInterval, leaveAfter, rtcConfig, RTCPeerConnection } = this.#options
    if (!this.#cleanup.length) this.#cleanup.push(signaler.subscribe((raw) => this.#receive(raw)))
    const connected = signaler.connect(this.id, {
      error: (error) => this.#emitter.emit('error', error),
      // Messages may have been lost while signaling was down: everyone hears our sessions again.
      reset: () => this.#announce(true),
      online: (up) => {
        this.#offline = !up
        const now = Date.now()
        for (const link of this.#links.values()) {
          link.progress()
          // Nothing could be heard while we were down: silence counts from now.
          if (up) this.#heard.set(link, now)
        }
      },
    })
    // Spares (their ICE servers known before any member is) start the stack themselves, once
    // connected: at once over BroadcastChannel, where a warm-up would only hold our hello back.
    const spares = !signaler.iceServers && typeof rtcConfig?.iceServers !== 'function'
    if (!spares) warmUp(RTCPeerConnection, connected)
    await connected
    if (this.#closed) return
    this.#announce(true)
    if (spares) this.#makeSpares()
    this.#cleanup.push(
      repeat(helloInterval, () => {
        this.#dropSpares()
        this.#announce(false)
        const now = Date.now()
        for (const link of this.#links.values())
          if (!this.#offline && this.#states.get(link) !== 'connected' && now - (this.#heard.get(link) ?? now) > leaveAfter)
            this.#remove(link, 'gave-up')
      }),
      // A page that goes for good says bye and leaves its connections to the browser, which closes
      // them with the page: closing them one by one here held the next page up (bench:mesh, one
      // member of 6 reloading: ~25 ms sooner to the full mesh). One kept for back/forward closes all.
      // (close() is what a subclass extends: ReliableRoom ends its streams there.)
      onPageHide((event) => (event.persisted ? this.close() : this.#end(false))),
    )
  }

  /**
   * Over a signaler that brings no ICE servers (BroadcastChannel), a newcomer hears of the members
   * only from their offers, which come in a burst: each of those links would make its
   * RTCPeerConnection then, one after another, each waiting on the stack's thread while it applies
   * the offers before. They are made while we wait for the first offer instead, one per task, up
   * to one per seat (not after: made then, they too would wait behind those offers); those still
   * unused at our next announcement (half a second) are closed. bench:mesh, one member of 6
   * reloading: about 10 % sooner to the full mesh.
   */
  #makeSpares(): void {
    const { RTCPeerConnection, rtcConfig, maxPeers } = this.#options
    const make = () => {
      if (!this.#closed && !this.#links.size && this.#spares.length < maxPeers - 1) {
        try {
          this.#spares.push(new RTCPeerConnection(rtcConfig as RTCConfiguration))
        } catch {
          return // a configuration the stack refuses: each link's own build reports it
        }
        setTimeout(make)
      }
    }
    setTimeout(make)
  }

  #dropSpares(): void {
    for (const pc of this.#spares.splice(0)) pc.close()
  }

  /**
   * Our presence to everyone (a hello of session 0: no connection of ours for them yet; a new
   * member answers it), and our session to each member not paired yet (or, `all`, to every member).
   */
  #announce(all: boolean): void {
    this.#signal({ kind: 'hello', from: this.id, session: 0, since: this.#host.since })
    for (const link of this.#links.values()) if (all || link.current?.paired === undefined) link.hello(link.target)
  }

  #receive(raw: unknown): void {
    const message = parse(raw, this.#options.maxSignalSize, (error) => this.#emitter.emit('error', error))
    if (!message || this.#closed || message.from === this.id || (message.to !== undefined && message.to !== this.id)) return
    const { from, kind } = message
    let link = this.#links.get(from)
    if (link) {
      this.#heard.set(link, Date.now())
      // The presence of a member we know, same instance: nothing new.
      if (kind === 'hello' && !message.session && (message.since ?? 0) <= (link.remote?.since || Number.POSITIVE_INFINITY)) return
    } else {
      // Only a hello begins a link; anything else names a link of ours that is gone.
      if (kind !== 'hello') return void (kind !== 'bye' && this.#emitter.emit('dropped', { code: 'stale-session', kind }))
      if (this.#links.size + 1 >= this.#options.maxPeers) return void this.#emitter.emit('dropped', { code: 'room-full', kind })
      link = this.#add(from, message.since)
    }
    link.receive(message)
    // A first message that the link did not take (a member that said bye): no link after all.
    if (!link.remote && this.#links.get(from) === link) this.#remove(link)
  }

  #add(id: string, since?: number): Link {
    const link: Link = new Link(this.#host, (type, event) => this.#forward(link, type, event), id)
    this.#links.set(id, link)
    this.#heard.set(link, Date.now())
    link.start(since)
    return link
  }

  /** Ends the link to a member: reported as `peer-leave` if it had joined. */
  #remove(link: Link, reason?: LeaveReason): void {
    const id = link.target as string
    if (this.#links.get(id) !== link) return
    this.#links.delete(id)
    this.#states.delete(link)
    this.#heard.delete(link)
    link.close(reason === 'left' ? 'remote-left' : 'gave-up')
    this.ended(id)
    if (this.#joined.delete(link) && reason) this.#emitter.emit('peer-leave', { id, reason })
  }

  /** For a subclass: the link to `member` is gone (before any `peer-leave`). */
  protected ended(_member: string): void {}

  /** A link's event, as the room tells it. */
  #forward(link: Link, type: keyof PeerEvents, event?: unknown): void {
    const id = link.target as string
    const emit = this.#emitter.emit as (type: string, event: unknown) => void
    // A newer instance under the member's id (whether or not the link was open just then): the
    // old one is gone, the new one joins once linked.
    if (type === 'rebuild' && (event as PeerEvents['rebuild']).reason === 'remote-replaced' && this.#joined.delete(link))
      this.#emitter.emit('peer-leave', { id, reason: 'replaced' })
    if (FORWARDED.has(type)) emit(type, { ...(event as object), from: id })
    else if (type === 'open') {
      if (!this.#joined.has(link)) {
        this.#joined.add(link)
        this.#emitter.emit('peer-join', { id })
      }
    } else if (type !== 'remote' && type !== 'close') emit(type, event)
  }

  #setState(link: Link, state: PeerState): void {
    const previous = this.#states.get(link)
    if (previous === state || !this.#links.has(link.target as string)) return
    this.#states.set(link, state as LinkState)
    this.#emitter.emit('state', { id: link.target as string, state: state as LinkState, previous })
  }

  #signal(message: SignalMessage): void {
    sendSignal(this.#options.signaler, message, this.#emitter.emit as (type: string, event: unknown) => void)
  }
}
