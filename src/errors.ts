/**
 * Stable error codes. Match on `error.code`, never on the message text:
 * messages are for people and may be reworded, codes are part of the API.
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
  /** The signaler failed to connect or to deliver. */
  | 'signaling-failed'
  /** The options given to a constructor are not usable. */
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

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message)
    this.name = 'PolitelyError'
    this.code = code
    // Set by hand: the `cause` option of the Error constructor is ES2022 and
    // the package targets older engines too.
    if (options) (this as { cause?: unknown }).cause = options.cause
  }
}
