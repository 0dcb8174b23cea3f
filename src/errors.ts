/**
 * Stable error codes. Match on `error.code`, never on the message text:
 * messages are for people and may be reworded, codes are part of the API.
 *
 * @example
 * const messages: Partial<Record<ErrorCode, string>> = { 'room-full': 'This room is full', forbidden: 'You may not join' }
 * peer.start().catch((error) => show((error instanceof PolitelyError && messages[error.code]) || 'Could not connect'))
 */
export type ErrorCode =
  /** A signaling message was not valid JSON or did not have the protocol's shape. */
  | 'invalid-signal'
  /** A signaling message was larger than `maxSignalBytes`. */
  | 'signal-too-large'
  /** A signaling message had a `kind` this version does not know. */
  | 'unknown-kind'
  /** `send()` was called while the outgoing queue was full. */
  | 'queue-full'
  /** `send()` was given a message larger than the channel can carry. */
  | 'message-too-large'
  /** `send()` named a channel that was not declared in the options. */
  | 'unknown-channel'
  /** `send()` was given something that is not a string, ArrayBuffer, view or Blob. */
  | 'invalid-message'
  /** A WebRTC operation failed in a way that is not an expected race. */
  | 'negotiation-failed'
  /**
   * `rtcConfig.iceServers` (a function) threw, rejected, or the signaler could not get the server's:
   * the connection is built again, as the `reconnectDelay` policy says (`reconnecting`, `failed`).
   */
  | 'ice-servers-failed'
  /** The signaler failed to connect or to deliver (a refusal without a code of its own below: see `status`). */
  | 'signaling-failed'
  /** The server's `authorize` hook refused this peer (HTTP 403). Final: the signaler stops. */
  | 'forbidden'
  /** The server does not accept pages of this origin (HTTP 403; see its `allowedOrigins`). Final. */
  | 'origin-not-allowed'
  /** The room has all the peers it may (the server's `maxPeersPerRoom`, or `maxPeers` asked by a client). Final. */
  | 'room-full'
  /** Another connection holds this peer id (HTTP 409). Final. */
  | 'id-taken'
  /** The server holds all the rooms it may (HTTP 503). Retried with backoff. */
  | 'too-many-rooms'
  /** This client address holds all the connections the server allows one address (HTTP 429). Retried. */
  | 'too-many-connections'
  /** Too many messages, or new rooms, too fast (HTTP 429). Retried after `Retry-After`. */
  | 'rate-limited'
  /** The server (or its hub) cannot serve now, or cannot be reached before it ever answered (HTTP 503). Retried. */
  | 'unavailable'
  /** Another connection with this signaler's secret kept taking its place (three times in a minute). Final. */
  | 'replaced'
  /** `politely/room`: `send(…, { to })` names no member of the room. */
  | 'unknown-peer'
  /** `removeTrack()`, `replaceTrack()` or `mute()` named a track that is not sent now. */
  | 'unknown-track'
  /** `replaceTrack()` was given a track of another kind (or none: mute instead). */
  | 'invalid-track'
  /**
   * The options given to a constructor are not usable; or, as an `error` event, the stack refused
   * `rtcConfig` when a connection was made (the connection is built again, as a failed one is).
   */
  | 'invalid-options'
  /** The peer was used after `close()`, or closed before a queued message was sent. */
  | 'closed'
  /** `politely/reliable`: a send was aborted by its `AbortSignal` before it was fully handed over. */
  | 'aborted'
  /** `politely/reliable`: a message on a managed channel was not a reliable frame (the remote is not a ReliablePeer). */
  | 'invalid-frame'

/**
 * The one error class of politely. Every error it reports or throws is a
 * `PolitelyError` with a stable {@link ErrorCode}, and `cause` when it wraps
 * an error from the platform.
 *
 * @example
 * peer.on('error', (error) => {
 *   if (error.code === 'queue-full') showBusy()
 * })
 */
export class PolitelyError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode
  /** A refusal by a signaling server: its HTTP status (a WebSocket's close code 4000 + status tells it too). */
  declare readonly status?: number
  /** A refusal by a signaling server: the code it gave (`room-full`, `bad-request`, …). */
  declare readonly serverCode?: string

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; status?: number; serverCode?: string }) {
    super(message)
    this.name = 'PolitelyError'
    this.code = code
    // Copied by hand: the `cause` option of the Error constructor is ES2022 and
    // the package targets older engines too.
    Object.assign(this, options)
  }
}
