// Minting coturn's shared-secret credentials, and reading the TURN options from the CLI's flags
// and the environment. The vectors were computed apart from this code, with openssl:
//   printf %s "1800000600:alice" | openssl dgst -sha1 -hmac 'politely shared secret' -binary | base64
import { describe, expect, test } from 'vitest'
import { checkTurnOptions, iceServersFor, mintTurnCredentials, TURN_DEFAULT_TTL, turnFromFlags } from '../../src/server/turn'

describe('mintTurnCredentials', () => {
  test('username is <expiry>:<user>, credential the base64 HMAC-SHA1 of it (openssl vectors)', () => {
    expect(mintTurnCredentials({ secret: 'politely shared secret', user: 'alice', ttl: 600, now: 1_800_000_000_000 })).toEqual({
      username: '1800000600:alice',
      credential: 'YfBArP9/vjxfCNLgdDf5Vxz+s1E=',
    })
    // A peer id with the characters ids may have (a colon too: coturn reads the expiry up to the first one).
    expect(mintTurnCredentials({ secret: 's3cr3t', user: 'peer.1~x', ttl: 3600, now: 1_700_000_000_999 })).toEqual({
      username: '1700003600:peer.1~x',
      credential: 'zBSbXMsZWWLgeBDM1Of1jVlJ/WI=',
    })
  })

  test('the expiry is in whole seconds from now; an hour by default', () => {
    const now = Date.now()
    const { username } = mintTurnCredentials({ secret: 'x', user: 'u', now })
    expect(TURN_DEFAULT_TTL).toBe(3600)
    expect(username).toBe(`${Math.floor(now / 1000) + 3600}:u`)
  })

  test('iceServersFor: one entry with every URL, credentials for the peer, and the ttl', () => {
    const turn = checkTurnOptions({
      urls: ['turn:127.0.0.1:3478', 'turns:turn.example.org:5349?transport=tcp'],
      secret: 's',
      ttl: 60,
    })
    const { iceServers, ttl } = iceServersFor(turn, 'bob')
    expect(ttl).toBe(60)
    expect(iceServers).toHaveLength(1)
    expect(iceServers[0]?.urls).toEqual(['turn:127.0.0.1:3478', 'turns:turn.example.org:5349?transport=tcp'])
    expect(iceServers[0]?.username).toMatch(/^\d+:bob$/)
    expect(JSON.stringify(iceServers)).not.toContain('"s"')
  })
})

describe('checkTurnOptions (the server option)', () => {
  test('a single URL becomes a list; the ttl defaults to an hour', () => {
    expect(checkTurnOptions({ urls: 'turn:turn.example.org', secret: 'k' })).toEqual({
      urls: ['turn:turn.example.org'],
      secret: 'k',
      ttl: 3600,
    })
  })

  test.each([
    [{ urls: [], secret: 'k' }, 'turn.urls: give one or more TURN URLs'],
    [{ urls: 'http://turn.example.org', secret: 'k' }, 'turn.urls: "http://turn.example.org" is not a URL like turn:'],
    [{ urls: ['turn:a.example', 'turn:b example'], secret: 'k' }, '"turn:b example" is not a URL'],
    [{ urls: 'turn:a.example', secret: '' }, 'turn.secret: the shared secret must not be empty'],
    [{ urls: 'turn:a.example', secret: 'k', ttl: 0 }, 'turn.ttl: 0 is not a whole number of seconds, 1 or more'],
    [{ urls: 'turn:a.example', secret: 'k', ttl: 1.5 }, 'turn.ttl: 1.5 is not'],
  ])('%j: %s', (turn, message) => {
    expect(() => checkTurnOptions(turn as never)).toThrow(message)
  })
})

describe('turnFromFlags (politely-server --turn-url / TURN_URL, --turn-secret / TURN_SECRET, --turn-ttl / TURN_TTL)', () => {
  test('nothing given: no TURN', () => {
    expect(turnFromFlags({ urls: [] })).toBeUndefined()
    expect(turnFromFlags({ urls: [''], secret: '', ttl: '' })).toBeUndefined()
  })

  test('URLs (each flag, or comma-separated), the secret and the ttl', () => {
    expect(
      turnFromFlags({ urls: ['turn:127.0.0.1:3478', ' turn:127.0.0.1:3479?transport=tcp '], secret: 'k', ttl: '120' }),
    ).toEqual({ urls: ['turn:127.0.0.1:3478', 'turn:127.0.0.1:3479?transport=tcp'], secret: 'k', ttl: 120 })
    expect(turnFromFlags({ urls: ['turn:127.0.0.1'], secret: 'k' })?.ttl).toBe(3600)
  })

  test.each([
    [{ urls: ['turn:a.example'] }, '--turn-url and --turn-secret (or TURN_URL and TURN_SECRET) go together'],
    [{ urls: [], secret: 'hunter2' }, 'go together'],
    [{ urls: [], ttl: '60' }, 'go together'],
    [{ urls: ['a.example:3478'], secret: 'hunter2' }, '--turn-url (TURN_URL): "a.example:3478" is not a URL like turn:'],
    [{ urls: ['turn:a.example'], secret: 'hunter2', ttl: '1h' }, '--turn-ttl (TURN_TTL): "1h" is not a whole number of seconds'],
    [{ urls: ['turn:a.example'], secret: 'hunter2', ttl: '-5' }, '"-5" is not a whole number'],
    [
      { urls: ['turn:a.example'], secret: 'hunter2', ttl: '0' },
      '--turn-ttl (TURN_TTL): 0 is not a whole number of seconds, 1 or more',
    ],
  ])('%j: %s, and never the secret', (flags, message) => {
    let error: Error | undefined
    try {
      turnFromFlags(flags)
    } catch (thrown) {
      error = thrown as Error
    }
    expect(error?.message).toContain(message)
    expect(error?.message).not.toContain('hunter2')
  })
})
