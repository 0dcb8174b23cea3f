/**
 * Exactly-once, in-order delivery across ICE restarts and rebuilds, and messages of any size.
 *
 * @module politely/reliable
 */
// The `politely/reliable` entry: exactly-once, in-order delivery across rebuilds, and messages
// of any size, on top of the core's public API. Wire format: docs/protocol.md, "Reliable delivery".
import mitt from 'mitt'
import type { Payload } from '../channels.js'
import type { PeerEvents } from '../events.js'
import { PerfectNegotiationPeer } from '../peer.js'
import { setup, subscribeBoth } from './setup.js'
import { createStream, type Stream } from './stream.js'
import type { ReliablePeerEvents, ReliablePeerOptions, SendOptions, StreamEvents } from './types.js'

export { ReliableRoom, type ReliableRoomEvents, type ReliableRoomOptions } from './room.js'
export { RELIABLE_DEFAULTS } from './setup.js'
export type { ReliableErrorCode, ReliablePeerEvents, ReliablePeerOptions, SendOptions, TransferProgress } from './types.js'

/**
 * A {@link PerfectNegotiationPeer} whose ordered, fully reliable channels (`'default'` always)
 * deliver every message exactly once and in order across rebuilds, and carry messages of any
 * size (chunked, with progress). Both sides must use it. Unordered or partially reliable
 * channels pass through untouched.
 *
 * @example
 * const peer = new ReliablePeer({ signaler: new BroadcastChannelSignaler({ room: 'demo' }) })
 * peer.on('message', ({ data }) => console.log(data))
 * peer.on('progress', ({ sent, total }) => console.log(`${sent} / ${total}`))
 * await peer.start()
 * await peer.send(hugeArrayBuffer, { signal: AbortSignal.timeout(60_000) })
 */
export class ReliablePeer extends PerfectNegotiationPeer {
  readonly #streams = new Map<string, Stream>()
  readonly #emitter = mitt<StreamEvents>()

  constructor(options: ReliablePeerOptions) {
    super(options)
    const { nonce, limits, managed } = setup(options, () => this.connection)
    for (const name of managed) {
      const write = (frame: ArrayBuffer) => super.send(frame, name)
      this.#streams.set(name, createStream(name, nonce, limits(), write, this.#emitter.emit))
    }
    // Registered before any handler of the app, so the streams see every event first.
    super.on('message', (event) => {
      const stream = this.#streams.get(event.channel)
      if (stream) stream.receive(event.data, this.connection)
      else this.#emitter.emit('message', event)
    })
    super.on('open', () => {
      for (const stream of this.#streams.values()) stream.open(this.connection)
    })
    super.on('close', () => {
      for (const stream of this.#streams.values()) stream.close()
    })
    // Every way of closing (close(), pagehide, a reconnect policy that gives up) ends here.
    super.on('state', ({ state }) => {
      if (state === 'closed') for (const stream of this.#streams.values()) stream.dispose()
    })
  }

  /**
   * Subscribes to an event; returns the unsubscribe function. On managed channels `message`
   * carries whole messages (never frames); on pass-through channels, what arrived.
   *
   * @example
   * peer.on('progress', ({ channel, sent, total }) => bar.update(sent / total))
   */
  override on<K extends keyof ReliablePeerEvents>(type: K, handler: (event: ReliablePeerEvents[K]) => void): () => void {
    // `message` and `progress` are this class's alone; `error` comes from both the core and the streams.
    return subscribeBoth(
      (name, listener) => super.on(name as keyof PeerEvents, listener),
      this.#emitter,
      type,
      handler as (event: unknown) => void,
    )
  }

  /**
   * Sends a message of any size (up to `maxTransferSize`) on a channel (`'default'` unless
   * named). On a managed channel it arrives exactly once, in order, as one `message` event,
   * also across rebuilds; it waits (in order, unbounded) while the channel is away or the
   * window is full. Resolves when the whole message went to the transport. Rejects with
   * `aborted` when `signal` aborts before its last chunk went out (nothing of it is delivered
   * then), or `closed` when the peer closes first. Throws at once what the core throws
   * (`unknown-channel`, `closed`, …), `invalid-message` and `message-too-large`.
   *
   * @example
   * await peer.send(bytes, { channel: 'files', signal: controller.signal })
   */
  override send(data: Payload, options?: string | SendOptions): Promise<void> {
    const { channel = 'default', signal }: SendOptions = typeof options === 'string' ? { channel: options } : (options ?? {})
    const stream = this.state === 'closed' ? undefined : this.#streams.get(channel)
    // Pass-through channels, and the refusals the core makes itself.
    return stream ? stream.send(data, signal) : Promise.resolve(super.send(data, channel))
  }
}
