import { Gathered } from './gathered.js'

/** What can hold back its writes: a socket, or an HTTP response (which corks its socket). */
export interface Corkable {
  cork(): void
  uncork(): void
  /** Whether a {@link TurnCorks} holds it this turn. Set by that alone. */
  corked: boolean
}

/**
 * Holds back the writes to each of many sockets until the end of the current turn of the event
 * loop, then lets each socket's writes go in one system call (`writev`) rather than one per
 * message: a burst of events for one client (a batch's messages, an acknowledgement) is one write.
 */
export class TurnCorks {
  readonly #held = new Gathered<'corked', Corkable>('corked')

  /** Corks `target` until this turn of the event loop is over (once, however often it is called in the turn). */
  hold(target: Corkable): void {
    if (!this.#held.add(target)) return
    target.cork()
    if (this.#held.size === 1) setImmediate(this.#release)
  }

  // Whatever an uncork writes at once is held for the next turn, not lost (see Gathered.take).
  readonly #release = () => this.#held.take(uncork)
}

const uncork = (target: Corkable) => target.uncork()
