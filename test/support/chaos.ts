import type { Signaler } from '../../src/index'

/** A small seeded PRNG (mulberry32), so a failing chaos run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface ChaosOptions {
  seed: number
  /** Chance that an incoming message is delivered twice. */
  duplicate?: number
  /** Most random delay (ms) per delivery: different delays reorder messages. */
  maxDelay?: number
  /** Chance that an incoming message is dropped. */
  drop?: number
  /** Only these kinds are touched (default: all). */
  kinds?: string[]
}

/**
 * Wraps a real signaler and mistreats what it delivers the way real
 * transports do: duplicates, reordering, delays, drops. Counts what it did.
 */
export function chaos(inner: Signaler, options: ChaosOptions): Signaler & { stats: Record<string, number> } {
  const random = prng(options.seed)
  const stats = { delivered: 0, duplicated: 0, dropped: 0, delayed: 0 }
  const touched = (raw: unknown) => {
    if (!options.kinds) return true
    try {
      return options.kinds.includes(JSON.parse(String(raw)).kind)
    } catch {
      return true
    }
  }
  return {
    stats,
    connect: (id, events) => inner.connect(id, events),
    send: (message) => inner.send(message),
    close: () => inner.close(),
    subscribe(handler) {
      return inner.subscribe((raw) => {
        if (!touched(raw)) return handler(raw)
        if (random() < (options.drop ?? 0)) {
          stats.dropped++
          return
        }
        const copies = random() < (options.duplicate ?? 0) ? 2 : 1
        if (copies === 2) stats.duplicated++
        for (let i = 0; i < copies; i++) {
          const delay = Math.floor(random() * (options.maxDelay ?? 0))
          if (delay > 0) stats.delayed++
          setTimeout(() => {
            stats.delivered++
            handler(raw)
          }, delay)
        }
      })
    },
  }
}

/** A signaler that can be cut (both ways), as a crashed tab or a pulled cable would be. */
export function cuttable(inner: Signaler): Signaler & { cut(): void } {
  let cut = false
  return {
    cut: () => {
      cut = true
    },
    connect: (id, events) => inner.connect(id, events),
    send: (message) => {
      if (!cut) inner.send(message)
    },
    close: () => inner.close(),
    subscribe: (handler) => inner.subscribe((raw) => cut || handler(raw)),
  }
}
