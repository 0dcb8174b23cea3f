// The sending half of a managed channel: sequence numbers, a resend buffer bounded by a
// window, chunking, and where to resume after a SYNC.
import type { Payload } from '../channels.js'
import { PolitelyError } from '../errors.js'
import { ABORT, DATA, encode, LAST, STRING } from './frames.js'
import type { StreamLimits, Write } from './stream.js'
import type { StreamEmit } from './types.js'

/** One message on its way out. */
interface Outgoing {
  bytes: Uint8Array
  string: boolean
  /** Payload bytes per chunk and the number of chunks: fixed when it starts, so a resent frame is the same frame. */
  chunk: number
  chunks: number
  /** Sequence number of its first frame, and how many frames got one so far. */
  first: number
  count: number
  /** Index of its ABORT frame, once it has one. */
  cut?: number
  aborted?: boolean
  settle(error?: PolitelyError): void
}

/** What the stream asks of its sending half. */
export interface Sender {
  /** Queues a message; settles when its last chunk was handed over, or it was aborted, or the peer closed. */
  send(data: Payload, signal?: AbortSignal): Promise<void>
  /** The remote acknowledged every frame up to `wire` (a u32 from the wire). */
  acknowledge(wire: number): void
  /** The remote's SYNC, from connection `pc`: it knows us as `seen` and has everything up to `received`. */
  sync(seen: number, received: number, pc: unknown): void
  /** Our channel opened on connection `pc` (a SYNC that came on it first is applied now). */
  open(pc: unknown): void
  /** First frame of the oldest message we hold: where a new remote instance starts receiving. */
  base(): number
  /** The channel closed: nothing more is handed over until the next SYNC. */
  close(): void
  /** The peer closed: every message not handed over fails with `closed`. */
  dispose(): void
}

const frames = (message: Outgoing) => (message.cut === undefined ? message.chunks : message.cut + 1)
const encoder = new TextEncoder()

