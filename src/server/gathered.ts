/**
 * Items gathered one at a time over a while (a turn of the event loop, an acknowledgement's
 * delay), each once however often it is added, then handed over together. What a `Set` cleared
 * after each round would do, without its garbage: V8 makes the new table of a Set that is cleared
 * or grows in the generation of the old one, so a Set that lives as long as the server made
 * old-generation garbage every round, which only a mark-compact collects. Under relay load the
 * relay's two such Sets took ~100 KB of old space between two scavenges (PeerJS's server: 5 KB)
 * and caused three to four times PeerJS's mark-compacts.
 *
 * Here membership is a flag on the item itself (the property `mark` names), and the items are in
 * an array that only grows, to the most ever gathered at once: a round allocates nothing.
 */
export class Gathered<K extends string, T extends Record<K, boolean>> {
  #items: (T | undefined)[] = []
  /** The array of the round before, emptied: the next round's. */
  #spare: (T | undefined)[] = []
  #count = 0

  /** `mark`: the item's property that says it is gathered; only this instance may set it. */
  constructor(readonly mark: K) {}

  /** Items gathered since the last {@link take}. */
  get size(): number {
    return this.#count
  }

  /** Gathers `item`, unless it is already; true if it was not. */
  add(item: T): boolean {
    if (item[this.mark]) return false
    ;(item as Record<K, boolean>)[this.mark] = true
    this.#items[this.#count++] = item
    return true
  }

  /**
   * Hands each item gathered to `each`, in the order they came, unmarked first: one that `each`
   * (or anything it calls) adds again is gathered for the next round, not lost or handed twice.
   * `each` must not throw: the items after one it threw on would stay marked and never be gathered again.
   */
  take(each: (item: T) => void): void {
    const items = this.#items
    const count = this.#count
    this.#items = this.#spare
    this.#spare = items
    this.#count = 0
    for (let i = 0; i < count; i++) {
      const item = items[i] as T
      items[i] = undefined // not kept alive by the spare array
      ;(item as Record<K, boolean>)[this.mark] = false
      each(item)
    }
  }

  /** Forgets every item gathered (unmarked), handing none over. */
  clear(): void {
    this.take(() => {})
  }
}
