/**
 * How long to wait before reconnect attempt `attempt` (0 for the first retry),
 * in ms. Return a number; replace it to change the policy.
 */
export type ReconnectDelay = (attempt: number) => number

/** Jittered exponential backoff: 250 ms doubling up to 10 s, each wait between half and all of that. */
export const defaultReconnectDelay: ReconnectDelay = (attempt) => Math.min(10_000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2)

/** A fresh random secret that proves a peer id to the server: 128 bits, base64url. */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')
}
