import { PolitelyError } from '../errors.js'
import type { SignalMessage } from '../protocol.js'
import type { Signaler } from './signaler.js'

/**
 * Options of {@link BroadcastChannelSignaler}.
 *
 * @example
 * // Safari before 15.4 has no BroadcastChannel: pass a polyfill's.
 * const signaler = new BroadcastChannelSignaler({ room: 'demo', BroadcastChannel: BroadcastChannelPolyfill })
 */
export interface BroadcastChannelSignalerOptions {
  /** Peers in the same room (and same origin) find each other. */
  room: string
  /** The BroadcastChannel constructor; defaults to the global one (also present in Node ≥ 18). */
  BroadcastChannel?: typeof BroadcastChannel
}

/**
 * Signaling between tabs, windows and workers of one origin (one browser
 * profile), with no server at all.
 *
 * @example
 * const peer = new PerfectNegotiationPeer({ signaler: new BroadcastChannelSignaler({ room: 'demo' }) })
 */
export class BroadcastChannelSignaler implements Signaler {
  /** The room's channel (broadcasts), then ours (what is addressed to us). */
  #channels: BroadcastChannel[] = []
  readonly #handlers = new Set<(message: unknown) => void>()

  readonly #room: string
  readonly #Channel: typeof BroadcastChannel

  constructor(options: BroadcastChannelSignalerOptions) {
    this.#room = options?.room
    this.#Channel = options?.BroadcastChannel ?? globalThis.BroadcastChannel
    if (!options?.room || !this.#Channel) throw new PolitelyError('invalid-options', 'room and BroadcastChannel needed')
  }

  /**
   * Opens the room's channel and one for `id`: a message addressed to a peer goes on its channel
   * only, so the other tabs of a room do not wake up and parse it (in a room of 8, 7 of 8 messages).
   */
  async connect(id: string): Promise<void> {
    if (this.#channels.length) return
    this.#channels = [this.#name(), this.#name(id)].map((name) => {
      const channel = new this.#Channel(name)
      channel.onmessage = (event) => {
        for (const handler of this.#handlers) handler(event.data)
      }
      return channel
    })
  }

  send(message: SignalMessage): void {
    const room = this.#channels[0]
    // The peer reports this as `signaling-failed`.
    if (!room) throw new Error('Not connected')
    const to = message.to
    // A message for one peer goes on that peer's channel, opened just for the post (a message
    // posted before close() is still delivered).
    const channel = to === undefined ? room : new this.#Channel(this.#name(to))
    // A string, not an object: the same bytes any other transport would carry, measured the same way.
    channel.postMessage(JSON.stringify(message))
    if (channel !== room) channel.close()
  }

  subscribe(handler: (message: unknown) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  close(): void {
    for (const channel of this.#channels) channel.close()
    this.#channels = []
    this.#handlers.clear()
  }

  /** The room's channel, or a peer's in it (JSON: no room and id can make another's name). */
  #name(peer?: string): string {
    return `politely:${peer === undefined ? this.#room : JSON.stringify([this.#room, peer])}`
  }
}
