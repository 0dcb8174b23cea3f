import type { PolitelyError } from './errors'
import type { SignalMessage } from './protocol'

/**
 * Where a peer is in its life:
 * - `idle`: created, `start()` not called yet;
 * - `waiting`: signaling is up, no remote peer known;
 * - `connecting`: a remote is known, negotiation and ICE are under way;
 * - `connected`: every data channel is open;
 * - `closed`: `close()` was called; final.
 */
export type PeerState = 'idle' | 'waiting' | 'connecting' | 'connected' | 'closed'

/**
 * Why the data channels closed:
 * - `remote-left`: the remote said `bye` (closed its peer or its page);
 * - `remote-replaced`: a new instance of the remote appeared (it reloaded);
 * - `remote-restarted`: the remote rebuilt its connection;
 * - `stalled`: the connection made no progress in time and is being rebuilt;
 * - `failed`: ICE failed and the connection is being rebuilt;
 * - `connection-lost`: the channels closed under us (the remote closed its
 *   connection, or the transport died); a rebuild follows;
 * - `local-close`: `close()` was called here.
 */
export type CloseReason =
  | 'remote-left'
  | 'remote-replaced'
  | 'remote-restarted'
  | 'stalled'
  | 'failed'
  | 'connection-lost'
  | 'local-close'

/** Why a connection was thrown away and built anew. */
export type RebuildReason = 'remote-replaced' | 'remote-restarted' | 'remote-left' | 'stalled' | 'failed'

/** A message received on a data channel. Binary data always arrives as an `ArrayBuffer`. */
export interface MessageEvent {
  data: string | ArrayBuffer
  /** Name of the channel it came on: `'default'` or a key of the `channels` option. */
  channel: string
}

/**
 * Every event a {@link PerfectNegotiationPeer} emits, with its payload.
 * This one map types `on()`, the emitter and the documentation.
 */
export type PeerEvents = {
  /** Every data channel is open: `send()` goes straight to the wire. Fires again after each reconnect. */
  open: { remoteId: string }
  /** A message arrived. */
  message: MessageEvent
  /** The data channels closed; `send()` queues until the next `open`. */
  close: { reason: CloseReason }
  /** The peer moved to another {@link PeerState}. */
  state: { state: PeerState; previous: PeerState }
  /** A remote media track arrived. */
  track: { track: MediaStreamTrack; streams: readonly MediaStream[] }
  /** A remote peer was paired with this one (first contact, or a new instance after a reload). */
  remote: { id: string; session: number }
  /** The RTCPeerConnection was replaced by a fresh one. */
  rebuild: { reason: RebuildReason; session: number }
  /** A signaling message was sent, or received and accepted (validated, not stale): for timelines and debugging. */
  signal: { direction: 'in' | 'out'; message: SignalMessage }
  /**
   * A signaling message was dropped as an expected race (it was meant for a
   * connection that no longer exists). Not an error; useful for debugging.
   */
  dropped: { code: 'stale-session' | 'retired-peer' | 'other-peer'; kind: string }
  /** Something unexpected went wrong. The peer keeps running. */
  error: PolitelyError
}

/** Names of the events in {@link PeerEvents}. */
export type PeerEventName = keyof PeerEvents
