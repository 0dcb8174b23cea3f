import { describe, expect, test } from 'vitest'
import { parseBatch } from '../../src/server/body'
import { Refusal } from '../../src/server/http-errors'
import { Scanned, scanBatch } from '../../src/server/scan'
import { validateBatch } from '../../src/server/validate'
import { prng } from '../support/chaos'
import { frameText, hostileJson, int, pick, type Random, signal } from '../support/fuzz-inputs'

/**
 * scanBatch is a shortcut past JSON.parse and parseSignal: wherever it takes a text, the full way
 * must take it too and relay the same texts to the same recipients (or refuse it the same way: a
 * spoofed sender is the one refusal the scan leaves to validation). Checked against the full way
 * itself, on the messages clients send, on hostile JSON, and on thousands of mutations of both.
 */

const PEER = 'p'
const MAX_BATCH = 64
const MAX_BYTES = 128 * 1024

type Outcome = { recipients: (string | undefined)[]; texts: string[] } | { refused: string }

function outcome(batch: () => ReturnType<typeof parseBatch> | undefined): Outcome | undefined {
  try {
    const taken = batch()
    if (!taken) return undefined
    validateBatch(taken, PEER, MAX_BYTES)
    const recipients = taken.messages.map((message) => (message as { to?: string }).to)
    // What goes out: the scan's bytes as they came, or the full way's texts.
    return { recipients, texts: taken.bytes?.map((bytes) => bytes.toString()) ?? taken.texts }
  } catch (error) {
    if (!(error instanceof Refusal)) throw error
    return { refused: error.code }
  }
}

/** The full way, as the server takes a frame or body: its UTF-8 decoded (invalid bytes as U+FFFD), then parsed. */
const fullWay = (wire: Buffer) => outcome(() => parseBatch(wire.toString(), MAX_BATCH)) as Outcome
const scan = (text: string, maxBatch = MAX_BATCH, maxBytes = MAX_BYTES) => scanBatch(Buffer.from(text), PEER, maxBatch, maxBytes)

/** Asserts the shortcut agrees with the full way on the bytes of `text` (or `wire`); returns whether it took them. */
function agrees(text: string, wire = Buffer.from(text)): boolean {
  const fast = outcome(() => scanBatch(wire, PEER, MAX_BATCH, MAX_BYTES))
  if (fast) expect(fast, text.slice(0, 300)).toEqual(fullWay(wire))
  return fast !== undefined
}

/** Shuffles the keys of every object in `value`: the shortcut must not depend on their order. */
function shuffled(random: Random, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((item) => shuffled(random, item))
  if (typeof value !== 'object' || value === null) return value
  const entries = Object.entries(value).map(([key, inner]) => [key, shuffled(random, inner)] as const)
  for (let i = entries.length - 1; i > 0; i--) {
    const j = int(random, i + 1)
    ;[entries[i], entries[j]] = [entries[j] as (typeof entries)[number], entries[i] as (typeof entries)[number]]
  }
  return Object.fromEntries(entries)
}

/** Pieces a mutation inserts: JSON's structure, its escapes, numbers, nulls, spaces and controls. */
const PIECES = ['"', '\\', '{', '}', '[', ']', ',', ':', ' ', '\n', '\t', '\u0001', '0', '1', '-', '.', 'e', 'E', '+']
  .concat(['null', 'true', '\\u0041', '\\n', '\\"', '\\\\', '\\/', '\\x', 'é', '\u2028', '😀', '"to":"q",', '"to":null,'])
  .concat(['"kind":"bye",', '"session":0,', '"toSession":null,', '"since":0,', '"__proto__":{},', '"from":"p",', '"x":1,'])

