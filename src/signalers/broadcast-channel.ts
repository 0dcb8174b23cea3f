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
  #channel?: BroadcastChannel
  readonly #handlers = new Set<(message: unknown) => void>()

  readonly #name: string
  readonly #Channel: typeof BroadcastChannel

  constructor(options: BroadcastChannelSignalerOptions) {
    this.#name = `politely:${options?.room}`
    this.#Channel = options?.BroadcastChannel ?? globalThis.BroadcastChannel
    if (!options?.room || !this.#Channel) throw new PolitelyError('invalid-options', 'room and BroadcastChannel needed')
  }

  /** Opens the channel (the peer id and events are not needed: a BroadcastChannel never drops or resets). */
  async connect(): Promise<void> {
    if (this.#channel) return
    const channel = new this.#Channel(this.#name)
    channel.onmessage = (event) => {
      for (const handler of this.#handlers) handler(event.data)
    }
    this.#channel = channel
  }

  send(message: SignalMessage): void {
    // Before connect() or after close() this throws, and the peer reports `signaling-failed`.
    // A string, not an object: the same bytes any other transport would carry, measured the same way.
    this.#channel!.postMessage(JSON.stringify(message))
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
