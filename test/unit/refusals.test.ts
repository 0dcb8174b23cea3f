import { describe, expect, test } from 'vitest'
import { refusalError } from '../../src/signalers/server-signaler'

describe('a server refusal as a typed error', () => {
  test.each([
    [502, undefined, 'unavailable'],
    [503, undefined, 'unavailable'],
    [504, undefined, 'unavailable'],
    [500, undefined, 'signaling-failed'],
    [501, undefined, 'signaling-failed'],
    [404, undefined, 'signaling-failed'],
    [503, 'unavailable', 'unavailable'],
    [403, 'room-full', 'room-full'],
    [502, 'made-up', 'signaling-failed'],
  ])(
    'HTTP %i with code %s: %s (a proxy in front of a restarting server says 502–504 without our code)',
    (status, code, expected) => {
      const error = refusalError(status, code)
      expect(error.code).toBe(expected)
      expect(error.status).toBe(status)
    },
  )
})