/** The sending half: `write` reaches the core's `send()`, `emit` the peer's own events. */
export function createSender(channel: string, nonce: number, limits: StreamLimits, write: Write, emit: StreamEmit): Sender {
  // Sequence numbers are plain integers here (2⁵³ frames never run out), u32 on the wire.
  /** Messages with frames not yet acknowledged, oldest first; the last one may still be chunked. */
  const held: Outgoing[] = []
  /** Messages not started. */
  let queue: Outgoing[] = []
  let next = 0
  let acked = -1
  /** Highest frame ever handed over: only a first handover reports progress. */
  let handed = -1
  /** Next frame to hand over in this pass (a SYNC starts a new pass). */
  let cursor = 0
  /** Sizes of the frames after `acked`, by sequence number. */
  const sizes = new Map<number, number>()
  let unacked = 0
  /** Bumped whenever the channel closes or a SYNC starts a new pass: a pump of an older one stops. */
  let gen = 0
  let pumping = -1
  let synced = false
  /** The connection our channel is open on, and a SYNC that came on some connection before our `open`. */
  let current: unknown
  let early: [seen: number, received: number, pc: unknown] | undefined

  /** First frame of the oldest message we hold: where a new remote instance starts receiving. */
  const base = () => held[0]?.first ?? next

  /** The full sequence number of a u32 from the wire: the one nearest to what we know. */
  const full = (wire: number) => acked + ((wire - acked) | 0)

  const kick = () => {
    if (synced && pumping !== gen) void pump(gen)
  }

  /** Hands frames to the core one at a time, each once the previous one went to the channel. */
  async function pump(pass: number): Promise<void> {
    pumping = pass
    while (gen === pass) {
      // Acknowledgements may have freed what this pass was about to resend.
      cursor = Math.max(cursor, base())
      const seq = cursor
      let message: Outgoing | undefined
      let index = 0
      const fresh = seq === next
      if (!fresh) message = held.find((m) => (index = seq - m.first) >= 0 && index < m.count)
      else {
        if (unacked >= limits.windowSize) break
        message = held.at(-1)
        if (!message || message.count === frames(message)) {
          message = queue.shift()
          if (!message) break
          message.first = seq
          message.chunk = limits.chunkSize()
          message.chunks = Math.ceil(message.bytes.length / message.chunk) || 1
          held.push(message)
        }
        if (message.aborted) message.cut = message.count
        index = message.count++
      }
      const { bytes, chunk, chunks, string, cut } = message!
      const start = index * chunk
      const last = index === chunks - 1
      const frame =
        index === cut
          ? encode(DATA, [seq], ABORT)
          : encode(DATA, [seq], (string ? STRING : 0) | (last ? LAST : 0), bytes.subarray(start, start + chunk))
      if (fresh) {
        next++
        sizes.set(seq, frame.byteLength)
        unacked += frame.byteLength
      }
      cursor = seq + 1
      try {
        await write(frame)
      } catch {
        // Refused (the peer closed): nothing more goes out.
        break
      }
      // First handover of a chunk: progress (unless aborted), and the promise once it is the last.
      if (seq > handed) {
        handed = seq
        if (chunks > 1 && !message!.aborted) {
          emit('progress', { channel, sent: Math.min(start + chunk, bytes.length), total: bytes.length })
        }
        if (last) message!.settle()
      }
    }
    if (pumping === pass) pumping = -1
  }

  function synchronize(seen: number, received: number): void {
    early = undefined
    // No pump may start before the cursor is set (acknowledging kicks).
    synced = false
    gen++
    const known = seen === nonce
    const resume = full(received) + 1
    if (known) acknowledge(received)
    // A remote that knows us resumes after what it has (a message cut by the rebuild goes on where it
    // stopped); a new instance gets every message we hold from its first frame (at least once).
    cursor = known && resume > base() && resume <= next ? resume : base()
    synced = true
    kick()
  }

  function acknowledge(wire: number): void {
    const seq = full(wire)
    // Cumulative: an old or impossible ACK says nothing new.
    if (seq >= next) return
    while (acked < seq) {
      unacked -= sizes.get(++acked)!
      sizes.delete(acked)
    }
    while (held[0] && held[0].count === frames(held[0]) && held[0].first + held[0].count <= seq + 1) held.shift()
    kick()
  }

  function close(): void {
    current = early = undefined
    synced = false
    gen++
  }

  return {
    send(data, signal) {
      const string = typeof data === 'string'
      if (!string && !((data as ArrayBuffer)?.byteLength >= 0)) throw new PolitelyError('invalid-message', 'Not sendable')
      // Copied: it is resent after a rebuild, long after the caller may have reused its buffer.
      const bytes = string
        ? encoder.encode(data)
        : new Uint8Array(
            ArrayBuffer.isView(data) ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data.slice(0),
          )
      if (bytes.length > limits.maxTransferSize) throw new PolitelyError('message-too-large', 'Over maxTransferSize')
      if (signal?.aborted) return Promise.reject(aborted(signal))
      const message = { bytes, string, count: 0 } as Outgoing
      const promise = new Promise<void>((resolve, reject) => {
        const abort = () => {
          const index = queue.indexOf(message)
          if (index >= 0) queue.splice(index, 1)
          // Its last chunk went out: it will be delivered, so it is not aborted.
          else if (message.count === message.chunks) return
          // Its next frame is an ABORT, so the receiver drops what it has of it.
          else message.aborted = true
          message.settle(aborted(signal!))
          kick()
        }
        message.settle = (error) => {
          signal?.removeEventListener('abort', abort)
          error ? reject(error) : resolve()
        }
        signal?.addEventListener('abort', abort)
      })
      // Like the core's: awaiting it is optional; a message that close() drops must not be an unhandled rejection.
      promise.catch(() => {})
      queue.push(message)
      kick()
      return promise
    },

    acknowledge,

    sync(seen, received, pc) {
      // Channels open one by one: the remote's SYNC may come before our `open`. It is kept for
      // its connection only; one from a connection that died is dropped with it.
      if (pc === current) synchronize(seen, received)
      else early = [seen, received, pc]
    },

    open(pc) {
      current = pc
      if (early && early[2] === pc) synchronize(early[0], early[1])
    },

    base,
    close,

    dispose() {
      close()
      const error = new PolitelyError('closed', 'The peer closed')
      for (const message of [...held, ...queue]) message.settle(error)
      queue = []
    },
  }
}

function aborted(signal: AbortSignal): PolitelyError {
  return new PolitelyError('aborted', 'Aborted', { cause: signal.reason })
}
