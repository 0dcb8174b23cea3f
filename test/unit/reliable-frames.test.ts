import { describe, expect, test } from 'vitest'
import { ABORT, ACK, DATA, DATA_HEADER, decode, encode, join, LAST, STRING, SYNC, split } from '../../src/reliable/frames'

const bytes = (buffer: ArrayBuffer) => Array.from(new Uint8Array(buffer))

describe('reliable frames', () => {
  test('DATA: type, flags, big-endian u32 seq, then the payload', () => {
    const frame = encode(DATA, [0x01020304], STRING | LAST, new Uint8Array([104, 105]))
    expect(bytes(frame)).toEqual([DATA, STRING | LAST, 1, 2, 3, 4, 104, 105])
    expect(DATA_HEADER).toBe(6)
    const decoded = decode(frame)
    expect(decoded).toMatchObject({ type: DATA, flags: STRING | LAST, fields: [0x01020304] })
    expect(Array.from(decoded?.payload ?? [])).toEqual([104, 105])
  })

  test('an ABORT frame and an empty last chunk are DATA frames with no payload', () => {
    expect(decode(encode(DATA, [7], ABORT))).toMatchObject({ type: DATA, flags: ABORT, fields: [7] })
    expect(decode(encode(DATA, [8], LAST))?.payload.length).toBe(0)
  })

  test('sequence numbers wrap on the wire', () => {
    expect(decode(encode(ACK, [2 ** 32 + 5]))?.fields).toEqual([5])
    expect(decode(encode(ACK, [-1]))?.fields).toEqual([2 ** 32 - 1])
  })

  test('SYNC carries two 53-bit nonces, base and received', () => {
    const nonce = 2 ** 53 - 12345
    const frame = encode(SYNC, [...split(nonce), ...split(1), 42, -1])
    expect(frame.byteLength).toBe(26)
    const [high = 0, low = 0, seenHigh = 0, seenLow = 0, base, received] = decode(frame)?.fields ?? []
    expect(join(high, low)).toBe(nonce)
    expect(join(seenHigh, seenLow)).toBe(1)
    expect([base, received]).toEqual([42, 2 ** 32 - 1])
  })

  test('anything else is not a frame', () => {
    const bad: Array<string | ArrayBuffer> = [
      'a string',
      new ArrayBuffer(0),
      new Uint8Array([0, 0, 0, 0, 0, 0]).buffer, // type 0
      new Uint8Array([9, 0, 0, 0, 0, 0]).buffer, // unknown type
      new Uint8Array([DATA, 0, 0, 0, 0]).buffer, // truncated
      new Uint8Array([DATA, 8, 0, 0, 0, 0]).buffer, // unknown flag
      new Uint8Array([ACK, 0, 0, 0, 0, 0, 0]).buffer, // too long
      encode(SYNC, [1, 2, 3, 4, 5]), // one field short
    ]
    for (const data of bad) expect(decode(data)).toBeUndefined()
  })
})
