// One managed channel of a ReliablePeer: a sending half (sender.ts) and a receiving half
// (receiver.ts), and the frames that concern both (SYNC). It knows nothing of WebRTC: the peer
// hands it what arrives and lends it a `write` that reaches the core and an `emit`.
// (Closures rather than classes: their state stays private and minifies to a third.)
import type { Payload } from '../channels.js'
import { PolitelyError } from '../errors.js'
import { ACK, DATA, decode, encode, join, SYNC, split } from './frames.js'
import { createReceiver } from './receiver.js'
import { createSender } from './sender.js'
import type { StreamEmit } from './types.js'

/** Bounds of one stream. */
export interface StreamLimits {
  /** Bytes of frames handed over and not acknowledged; past it, sending waits. */
  windowSize: number
  /** Largest message, either way. */
  maxTransferSize: number
  /** Payload bytes per chunk for a message that starts now (a new connection may have a lower limit). */
  chunkSize(): number
}

/** Hands a frame to the core; settles when it went to the channel (below the high-water mark). */
export type Write = (frame: ArrayBuffer) => Promise<void> | void

/** One managed channel, as its peer drives it. */
export interface Stream {
  /** Queues a message; settles when its last chunk was handed over, or it was aborted, or the peer closed. */
  send(data: Payload, signal?: AbortSignal): Promise<void>
  /** Handles what came on this channel of connection `pc`. */
  receive(data: string | ArrayBuffer, pc: unknown): void
  /** The channel opened on connection `pc`: tell the remote where we are. */
  open(pc: unknown): void
  /** The channel closed: nothing more is handed over until the next SYNC. */
  close(): void
  /** The peer closed: every message not handed over fails with `closed`. */
  dispose(): void
}

/** The stream of one managed channel: `write` reaches the core's `send()`, `emit` the peer's own events. */
export function createStream(channel: string, nonce: number, limits: StreamLimits, write: Write, emit: StreamEmit): Stream {
  /** A SYNC or an ACK. One the core refuses (the peer closed) is not needed any more. */
  const control = (frame: ArrayBuffer) => {
    try {
      write(frame)
    } catch {}
  }
  const sender = createSender(channel, nonce, limits, write, emit)
  const receiver = createReceiver(channel, limits.maxTransferSize, emit, control)
  return {
    send: sender.send,

    receive(data, pc) {
      const frame = decode(data)
      const [high = 0, low = 0, seenHigh = 0, seenLow = 0, start = 0, received = 0] = frame?.fields ?? []
      if (frame?.type === DATA) receiver.accept(frame)
      else if (frame?.type === ACK) sender.acknowledge(high)
      else if (frame?.type === SYNC) {
        // Who the remote is and where its stream starts; then where it is in ours.
        receiver.meet(join(high, low), start)
        sender.sync(join(seenHigh, seenLow), received, pc)
      } else emit('error', new PolitelyError('invalid-frame', 'Not a reliable frame: dropped'))
    },

    open(pc) {
      control(encode(SYNC, [...split(nonce), ...split(receiver.peer()), sender.base(), receiver.expected() - 1]))
      sender.open(pc)
    },

    close: sender.close,

    dispose() {
      sender.dispose()
      receiver.dispose()
    },
  }
}
