import { createHash, timingSafeEqual } from 'node:crypto'

/** A token's digest, as bindings keep it: no store (Redis least of all) holds a token one could use. */
export const digestOf = (token: string): string => createHash('sha256').update(token).digest('base64url')

/** Whether two digests are equal, in a time that does not depend on where they differ. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** How many tokens' digests {@link Digests} keeps. */
const KEPT = 4096

/**
 * Digests of the tokens seen lately: a peer that publishes by POST presents its token with
 * every request, and hashing it each time was a SHA-256 per message. Now it is one per
 * connection (the oldest entries go first).
 */
export class Digests {
  readonly #kept = new Map<string, string>()

  of(token: string): string {
    let digest = this.#kept.get(token)
    if (digest === undefined) {
      digest = digestOf(token)
      if (this.#kept.size >= KEPT) this.#kept.delete(this.#kept.keys().next().value as string)
      this.#kept.set(token, digest)
    }
    return digest
  }
}
