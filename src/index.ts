// The public browser entry. The pure helpers behind it (the collision decision,
// session pairing) are tested from src/ and stay internal, so they can change.
export type { Payload } from './channels'
export type { ErrorCode } from './errors'
export { PolitelyError } from './errors'
export type { CloseReason, MessageEvent, PeerEventName, PeerEvents, PeerState, RebuildReason } from './events'
export type { ChannelOptions, PeerOptions } from './peer'
export { DEFAULTS, PerfectNegotiationPeer } from './peer'
export type { ByeMessage, CandidateInit, CandidateMessage, DescriptionMessage, HelloMessage, SignalMessage } from './protocol'
export { isValidPeerId, parseSignal } from './protocol'
export type { BroadcastChannelSignalerOptions } from './signalers/broadcast-channel'
export { BroadcastChannelSignaler } from './signalers/broadcast-channel'
export type { Signaler } from './signalers/signaler'
