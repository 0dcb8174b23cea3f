/**
 * The browser SDK: `PerfectNegotiationPeer`, the BroadcastChannel signaler, the protocol and errors.
 *
 * @module politely
 */
// The public browser entry. The pure helpers behind it (the collision decision,
// session pairing) are tested from src/ and stay internal, so they can change.
export type { Payload } from './channels.js'
export type { ErrorCode } from './errors.js'
export { PolitelyError } from './errors.js'
export type {
  CloseReason,
  MessageEvent,
  PeerEventName,
  PeerEvents,
  PeerState,
  RebuildReason,
  ReconnectReason,
} from './events.js'
export type { ChannelOptions, PeerOptions, RtcConfig } from './peer.js'
export { DEFAULTS, PerfectNegotiationPeer } from './peer.js'
export type { ByeMessage, CandidateInit, CandidateMessage, DescriptionMessage, HelloMessage, SignalMessage } from './protocol.js'
export { isValidPeerId, parseSignal } from './protocol.js'
export { backoff, type ReconnectPolicy } from './reconnect.js'
export type { BroadcastChannelSignalerOptions } from './signalers/broadcast-channel.js'
export { BroadcastChannelSignaler } from './signalers/broadcast-channel.js'
export type { Signaler, SignalerEvents } from './signalers/signaler.js'
