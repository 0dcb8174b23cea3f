import type { PolitelyError } from '../errors.js'

/**
 * A signaler's reconnect policy: how long to wait (ms) before reconnect attempt
 * `attempt` (0 for the first retry), given what ended the last one (`error`:
 * a refusal the server said may be retried, e.g. `rate-limited`,
 * `unavailable`; absent for a plain network drop). Return `undefined` to give
 * up: the signaler reports the error and stops. A refusal that retrying
 * cannot help (`forbidden`, `room-full`, `id-taken`, …) never asks the policy.
 */
export type ReconnectDelay = (attempt: number, error?: PolitelyError) => number | undefined

/** Jittered exponential backoff: 250 ms doubling up to 10 s, each wait between half and all of that; never gives up. */
export const defaultReconnectDelay: ReconnectDelay = (attempt) => Math.min(10_000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2)

/** A fresh random secret that proves a peer id to the server: 128 bits, base64url. */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')
}
