// The receiving half of a managed channel: in-order acceptance, coalesced ACKs, reassembly.
import { PolitelyError } from '../errors.js'
import { ABORT, ACK, encode, type Frame, LAST, STRING } from './frames.js'
import type { StreamEmit } from './types.js'

/** Accepted frames that make an ACK go out at once. */
const ACK_EVERY = 16
/** Longest an accepted frame waits for its ACK (ms). */
const ACK_DELAY = 20

const decoder = new TextDecoder()

/** What the stream asks of its receiving half. */
export interface Receiver {
  /** A DATA frame: accepted if it is the next one of the known sender. */
  accept(frame: Frame): void
  /** The remote instance `remote` said where its stream starts (`start`, in its SYNC); a new one resets what we had. */
  meet(remote: number, start: number): void
  /** The remote instance we receive from (0: none yet), and the next frame we expect of it: our SYNC tells them. */
  peer(): number
  expected(): number
  dispose(): void
}

/** The receiving half: `emit` reaches the peer's own events, `control` sends an ACK. */
export function createReceiver(
  channel: string,
  maxTransferSize: number,
  emit: StreamEmit,
  control: (frame: ArrayBuffer) => void,
): Receiver {
  let peer = 0
  let expected = 0
  /** The message being reassembled; undefined while a too-large one is skipped. */
  let parts: Uint8Array[] | undefined = []
  let partBytes = 0
  let unackedIn = 0
  let ackTimer: ReturnType<typeof setTimeout> | undefined

  function ack(): void {
    clearTimeout(ackTimer)
    ackTimer = undefined
    unackedIn = 0
    control(encode(ACK, [expected - 1]))
  }

  return {
    accept({ fields: [seq], flags, payload }) {
      // Only the next frame of a known sender: a duplicate, or one after a gap (frames lost with a
      // dead connection), is dropped; the sender resends from what our SYNC says we have.
      if (!peer || seq !== expected) return
      expected = (seq + 1) >>> 0
      if (++unackedIn >= ACK_EVERY) ack()
      else ackTimer ??= setTimeout(ack, ACK_DELAY)
      if (flags & ABORT) parts = []
      else if (parts) {
        partBytes += payload.length
        parts.push(payload)
        if (partBytes > maxTransferSize) {
          parts = undefined
          emit('error', new PolitelyError('message-too-large', 'Incoming message over maxTransferSize: dropped'))
        }
      }
      if (flags & LAST) {
        if (parts) emit('message', { data: concat(parts, flags & STRING), channel })
        parts = []
      }
      if (parts?.length === 0) partBytes = 0
    },

    meet(remote, start) {
      if (remote === peer) return
      // A new remote instance (it reloaded): its stream starts at its base; what we had of it is gone.
      peer = remote
      expected = start
      parts = []
      partBytes = 0
    },

    peer: () => peer,
    expected: () => expected,

    dispose() {
      clearTimeout(ackTimer)
    },
  }
}

function concat(parts: Uint8Array[], isString: number): string | ArrayBuffer {
  const whole = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0))
  let offset = 0
  for (const part of parts) {
    whole.set(part, offset)
    offset += part.length
  }
  return isString ? decoder.decode(whole) : whole.buffer
}
