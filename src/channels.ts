import { PolitelyError } from './errors.js'

/**
 * What `send()` accepts. Binary data arrives on the other side as an
 * `ArrayBuffer`. (A Blob: `send(await blob.arrayBuffer())`; not every stack
 * sends Blobs, and reading one here would cost every app the bytes.)
 *
 * @example
 * const payload: Payload = new TextEncoder().encode('hi') // a string, an ArrayBuffer or any view of one
 * await peer.send(payload)
 * await peer.send(await blob.arrayBuffer()) // a Blob: read it first
 */
export type Payload = string | ArrayBuffer | ArrayBufferView

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

interface Entry {
  data: Payload
  size: number
  sent(): void
  failed(error: PolitelyError): void
}

/** A negotiated data channel, identical on both sides. */
export interface ChannelSpec {
  name: string
  id: number
  init: RTCDataChannelInit
}

/** What a channel tells its connection. */
export interface ChannelHooks {
  /** The RTCDataChannel opened (and this channel writes to it now). */
  opened(): void
  /** It closed. */
  closed(): void
  /** A message arrived on it. */
  received(data: string | ArrayBuffer): void
}

/**
 * One named channel, both directions, across connections. It outlives the
 * RTCDataChannels it opens on each connection: messages sent while none is
 * open wait here, in order, and go out when the next one opens (after a
 * rebuild too); what arrives on them is handed to the connection.
 */
export class Channel {
  #entries: Entry[] = []
  #bytes = 0
  #channel?: RTCDataChannel
  #held = false
  #drain?: ReturnType<typeof setTimeout>
  readonly #limits: QueueLimits
  readonly #onError: (error: PolitelyError) => void

  constructor(limits: QueueLimits, onError: (error: PolitelyError) => void) {
    this.#limits = limits
    this.#onError = onError
  }

  /**
   * Queues one message and sends what can be sent. Throws a `PolitelyError`
   * instead of losing it; the promise resolves once it is handed to the
   * channel below the high-water mark.
   */
  push(data: Payload): Promise<void> {
    const isString = typeof data === 'string'
    // A string is measured by its length: the byte count needs an encode, and the wire has its own bound.
    const size = isString ? data.length : (data as ArrayBuffer)?.byteLength
    if (typeof size !== 'number') throw new PolitelyError('invalid-message', 'send() takes a string, ArrayBuffer or view')
    const { maxMessageSize, maxQueuedMessages, maxQueuedBytes } = this.#limits
    if (size > maxMessageSize) throw new PolitelyError('message-too-large', `${size} bytes > maxMessageSize`)
    if (this.#entries.length >= maxQueuedMessages || this.#bytes + size > maxQueuedBytes) {
      throw new PolitelyError('queue-full', `${this.#entries.length} messages waiting`)
    }
    const entry = { data, size } as Entry
    const handed = new Promise<void>((resolve, reject) => {
      entry.sent = resolve
      entry.failed = reject
    })
    // Awaiting it is optional: a message that close() drops must not be an unhandled rejection.
    handed.catch(() => {})
    this.#entries.push(entry)
    this.#bytes += size
    this.#flush()
    // Waiting data is copied: the caller may reuse its buffer as soon as send() returns,
    // as RTCDataChannel.send() allows.
    if (!isString && this.#entries.includes(entry)) {
      entry.data = toArrayBuffer(ArrayBuffer.isView(data) ? data : new Uint8Array(data))
    }
    return handed
  }

  /**
   * Opens this channel on connection `pc` (negotiated: both sides do the same). Once `pc` is
   * closed, only the channel's closing reaches `hooks` (`pc` may have been closed under its owner).
   */
  open(pc: RTCPeerConnection, spec: ChannelSpec, hooks: ChannelHooks): void {
    const channel = pc.createDataChannel(spec.name, { ...spec.init, negotiated: true, id: spec.id })
    const live = () => pc.signalingState !== 'closed'
    channel.binaryType = 'arraybuffer'
    channel.onopen = () => {
      if (!live()) return
      this.#attach(channel)
      hooks.opened()
    }
    channel.onclose = hooks.closed
    channel.onmessage = (event) => live() && hooks.received(toArrayBuffer(event.data))
  }

  /** Starts writing to an open channel (until it closes: only an open channel is written to). */
  #attach(channel: RTCDataChannel): void {
    this.#channel = channel
    this.#held = false
    channel.bufferedAmountLowThreshold = HIGH_WATER_MARK / 2
    channel.addEventListener('bufferedamountlow', () => this.#flush())
    this.#flush()
  }

  /**
   * Holds what is sent here while the path is down (ICE `disconnected` or
   * `failed` under an open channel): handed to a channel that may be rebuilt
   * away, it would be lost; here it waits for the path, or the next channel.
   */
  hold(held: boolean): void {
    this.#held = held
    this.#flush()
  }

  /** The peer closed: whatever still waits is not going to be sent. */
  close(): void {
    for (const entry of this.#entries.splice(0)) entry.failed(closedError())
  }

  #remove(entry: Entry): void {
    this.#entries.splice(this.#entries.indexOf(entry), 1)
    this.#bytes -= entry.size
  }

  #flush(): void {
    const channel = this.#channel
    let head = this.#entries[0]
    while (!this.#held && channel?.readyState === 'open' && head) {
      // Past the high-water mark a stack drops or refuses what it is given: wait for it to drain,
      // so the buffered amount never exceeds it (an empty buffer takes any one message).
      // (`bufferedamountlow` resumes us; the timer covers stacks that never fire it.)
      const buffered = channel.bufferedAmount
      if (buffered && buffered + head.size > HIGH_WATER_MARK) {
        clearTimeout(this.#drain)
        this.#drain = setTimeout(() => this.#flush(), 20)
        return
      }
      try {
        channel.send(head.data as string)
        head.sent()
      } catch (cause) {
        // The channel closed under us: keep the message for the next one.
        if (channel.readyState !== 'open') return
        const error = new PolitelyError('message-too-large', 'Channel refused a message', { cause })
        this.#onError(error)
        head.failed(error)
      }
      this.#remove(head)
      head = this.#entries[0]
    }
  }
}

/** What a closed peer answers to `start()` and `send()`, and what its unsent messages become. */
export const closedError = () => new PolitelyError('closed', 'The peer is closed')

/** Turns whatever binary type a stack delivers (Node Buffers included) into an ArrayBuffer. */
export function toArrayBuffer(data: string | ArrayBuffer | ArrayBufferView): string | ArrayBuffer {
  return ArrayBuffer.isView(data) ? (data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer) : data
}
