// Defaults are shared by every instance made after them: a write to one would change them all.
import { expect, test } from 'vitest'
import { backoff, DEFAULTS } from '../../src/index'
import { RELIABLE_DEFAULTS } from '../../src/reliable/index'
import { SERVER_DEFAULTS } from '../../src/server/options'

test.each([
  ['DEFAULTS', DEFAULTS],
  ['RELIABLE_DEFAULTS', RELIABLE_DEFAULTS],
  ['SERVER_DEFAULTS', SERVER_DEFAULTS],
])('%s is frozen: a write throws (strict mode) and changes nothing', (_, defaults) => {
  expect(Object.isFrozen(defaults)).toBe(true)
  const [key, value] = Object.entries(defaults)[0] as [string, unknown]
  expect(() => {
    ;(defaults as Record<string, unknown>)[key] = 1
  }).toThrow(TypeError)
  expect((defaults as Record<string, unknown>)[key]).toBe(value)
})

test('backoff: 125·2^attempt ms up to 10 s, jittered between half and all of it', () => {
  for (let attempt = 1; attempt <= 12; attempt++) {
    const full = Math.min(125 * 2 ** attempt, 10_000)
    for (let i = 0; i < 50; i++) {
      const wait = backoff(attempt)
      expect(wait).toBeGreaterThanOrEqual(full / 2)
      expect(wait).toBeLessThanOrEqual(full)
    }
  }
})

test('the peer’s default policy: a 1 s grace on disconnected, at once on other first trouble, then backoff', () => {
  const policy = DEFAULTS.reconnectDelay
  expect(policy(1, 'disconnected', 0)).toBe(1000)
  expect(policy(1, 'failed', 0)).toBe(0)
  expect(policy(3, 'stalled', 5000)).toBeGreaterThanOrEqual(500)
})
