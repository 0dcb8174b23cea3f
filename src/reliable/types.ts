import type { ErrorCode, PolitelyError } from '../errors.js'
import type { MessageEvent, PeerEvents } from '../events.js'
import type { PeerOptions } from '../peer.js'

/**
 * The codes a {@link ReliablePeer} reports: the core's {@link ErrorCode}, where two are its own:
 * - `aborted`: `send()`'s `signal` aborted before the whole message was handed over;
 * - `invalid-frame`: the remote sent something on a managed channel that is not a frame
 *   (is it a `ReliablePeer` too?); it was dropped.
 *
 * @example
 * peer.on('error', (error) => {
 *   const code: ReliableErrorCode = error.code
 *   if (code === 'invalid-frame') console.warn('the remote is not a ReliablePeer')
 * })
 */
export type ReliableErrorCode = ErrorCode

/**
 * Options of {@link ReliablePeer}: the core's, and three of its own.
 *
 * @example
 * const peer = new ReliablePeer({
 *   signaler: new BroadcastChannelSignaler({ room: 'files' }),
 *   windowSize: 16 * 1024 * 1024, // more in flight, for a fast link with a long round trip
 *   maxTransferSize: 100 * 1024 * 1024, // refuse (and never reassemble) anything bigger
 * })
 */
export interface ReliablePeerOptions extends PeerOptions {
  /**
   * Payload bytes per chunk. Default: 64 KiB, or the connection's `sctp.maxMessageSize` if lower,
   * minus the 6-byte header; never more than `maxMessageSize` minus the header.
   */
  chunkSize?: number
  /** Bytes sent and not yet acknowledged, per channel; past it, sending waits. Default 8 MiB. */
  windowSize?: number
  /** Largest message `send()` accepts, and the receiver reassembles. Default 1 GiB. */
  maxTransferSize?: number
}

/**
 * Per-send options: the channel, and an `AbortSignal` that withdraws the message.
 *
 * @example
 * const controller = new AbortController()
 * cancelButton.onclick = () => controller.abort() // then nothing of the file is delivered
 * await peer.send(await file.arrayBuffer(), { channel: 'files', signal: controller.signal })
 */
export interface SendOptions {
  /** The channel to send on: `'default'`, or a key of the `channels` option. Default `'default'`. */
  channel?: string
  /**
   * Withdraws the message when it aborts before its last chunk went out: `send()` rejects with
   * `aborted` and nothing of it is delivered. Ignored on pass-through channels.
   */
  signal?: AbortSignal
}

/**
 * How much of a message bigger than one chunk went to the transport.
 *
 * @example
 * peer.on('progress', ({ channel, sent, total }: TransferProgress) => {
 *   if (channel === 'files') bar.value = sent / total // the last one has sent === total
 * })
 */
export interface TransferProgress {
  /** The channel the message goes on. */
  channel: string
  /** Bytes of the message handed over so far. */
  sent: number
  /** Bytes of the whole message (UTF-8 bytes for a string). */
  total: number
}

/**
 * Every event a {@link ReliablePeer} emits: the core's, and `progress`. Its `error` events may
 * also carry a {@link ReliableErrorCode}.
 *
 * @example
 * const log = (name: keyof ReliablePeerEvents) => peer.on(name, (event) => console.log(name, event))
 * for (const name of ['open', 'close', 'progress', 'error'] as const) log(name)
 */
export type ReliablePeerEvents = PeerEvents & {
  /** A chunk of a message bigger than one chunk was handed to the transport. */
  progress: TransferProgress
}

/** The events a {@link ReliablePeer} emits itself (the rest come from the core). */
export type StreamEvents = { message: MessageEvent; progress: TransferProgress; error: PolitelyError }

/** How a stream reports its events (a peer's emitter, or a room naming the member). @internal */
export type StreamEmit = <K extends keyof StreamEvents>(type: K, event: StreamEvents[K]) => void
