import type { SignalMessage } from '../protocol'

/**
 * A signaling transport. The peer validates everything it receives, so an
 * adapter hands over what arrived as it is (usually a JSON string): incoming
 * data is `unknown` on purpose.
 *
 * Adapters own their transport's reconnection and queue what is sent while
 * it is down, so the peer never sees a gap.
 */
export interface Signaler {
  /** Resolves when messages can flow both ways. */
  connect(): Promise<void>
  /** Sends one message to the room (queued while (re)connecting). */
  send(message: SignalMessage): void
  /** Registers a handler for incoming messages; returns its unsubscribe function. */
  subscribe(handler: (message: unknown) => void): () => void
  /** Stops for good. */
  close(): void
}