function mutated(random: Random, text: string): string {
  const at = int(random, text.length + 1)
  switch (int(random, 6)) {
    case 0:
      return text.slice(0, at) + pick(random, PIECES) + text.slice(at)
    case 1:
      return text.slice(0, at) + text.slice(at + 1 + int(random, 3))
    case 2: {
      // A piece of itself again (a key or value twice).
      const from = int(random, text.length)
      return text.slice(0, at) + text.slice(from, from + 1 + int(random, 40)) + text.slice(at)
    }
    case 3:
      return text.slice(0, at) + pick(random, PIECES) + text.slice(at + 1)
    case 4: {
      // A member written twice, the second time maybe with another value.
      const members = [...text.matchAll(/"\w+":(?:"[\w ]*"|\d+|null)/g)]
      if (!members.length) return text
      const member = pick(random, members)
      const end = (member.index as number) + member[0].length
      const again = random() < 0.5 ? member[0] : member[0].replace(/:.*/, pick(random, [':"q"', ':2', ':null', ':"mallory"']))
      return `${text.slice(0, end)},${again}${text.slice(end)}`
    }
    default: {
      // A number changed: 1 → 01, 1.0, 1e0, -1, 2**53…
      const numbers = [...text.matchAll(/(?<=:)\d+/g)]
      if (!numbers.length) return text
      const number = pick(random, numbers)
      const start = number.index as number
      const changed = pick(random, [
        '01',
        '1.0',
        '1.5',
        '0.5',
        '1e0',
        '-1',
        '0',
        '9007199254740993',
        '123456789012345',
        '1234567890123456',
      ])
      return text.slice(0, start) + changed + text.slice(start + number[0].length)
    }
  }
}

