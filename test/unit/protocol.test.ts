import { describe, expect, test } from 'vitest'
import { PolitelyError, parseSignal } from '../../src/index'

const hello = { kind: 'hello', from: 'a1', session: 1 }
const offer = {
  kind: 'description',
  from: 'a1',
  to: 'b2',
  session: 1,
  toSession: 3,
  description: { type: 'offer', sdp: 'v=0\r\n' },
}
const candidate = {
  kind: 'candidate',
  from: 'a1',
  to: 'b2',
  session: 1,
  toSession: 3,
  candidate: {
    candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host',
    sdpMid: '0',
    sdpMLineIndex: 0,
    usernameFragment: 'abcd',
  },
}

function codeOf(input: unknown, max?: number): string | undefined {
  try {
    parseSignal(input, max)
    return undefined
  } catch (error) {
    expect(error).toBeInstanceOf(PolitelyError)
    return (error as PolitelyError).code
  }
}

describe('parseSignal accepts every kind, as a JSON string or an object', () => {
  test.each([hello, offer, candidate, { kind: 'bye', from: 'a1', session: 2 }])('%o', (message) => {
    expect(parseSignal(JSON.stringify(message))).toEqual(message)
    expect(parseSignal(message)).toEqual(message)
  })

  test('a hello may be addressed and name the session it is paired with', () => {
    const reply = { kind: 'hello', from: 'a1', to: 'b2', session: 4, toSession: 9 }
    expect(parseSignal(JSON.stringify(reply))).toEqual(reply)
  })

  test('an unpaired hello may carry an offer made in advance', () => {
    const early = { ...hello, since: 1700000000000, offer: 'v=0\r\n' }
    expect(parseSignal(JSON.stringify(early))).toEqual(early)
  })

  test('end-of-candidates: null, or an empty candidate string (Firefox)', () => {
    expect(parseSignal({ ...candidate, candidate: null })).toMatchObject({ candidate: null })
    expect(parseSignal({ ...candidate, candidate: { candidate: '', sdpMid: '0' } })).toMatchObject({
      candidate: { candidate: '' },
    })
  })

  test('unknown fields are not copied', () => {
    const parsed = parseSignal(JSON.stringify({ ...offer, extra: { deep: 1 }, description: { ...offer.description, x: 1 } }))
    expect(parsed).toEqual(offer)
    expect(Object.keys((parsed as typeof offer).description)).toEqual(['type', 'sdp'])
  })
})

describe('parseSignal rejects bad input with a stable code', () => {
  test.each([
    ['not JSON', '{"kind":'],
    ['JSON null', 'null'],
    ['a number', 42],
    ['an array', '[1,2]'],
    ['kind not a string', { ...hello, kind: 7 }],
    ['missing from', { kind: 'hello', session: 1 }],
    ['from with CR/LF', { ...hello, from: 'a\r\nevent: x' }],
    ['from with NUL', { ...hello, from: 'a\u0000' }],
    ['from too long', { ...hello, from: 'a'.repeat(65) }],
    ['to not an id', { ...offer, to: 12 }],
    ['session zero on a description', { ...offer, session: 0 }],
    ['session negative on a hello', { ...hello, session: -1 }],
    ['session fractional', { ...hello, session: 1.5 }],
    ['session a string', { ...hello, session: '1' }],
    ['description without to', { ...offer, to: undefined }],
    ['description without toSession', { ...offer, toSession: undefined }],
    ['description of type rollback', { ...offer, description: { type: 'rollback', sdp: '' } }],
    ['hello offer not a string', { ...hello, offer: { type: 'offer', sdp: 'v=0' } }],
    ['description sdp not a string', { ...offer, description: { type: 'offer', sdp: { a: 1 } } }],
    ['candidate missing', { ...candidate, candidate: undefined }],
    ['candidate a string', { ...candidate, candidate: 'candidate:1' }],
    ['candidate sdpMLineIndex negative', { ...candidate, candidate: { candidate: 'c', sdpMLineIndex: -1 } }],
    ['candidate sdpMid an object', { ...candidate, candidate: { candidate: 'c', sdpMid: {} } }],
    ['candidate usernameFragment too long', { ...candidate, candidate: { candidate: 'c', usernameFragment: 'u'.repeat(257) } }],
    [
      'deep nesting where a candidate belongs',
      `{"kind":"candidate","from":"a","to":"b","session":1,"toSession":1,"candidate":${'['.repeat(50000)}${']'.repeat(50000)}}`,
    ],
  ])('%s → invalid-signal', (_name, input) => {
    expect(codeOf(input, 1_000_000)).toBe('invalid-signal')
  })

  test('deep nesting in an unknown field is never walked, and not kept', () => {
    const raw = `{"kind":"hello","from":"a","session":1,"x":${'['.repeat(50000)}${']'.repeat(50000)}}`
    expect(parseSignal(raw, 1_000_000)).toEqual({ kind: 'hello', from: 'a', session: 1 })
  })

  test('unknown kinds → unknown-kind', () => {
    expect(codeOf({ ...hello, kind: 'offer' })).toBe('unknown-kind')
    expect(codeOf(JSON.stringify({ ...hello, kind: '__proto__' }))).toBe('unknown-kind')
  })

  test('oversized messages → signal-too-large, before any parsing', () => {
    expect(codeOf(`{"kind":"hello","pad":"${'x'.repeat(200_000)}"}`)).toBe('signal-too-large')
    expect(codeOf({ ...offer, description: { type: 'offer', sdp: 'x'.repeat(200_000) } })).toBe('signal-too-large')
    expect(codeOf({ ...hello, offer: 'x'.repeat(200_000) })).toBe('signal-too-large')
    expect(codeOf(JSON.stringify(hello), 10)).toBe('signal-too-large')
  })

  test('__proto__ keys neither pollute nor pass through', () => {
    const raw = '{"kind":"hello","from":"a1","session":1,"__proto__":{"polluted":true},"constructor":{"prototype":{"bad":1}}}'
    const parsed = parseSignal(raw)
    expect(parsed).toEqual(hello)
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(({} as Record<string, unknown>).bad).toBeUndefined()
    expect(
      codeOf(
        '{"kind":"description","from":"a1","to":"b","session":1,"toSession":1,"description":{"__proto__":{"type":"offer","sdp":"x"}}}',
      ),
    ).toBe('invalid-signal')
  })
})
