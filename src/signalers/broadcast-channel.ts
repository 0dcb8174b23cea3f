import { PolitelyError } from '../errors'
import type { SignalMessage } from '../protocol'
import type { Signaler } from './signaler'

/** Options of {@link BroadcastChannelSignaler}. */
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
  #channel?: BroadcastChannel
  readonly #handlers = new Set<(message: unknown) => void>()

  readonly #options: BroadcastChannelSignalerOptions

  constructor(options: BroadcastChannelSignalerOptions) {
    this.#options = options
    const Channel = options.BroadcastChannel ?? globalThis.BroadcastChannel
    if (typeof options.room !== 'string' || !options.room || !Channel) {
      throw new PolitelyError('invalid-options', 'room and BroadcastChannel needed')
    }
  }

  /** Opens the channel (the peer id and events are not needed: a BroadcastChannel never drops or resets). */
  async connect(): Promise<void> {
    if (this.#channel) return
    const Channel = this.#options.BroadcastChannel ?? globalThis.BroadcastChannel
    const channel = new Channel(`politely:${this.#options.room}`)
    channel.onmessage = (event) => {
      for (const handler of this.#handlers) handler(event.data)
    }
    this.#channel = channel
  }

  send(message: SignalMessage): void {
    if (!this.#channel) throw new PolitelyError('signaling-failed', 'send() while not connected')
    // A string, not an object: the same bytes any other transport would carry, measured the same way.
    this.#channel.postMessage(JSON.stringify(message))
  }

  subscribe(handler: (message: unknown) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  close(): void {
    this.#channel?.close()
    this.#channel = undefined
    this.#handlers.clear()
  }
}
