import type { PolitelyError } from './errors.js'
import type { SignalMessage } from './protocol.js'

/**
 * Where a peer is in its life:
 * - `idle`: created, `start()` not called yet;
 * - `waiting`: signaling is up, no remote peer known;
 * - `connecting`: a remote is known, negotiation and ICE are under way;
 * - `connected`: every data channel is open;
 * - `closed`: `close()` was called; final.
 *
 * @example
 * const labels: Record<PeerState, string> = {
 *   idle: 'not started', waiting: 'alone', connecting: 'connecting…', connected: 'online', closed: 'closed',
 * }
 * peer.on('state', ({ state }) => (status.textContent = labels[state]))
 */
export type PeerState = 'idle' | 'waiting' | 'connecting' | 'connected' | 'closed'

/**
 * Why the data channels closed:
 * - `remote-left`: the remote said `bye` (closed its peer or its page);
 * - `remote-replaced`: a new instance of the remote appeared (it reloaded);
 * - `remote-restarted`: the remote rebuilt its connection;
 * - a {@link ReconnectReason}: the connection is being rebuilt for that reason
 *   (`connection-lost`: the channels, or the RTCPeerConnection itself, closed under us; a rebuild follows);
 * - `gave-up`: the `reconnectDelay` policy gave up; the peer is closed;
 * - `local-close`: `close()` was called here.
 *
 * @example
 * peer.on('close', ({ reason }) => {
 *   if (reason === 'remote-left') console.log('the other side left')
 *   else if (reason === 'gave-up') console.log('gave up reconnecting: start a new peer to try again')
 * })
 */
export type CloseReason = 'remote-left' | 'remote-replaced' | 'remote-restarted' | 'gave-up' | 'local-close' | ReconnectReason

/**
 * What set a recovery going:
 * - `disconnected`: ICE lost the path (it may come back by itself: a grace period first);
 * - `failed`: ICE or DTLS failed;
 * - `stalled`: a connection or an ICE restart made no progress in time;
 * - `connection-lost`: the data channels, or the RTCPeerConnection itself (closed by the app or
 *   the browser), closed under us.
 *
 * @example
 * // Wait 3 s (not 1) for ICE to come back by itself before acting on `disconnected`.
 * const reconnectDelay: ReconnectPolicy<ReconnectReason> = (attempt, reason, elapsed) =>
 *   attempt === 1 && reason === 'disconnected' ? 3000 : DEFAULTS.reconnectDelay(attempt, reason, elapsed)
 */
export type ReconnectReason = 'disconnected' | 'failed' | 'stalled' | 'connection-lost'

/**
 * Why a connection was thrown away and built anew.
 *
 * @example
 * peer.on('rebuild', ({ reason, session }) => console.log(`new RTCPeerConnection (session ${session}): ${reason}`))
 */
export type RebuildReason = 'remote-replaced' | 'remote-restarted' | 'remote-left' | ReconnectReason

/**
 * A message received on a data channel. Binary data always arrives as an `ArrayBuffer`.
 *
 * @example
 * peer.on('message', ({ data, channel }) => {
 *   if (typeof data === 'string') console.log(channel, data)
 *   else chunks.push(new Uint8Array(data)) // binary data is always an ArrayBuffer
 * })
 */
export interface MessageEvent {
  /** The message: a string as sent, anything binary as an `ArrayBuffer`. */
  data: string | ArrayBuffer
  /** Name of the channel it came on: `'default'` or a key of the `channels` option. */
  channel: string
}

/**
 * Every event a {@link PerfectNegotiationPeer} emits, with its payload.
 * This one map types `on()`, the emitter and the documentation.
 *
 * @example
 * function once<K extends keyof PeerEvents>(peer: PerfectNegotiationPeer, name: K): Promise<PeerEvents[K]> {
 *   return new Promise((resolve) => { const off = peer.on(name, (event) => { off(); resolve(event) }) })
 * }
 * const { remoteId } = await once(peer, 'open')
 */
