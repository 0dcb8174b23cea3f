/**
 * A token bucket: `burst` tokens, refilled at `perSecond`. Time is read on
 * each call, so an idle bucket costs nothing.
 */
export class TokenBucket {
  #tokens: number
  #updated = Date.now()
  readonly #perSecond: number
  readonly #burst: number

  constructor(perSecond: number, burst: number) {
    this.#perSecond = perSecond
    this.#burst = burst
    this.#tokens = burst
  }

  /** Takes `count` tokens if there are enough; returns whether it did. */
  take(count = 1): boolean {
    if (!this.has(count)) return false
    this.#tokens -= count
    return true
  }

  /** Whether `count` tokens are there now (takes none). */
  has(count = 1): boolean {
    const now = Date.now()
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#updated) / 1000) * this.#perSecond)
    this.#updated = now
    return this.#tokens >= count
  }

  /** Takes `count` tokens even if that leaves the bucket in debt (for work already done). */
  spend(count = 1): void {
    this.has(count)
    this.#tokens -= count
  }
}

/** One bucket per key, forgotten once idle for a minute (a full bucket is the same as none). */
export class RateLimiter {
  readonly #buckets = new Map<string, { bucket: TokenBucket; used: number }>()
  readonly #perSecond: number
  readonly #burst: number
  readonly #sweeper: ReturnType<typeof setInterval>

  constructor(perSecond: number, burst: number) {
    this.#perSecond = perSecond
    this.#burst = burst
    this.#sweeper = setInterval(() => {
      const idle = Date.now() - 60_000
      for (const [key, entry] of this.#buckets) if (entry.used < idle) this.#buckets.delete(key)
    }, 60_000)
    this.#sweeper.unref?.()
  }

  /** Takes `count` tokens from `key`'s bucket; returns whether it could. */
  take(key: string, count = 1): boolean {
    return this.#bucket(key).take(count)
  }

  /** Whether `key`'s bucket holds `count` tokens now (takes none). */
  has(key: string, count = 1): boolean {
    return this.#bucket(key).has(count)
  }

  /** Takes `count` tokens from `key`'s bucket even into debt (for work already done). */
  spend(key: string, count = 1): void {
    this.#bucket(key).spend(count)
  }

  #bucket(key: string): TokenBucket {
    let entry = this.#buckets.get(key)
    if (!entry) {
      entry = { bucket: new TokenBucket(this.#perSecond, this.#burst), used: 0 }
      this.#buckets.set(key, entry)
    }
    entry.used = Date.now()
    return entry.bucket
  }

  close(): void {
    clearInterval(this.#sweeper)
  }
}
