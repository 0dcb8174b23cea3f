/**
 * The one reconnect policy shape, for the peer (`reconnectDelay` of {@link PeerOptions}) and the
 * server signalers (`reconnectDelay` of `SseSignaler` and `WebSocketSignaler`): how long to wait
 * (ms) before attempt `attempt` (1, 2, … since things last worked), given what went wrong
 * (`reason`) and how long ago the trouble began (`elapsed`, ms). `undefined` gives up.
 *
 * @example
 * // Back off as usual, but give up after a minute.
 * const reconnectDelay: ReconnectPolicy = (attempt, _reason, elapsed) => (elapsed < 60_000 ? backoff(attempt) : undefined)
 */
export type ReconnectPolicy<Reason extends string = string> = (
  attempt: number,
  reason: Reason,
  elapsed: number,
) => number | undefined

/**
 * Jittered exponential backoff, the default of both: 250 ms for attempt 1, doubling up to
 * 10 s, each wait between half and all of that (so many clients do not retry in step).
 *
 * @example
 * // Twice as patient as the default, and never giving up.
 * new WebSocketSignaler({ url, room: 'demo', reconnectDelay: (attempt) => 2 * backoff(attempt) })
 */
export function backoff(attempt: number): number {
  return Math.min(125 * 2 ** attempt, 1e4) * (0.5 + Math.random() / 2)
}

/**
 * One streak of recovery attempts (a link's, or a signaler's): counts them from 1, times the
 * streak from its first attempt, and asks the policy for each wait. @internal
 */
export class Streak<Reason extends string> {
  /** Attempts so far in this streak (0: things work). */
  attempt = 0
  #since = 0
  readonly #policy: ReconnectPolicy<Reason>

  constructor(policy: ReconnectPolicy<Reason>) {
    this.#policy = policy
  }

  /** The wait (ms) before the next attempt, or `undefined`: the policy gave up. */
  next(reason: Reason): number | undefined {
    // One reading of the clock: two could straddle a millisecond, and the first attempt of a
    // streak must see 0 elapsed.
    const now = Date.now()
    if (!this.attempt) this.#since = now
    return this.#policy(++this.attempt, reason, now - this.#since)
  }
}
