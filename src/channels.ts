import { PolitelyError } from './errors'

/** What `send()` accepts. Binary data arrives on the other side as an `ArrayBuffer`. */
export type Payload = string | ArrayBuffer | ArrayBufferView | Blob

type Sendable = string | ArrayBuffer | ArrayBufferView

/** Bytes a channel may hold unsent before we wait for it to drain. */
const HIGH_WATER_MARK = 1024 * 1024

/** Bounds of one channel's outgoing queue. */
export interface QueueLimits {
  /** Most messages held while the channel is not open. */
  maxQueuedMessages: number
  /** Most bytes held while the channel is not open. */
  maxQueuedBytes: number
  /** Largest single message, in bytes. */
  maxMessageSize: number
}

/**
 * The outgoing side of one named channel. It outlives the RTCDataChannels
 * it writes to: messages sent while no channel is open wait here, in order,
 * and go out when the next one opens (after a rebuild too).
 */
export class OutboundQueue {
  /** A Blob waits here as the promise of its bytes: not every stack sends Blobs, and order must hold. */
  #entries: Array<{ data?: Sendable; blob?: Promise<ArrayBuffer>; size: number }> = []
  #bytes = 0
  #channel?: RTCDataChannel
  #drain?: ReturnType<typeof setTimeout>
  readonly #limits: QueueLimits
  readonly #onError: (error: PolitelyError) => void

  constructor(limits: QueueLimits, onError: (error: PolitelyError) => void) {
    this.#limits = limits
    this.#onError = onError
  }

  /** Queues one message and sends what can be sent. Throws a `PolitelyError` instead of losing it. */
  push(data: Payload): void {
    const isString = typeof data === 'string'
    // A string is measured by its length: the byte count needs an encode, and the wire has its own bound.
    const size = isString ? data.length : ((data as ArrayBuffer)?.byteLength ?? (data as Blob)?.size)
    if (typeof size !== 'number') throw new PolitelyError('invalid-message', 'send() takes string, ArrayBuffer, view, Blob')
    const { maxMessageSize, maxQueuedMessages, maxQueuedBytes } = this.#limits
    if (size > maxMessageSize) throw new PolitelyError('message-too-large', `${size} bytes > maxMessageSize`)
    if (this.#entries.length >= maxQueuedMessages || this.#bytes + size > maxQueuedBytes) {
      throw new PolitelyError('queue-full', `Send queue full: ${this.#entries.length} messages`)
    }
    const isBlob = !isString && !('byteLength' in data)
    const entry = isBlob ? { blob: (data as Blob).arrayBuffer(), size } : { data: data as Sendable, size }
    this.#entries.push(entry)
    this.#bytes += size
    entry.blob?.then(
      (buffer) => {
        Object.assign(entry, { data: buffer, blob: undefined })
        this.#flush()
      },
      (cause) => {
        this.#remove(entry)
        this.#onError(new PolitelyError('invalid-message', 'Reading a Blob failed', { cause }))
        this.#flush()
      },
    )
    this.#flush()
    // Waiting data is copied: the caller may reuse its buffer as soon as send() returns,
    // as RTCDataChannel.send() allows.
    if (entry.data && typeof entry.data !== 'string' && this.#entries.includes(entry)) {
      const data = entry.data
      entry.data = toArrayBuffer(ArrayBuffer.isView(data) ? data : new Uint8Array(data))
    }
  }

  /** Starts writing to an open channel (until it closes: only an open channel is written to). */
  attach(channel: RTCDataChannel): void {
    this.#channel = channel
    channel.bufferedAmountLowThreshold = HIGH_WATER_MARK / 2
    channel.addEventListener('bufferedamountlow', () => this.#flush())
    this.#flush()
  }

  #remove(entry: { size: number }): void {
    this.#entries.splice(this.#entries.indexOf(entry as never), 1)
    this.#bytes -= entry.size
  }

  #flush(): void {
    const channel = this.#channel
    let head = this.#entries[0]
    while (channel?.readyState === 'open' && head?.data !== undefined) {
      // Past the high-water mark a stack drops or refuses what it is given: wait for it to drain.
      // (`bufferedamountlow` resumes us; the timer covers stacks that never fire it.)
      if (channel.bufferedAmount > HIGH_WATER_MARK) {
        clearTimeout(this.#drain)
        this.#drain = setTimeout(() => this.#flush(), 20)
        return
      }
      try {
        channel.send(head.data as string)
      } catch (cause) {
        // The channel closed under us: keep the message for the next one.
        if (channel.readyState !== 'open') return
        this.#onError(new PolitelyError('message-too-large', 'Channel refused a message', { cause }))
      }
      this.#remove(head)
      head = this.#entries[0]
    }
  }
}

/** Turns whatever binary type a stack delivers (Node Buffers included) into an ArrayBuffer. */
export function toArrayBuffer(data: string | ArrayBuffer | ArrayBufferView): string | ArrayBuffer {
  return ArrayBuffer.isView(data) ? (data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer) : data
}