export type PeerEvents = {
  /** Every data channel is open: `send()` goes straight to the wire. Fires again after each reconnect. */
  open: {
    /** Id of the remote peer the channels lead to. */
    remoteId: string
  }
  /** A message arrived. */
  message: MessageEvent
  /** The data channels closed; `send()` queues until the next `open`. */
  close: {
    /** Why they closed. `gave-up` and `local-close` are final; after the others the peer recovers, or waits for a remote. */
    reason: CloseReason
  }
  /** The peer moved to another {@link PeerState}. */
  state: {
    /** The state now. */
    state: PeerState
    /** The state it left. */
    previous: PeerState
  }
  /** A remote media track arrived. */
  track: {
    /** The remote track. */
    track: MediaStreamTrack
    /** The streams the remote added it to (`addTrack(track, ...streams)`); empty if none. */
    streams: readonly MediaStream[]
  }
  /**
   * The remote stopped sending a track (it removed it): no media comes on it until a `track`
   * event brings it back (the remote adds it again).
   */
  'track-removed': {
    /** The remote track, as its `track` event gave it. */
    track: MediaStreamTrack
  }
  /**
   * A remote track ended for good: the connection it came on was rebuilt or closed. After a
   * rebuild the remote's tracks arrive again, as new `track` events.
   */
  'track-ended': {
    /** The remote track, as its `track` event gave it. */
    track: MediaStreamTrack
  }
  /** A remote peer was paired with this one (first contact, or a new instance after a reload). */
  remote: {
    /** The remote peer's id. */
    id: string
    /** The remote connection's generation this one is paired with (it grows with each of the remote's rebuilds). */
    session: number
  }
  /**
   * The peer is acting to bring the connection back: attempt 1 restarts ICE
   * if the channels are still open (they survive it, and nothing in flight is
   * lost), later attempts rebuild the RTCPeerConnection. Each waits
   * `reconnectDelay(attempt, reason)` first.
   */
  reconnecting: {
    /** What set this recovery going. */
    reason: ReconnectReason
    /** 1, 2, … since the connection was last healthy. */
    attempt: number
  }
  /** The connection is back (ICE restored, or `open` again after a rebuild) after `attempts` attempts. */
  reconnected: {
    /** How many recovery attempts it took (1 or more). */
    attempts: number
  }
  /** The RTCPeerConnection was replaced by a fresh one. */
  rebuild: {
    /** Why the old connection was thrown away. */
    reason: RebuildReason
    /** This peer's new connection generation (the `session` of the messages it sends from now on). */
    session: number
  }
  /** A signaling message was sent, or received and accepted (validated, not stale): for timelines and debugging. */
  signal: {
    /** `'in'`: received and accepted; `'out'`: handed to the signaler. */
    direction: 'in' | 'out'
    /** The message itself (validated, when incoming). */
    message: SignalMessage
  }
  /**
   * A signaling message was dropped as an expected race (it was meant for a
   * connection that no longer exists). Not an error; useful for debugging.
   */
  dropped: {
    /**
     * Why: `stale-session`, it names a connection (ours or the remote's) that has been
     * rebuilt since; `retired-peer`, it comes from a peer that said `bye`; `other-peer`, it
     * comes from a peer other than the remote, which keeps its place.
     */
    code: 'stale-session' | 'retired-peer' | 'other-peer'
    /** The message's `kind` (`hello`, `description`, …). */
    kind: string
  }
  /** Something unexpected went wrong. The peer keeps running. */
  error: PolitelyError
}

/**
 * Names of the events in {@link PeerEvents}.
 *
 * @example
 * const names: PeerEventName[] = ['open', 'close', 'reconnecting', 'reconnected', 'rebuild']
 * for (const name of names) peer.on(name, (event) => console.log(name, event))
 */
export type PeerEventName = keyof PeerEvents