describe('scanBatch: a shortcut that never disagrees with the full way', () => {
  test('takes what clients send, as JSON.stringify writes it: every kind, batches, keys in any order (not over maxBytes)', () => {
    const random = prng(3)
    let taken = 0
    for (let n = 0; n < 400; n++) {
      const message = signal(random, PEER)
      const text = JSON.stringify(n % 2 ? shuffled(random, message) : message)
      // A message's bytes are what the scan bounds (at least its characters, which the full way bounds).
      const fitsOne = Buffer.byteLength(text) <= MAX_BYTES
      expect(agrees(text), text.slice(0, 200)).toBe(fitsOne)
      const messages = Array.from({ length: 1 + int(random, 5) }, () => shuffled(random, signal(random, PEER)))
      const fits = messages.every((each) => Buffer.byteLength(JSON.stringify(each)) <= MAX_BYTES)
      expect(agrees(JSON.stringify(messages))).toBe(fits)
      if (fits && fitsOne) taken++
    }
    // The generator makes an SDP over maxBytes one time in 20: most are taken.
    expect(taken).toBeGreaterThan(300)
  })

  test.each([
    ['hello with an offer made in advance', { kind: 'hello', from: PEER, session: 0, since: 1, toSession: 2, offer: 'v=0\r\n' }],
    ['hello with null optionals', { kind: 'hello', from: PEER, session: 1, toSession: null, since: null, offer: null }],
    ['end-of-candidates', { kind: 'candidate', from: PEER, to: 'q', session: 1, toSession: 1, candidate: null }],
    [
      'a candidate with null optionals',
      {
        kind: 'candidate',
        from: PEER,
        to: 'q',
        session: 1,
        toSession: 1,
        candidate: { candidate: '', sdpMid: null, sdpMLineIndex: null, usernameFragment: null },
      },
    ],
    [
      'an answer with escapes and non-ASCII',
      {
        kind: 'description',
        from: PEER,
        to: 'q',
        session: 3,
        toSession: 2,
        description: { type: 'answer', sdp: 'a="x"\\\r\n\t/é😀\u2028' },
      },
    ],
    ['a bye to one peer', { kind: 'bye', from: PEER, to: 'q', session: 9007 }],
    ['a spoofed sender (refused as such)', { kind: 'bye', from: 'mallory', session: 1 }],
  ])('takes %s', (_name, message) => {
    expect(agrees(JSON.stringify(message))).toBe(true)
  })

  test.each([
    ['spaces between tokens', '{"kind": "bye","from":"p","session":1}'],
    ['a \\u escape', '{"kind":"bye","from":"\\u0070","session":1}'],
    ['a number with a fraction', '{"kind":"bye","from":"p","session":1.0}'],
    ['a number with an exponent', '{"kind":"bye","from":"p","session":1e0}'],
    ['an unsafe integer', '{"kind":"bye","from":"p","session":9007199254740993}'],
    ['a key twice', '{"kind":"bye","from":"p","from":"q","session":1}'],
    ['an unknown key', '{"kind":"bye","from":"p","session":1,"x":1}'],
    ['__proto__', '{"kind":"bye","from":"p","session":1,"__proto__":{"to":"q"}}'],
    ['a null recipient', '{"kind":"bye","from":"p","to":null,"session":1}'],
    ['session 0 outside a hello', '{"kind":"bye","from":"p","session":0}'],
    ['toSession 0', '{"kind":"hello","from":"p","session":1,"toSession":0}'],
    ['since 0', '{"kind":"hello","from":"p","session":1,"since":0}'],
    [
      'a description without toSession',
      '{"kind":"description","from":"p","to":"q","session":1,"description":{"type":"offer","sdp":""}}',
    ],
    [
      'an offer field on a description',
      '{"kind":"description","from":"p","to":"q","session":1,"toSession":1,"offer":"","description":{"type":"offer","sdp":""}}',
    ],
    [
      'a rollback',
      '{"kind":"description","from":"p","to":"q","session":1,"toSession":1,"description":{"type":"rollback","sdp":""}}',
    ],
    ['a raw control character', '{"kind":"hello","from":"p","session":1,"offer":"a\tb"}'],
    ['an invalid escape', '{"kind":"hello","from":"p","session":1,"offer":"a\\x"}'],
    ['an unknown kind', '{"kind":"Hello","from":"p","session":1}'],
    ['an empty batch', '[]'],
    ['a batch with room to spare after it', '[{"kind":"bye","from":"p","session":1}] '],
    ['a message then more', '{"kind":"bye","from":"p","session":1}{}'],
    [
      'a string of invalid UTF-8',
      Buffer.from([...Buffer.from('{"kind":"hello","from":"p","session":1,"offer":"'), 0xc3, 0x28, 0x22, 0x7d]),
    ],
    ['a backslash then a u, after an escaped backslash', '{"kind":"hello","from":"p","session":1,"offer":"\\\\u"}'],
    ['an id of 65 characters', `{"kind":"bye","from":"${'p'.repeat(65)}","session":1}`],
  ])('leaves %s to the full way', (_name, text) => {
    expect(scanBatch(Buffer.from(text), PEER, MAX_BATCH, MAX_BYTES)).toBeUndefined()
  })

  test('measures a string by its characters once decoded, not as written: a candidate line may have 2048', () => {
    const candidate = (line: string) =>
      JSON.stringify({ kind: 'candidate', from: PEER, to: 'q', session: 1, toSession: 1, candidate: { candidate: line } })
    const atLimit = candidate('a\n'.repeat(1024))
    expect(atLimit.length).toBeGreaterThan(3000)
    expect(agrees(atLimit)).toBe(true)
    expect(scan(candidate(`${'a\n'.repeat(1024)}a`))).toBeUndefined()
    expect(fullWay(Buffer.from(candidate(`${'a\n'.repeat(1024)}a`)))).toEqual({ refused: 'invalid-signal' })
  })

  test('leaves a batch over maxBatch, and a message over maxBytes, to the full way', () => {
    const bye = '{"kind":"bye","from":"p","session":1}'
    expect(scan(`[${Array(3).fill(bye).join(',')}]`, 2)).toBeUndefined()
    expect(scan(`[${Array(2).fill(bye).join(',')}]`, 2)?.messages).toHaveLength(2)
    expect(scan(bye, 2, bye.length - 1)).toBeUndefined()
    expect(scan(`[${bye}]`, 2, bye.length - 1)).toBeUndefined()
  })

  test('hands on the expected sender without a string of its own, and every other sender as written', () => {
    const first = (text: string) => scan(text, 1)?.messages[0]
    expect(first('{"kind":"bye","from":"p","session":1}')).toEqual(new Scanned(PEER, undefined))
    expect(first('{"kind":"bye","from":"pq","to":"r","session":1}')).toEqual(new Scanned('pq', 'r'))
  })

  test('agrees with the full way on 30 000 mutations of real and hostile frames', () => {
    const random = prng(17)
    const hostile = hostileJson(PEER)
    let taken = 0
    let refusedByBoth = 0
    for (let n = 0; n < 30_000; n++) {
      const base = n % 10 === 0 ? pick(random, hostile)(random) : frameText(random, PEER)
      let text = base.length > 20_000 ? base.slice(0, 20_000) : base
      for (let k = 1 + int(random, 3); k > 0; k--) text = mutated(random, text)
      // Now and then a byte of the wire itself: a bit flip, or a stray byte of a multi-byte character.
      const wire = Buffer.from(text)
      if (n % 5 === 0 && wire.length)
        wire[int(random, wire.length)] = pick(random, [0x80, 0xc3, 0xff, 0x22, 0x5c, int(random, 256)])
      if (agrees(text, wire)) {
        taken++
        if ('refused' in fullWay(wire)) refusedByBoth++
      }
    }
    // Not vacuous: some mutations leave a message the shortcut still takes (a changed SDP character, a spoofed `from`).
    expect(taken).toBeGreaterThan(1000)
    expect(refusedByBoth).toBeGreaterThan(0)
  })
})
