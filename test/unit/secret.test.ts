// Token digests: what bindings keep instead of tokens, compared in constant time, hashed once per
// token (not once per POST).
import { createHash } from 'node:crypto'
import { expect, test } from 'vitest'
import { Digests, digestOf, sameDigest } from '../../src/server/secret'

test('a digest is the base64url SHA-256 of the token', () => {
  const token = 'a-token-of-sixteen-or-more'
  expect(digestOf(token)).toBe(createHash('sha256').update(token).digest('base64url'))
  expect(digestOf(token)).not.toContain(token)
})

test('sameDigest: equal only when equal, whatever the lengths', () => {
  const digest = digestOf('one-token-0123456789')
  expect(sameDigest(digest, digestOf('one-token-0123456789'))).toBe(true)
  expect(sameDigest(digest, digestOf('another-token-0123456789'))).toBe(false)
  expect(sameDigest(digest, digest.slice(1))).toBe(false)
  expect(sameDigest('', '')).toBe(true)
})

test("Digests gives each token's digest, from a cache bounded in size", () => {
  const digests = new Digests()
  const first = digests.of('token-number-0-0123456789')
  expect(first).toBe(digestOf('token-number-0-0123456789'))
  expect(digests.of('token-number-0-0123456789')).toBe(first)
  // Past its bound the oldest go; a digest is still right when it has to be made again.
  for (let i = 1; i <= 5000; i++) digests.of(`token-number-${i}-0123456789`)
  const again = digests.of('token-number-0-0123456789')
  expect(again).toBe(first)
  expect(again).toBe(digestOf('token-number-0-0123456789'))
})
