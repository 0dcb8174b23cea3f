import type { PolitelyError } from '../errors.js'
import type { SignalMessage } from '../protocol.js'

/**
 * What a signaler tells its peer besides messages.
 *
 * @example
 * // In a Signaler over a WebSocket that cannot resume: connect(peerId, events) wires it up.
 * socket.addEventListener('close', () => events.online?.(false))
 * socket.addEventListener('open', () => { events.online?.(true); events.reset() }) // messages may have been missed
 */
export interface SignalerEvents {
  /** Something failed that the signaler could not fix by retrying (it keeps running). */
  error(error: PolitelyError): void
  /**
   * The transport came back but could not resume where it left off: messages
   * may have been missed. The peer announces itself again.
   */
  reset(): void
  /**
   * The transport went down (`false`) or is up again (`true`). While it is
   * down, a renegotiation of an open connection waits for it instead of
   * counting as stalled. Adapters that never go down need not call it.
   */
  online?(up: boolean): void
}

/**
 * A signaling transport. The peer validates everything it receives, so an
 * adapter hands over what arrived as it is (a JSON string, or a value it had
 * to parse anyway): incoming data is `unknown` on purpose.
 *
 * Adapters own their transport's reconnection and queue what is sent while
 * it is down, so the peer never sees a gap.
 *
 * @example
 * // Over an app's own open WebSocket, whose server relays each text to the room.
 * const signaler: Signaler = {
 *   connect: async () => {},
 *   send: (message) => socket.send(JSON.stringify(message)),
 *   subscribe: (handler) => {
 *     const listener = (event: MessageEvent) => handler(event.data)
 *     socket.addEventListener('message', listener)
 *     return () => socket.removeEventListener('message', listener)
 *   },
 *   close: () => socket.close(),
 * }
 */
export interface Signaler {
  /**
   * Starts (or resumes) the transport as peer `peerId`. Resolves when
   * messages can flow both ways.
   */
  connect(peerId: string, events: SignalerEvents): Promise<void>
  /** Sends one message to the room (queued while (re)connecting). */
  send(message: SignalMessage): void
  /** Registers a handler for incoming messages; returns its unsubscribe function. */
  subscribe(handler: (message: unknown) => void): () => void
  /** Stops for good. Messages already handed to `send()` are still delivered if the transport allows. */
  close(): void
  /**
   * ICE servers for the next connection (optional): asked before each RTCPeerConnection is built
   * when the app's `rtcConfig` has no `iceServers`. A list (or undefined: none) builds it at once;
   * a promise makes it wait. The server adapters give the TURN credentials the server minted.
   */
  iceServers?(): RTCIceServer[] | undefined | Promise<RTCIceServer[] | undefined>
}
