/** What can hold back its writes: a socket, or an HTTP response (which corks its socket). */
export interface Corkable {
  cork(): void
  uncork(): void
}

/**
 * Holds back the writes to each of many sockets until the end of the current turn of the event
 * loop, then lets each socket's writes go in one system call (`writev`) rather than one per
 * message: a burst of events for one client (a batch's messages, an acknowledgement) is one write.
 */
export class TurnCorks {
  #corked = new Set<Corkable>()
  /** The set of the turn before, emptied: the next turn's (a new Set per turn was garbage per turn). */
  #spare = new Set<Corkable>()

  /** Corks `target` until this turn of the event loop is over (once, however often it is called in the turn). */
  hold(target: Corkable): void {
    const corked = this.#corked
    if (corked.has(target)) return
    target.cork()
    corked.add(target)
    if (corked.size === 1) setImmediate(this.#release)
  }

  readonly #release = () => {
    // The other set first: whatever an uncork writes at once is held for the next turn, not lost.
    const corked = this.#corked
    this.#corked = this.#spare
    for (const target of corked) target.uncork()
    corked.clear()
    this.#spare = corked
  }
}
