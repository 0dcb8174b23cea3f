import type { Batch } from './body.js'

/**
 * The fast way in for the messages clients write (`JSON.stringify` of a valid signal): one pass
 * over the text that checks it as JSON and as a signal, with no JSON.parse and no validated copy.
 * Under relay load those two made a third of what the server allocated, and the garbage
 * collector's share of its time twice PeerJS's.
 *
 * It is only a shortcut. It takes a text only when it can tell that the full way (`parseBatch`,
 * `parseSignal`, then relaying the text as it came) would take it and relay exactly that text, to
 * the same recipient: no space outside strings, no `\u` escape, no number but a plain integer,
 * no key twice, none unknown, no `null` but where a field may be absent. Anything else — every
 * refusal included — it leaves to the full way (`scanBatch` answers undefined), which says why.
 */

/** A message the scan took: what routing needs of it. Nothing JSON.parse makes is one. */
export class Scanned {
  constructor(
    /** Its sender, as written. */
    readonly from: string,
    /** Its recipient; undefined for a broadcast. */
    readonly to: string | undefined,
  ) {}
}

// Fields by bit: which were seen (twice is a fallback), which each kind allows and needs.
const KIND = 1
const FROM = 2
const TO = 4
const SESSION = 8
const TO_SESSION = 16
const SINCE = 32
const OFFER = 64
const DESCRIPTION = 128
const CANDIDATE = 256
const COMMON = KIND | FROM | TO | SESSION
/** Per kind: the fields it may have, and those it must (every other is optional). */
const KINDS = {
  hello: { allowed: COMMON | TO_SESSION | SINCE | OFFER, required: KIND | FROM | SESSION },
  bye: { allowed: COMMON, required: KIND | FROM | SESSION },
  description: { allowed: COMMON | TO_SESSION | DESCRIPTION, required: COMMON | TO_SESSION | DESCRIPTION },
  candidate: { allowed: COMMON | TO_SESSION | CANDIDATE, required: COMMON | TO_SESSION | CANDIDATE },
} as const
const KIND_NAMES = Object.keys(KINDS) as (keyof typeof KINDS)[]

/** What a field's value may be, besides what its name says. */
const NO_NUMBER = -1
const NULL = -2
/** Digits a number may have here: fifteen are always a safe integer. */
const MAX_DIGITS = 15
const MAX_ID = 64

const QUOTE = 34
const BACKSLASH = 92

/** Is `c` one of the characters of a peer id (`[\w.:~-]`)? */
const idCharacter = (c: number) =>
  (c >= 48 && c <= 57) ||
  (c >= 65 && c <= 90) ||
  (c >= 97 && c <= 122) ||
  c === 95 ||
  c === 46 ||
  c === 58 ||
  c === 126 ||
  c === 45

/**
 * What the scan leaves to the full way wherever it is: a raw control character (not JSON inside a
 * string; outside one, a space the scan does not skip), and a backslash that does not start one
 * of JSON's two-character escapes — a `\u` (the full way relays no text with one as it came) or
 * no escape at all (not JSON). One native pass over the text; it may see an escape in `\\x`
 * that is none, which only sends that text the full way.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: raw control characters are what it looks for
const SUSPECT = /[\x00-\x1f]|\\[^"\\/bfnrt]/

/**
 * One scan's state: where it is, and what the last value read was. A class rather than
 * closures or result objects, so a scan allocates nothing but the strings it hands on.
 */
class Scanner {
  at = 0
  /** The last string read: its characters, as written, lie in `[start, end)` of the text. */
  start = 0
  end = 0
  /** The last number read, or {@link NULL}, or {@link NO_NUMBER}. */
  number = NO_NUMBER

  constructor(readonly text: string) {}

  /**
   * Reads the string that opens at `at`: its closing quote is the first one after an even run
   * of backslashes (every escape is two characters: {@link SUSPECT} let no other kind through).
   * Found with indexOf, natively: an SDP is most of a message, and a loop over its characters
   * cost as much as the JSON.parse this saves.
   */
  string(): boolean {
    const { text } = this
    if (text.charCodeAt(this.at) !== QUOTE) return false
    const start = this.at + 1
    for (let end = text.indexOf('"', start); end >= 0; end = text.indexOf('"', end + 1)) {
      let backslashes = 0
      while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes++
      if (backslashes % 2 === 0) {
        this.start = start
        this.end = end
        this.at = end + 1
        return true
      }
    }
    return false
  }

  /** Reads a string of at most `max` characters once decoded (an escape is two characters for one); false otherwise. */
  bounded(max: number): boolean {
    if (!this.string()) return false
    const { start, end, text } = this
    if (end - start <= max) return true
    let escapes = 0
    for (let i = text.indexOf('\\', start); i >= 0 && i < end; i = text.indexOf('\\', i + 2)) escapes++
    return end - start - escapes <= max
  }

  /** Reads a string that is `null` (sets {@link number} to {@link NULL}) or of at most `max` characters. */
  optionalBounded(max: number): boolean {
    if (this.null()) return true
    this.number = NO_NUMBER
    return this.bounded(max)
  }

  /** Reads a peer id: 1 to 64 id characters, no escape (none of them needs one; a backslash is no id character). */
  id(): boolean {
    if (!this.string()) return false
    const { start, end, text } = this
    if (end === start || end - start > MAX_ID) return false
    for (let i = start; i < end; i++) if (!idCharacter(text.charCodeAt(i))) return false
    return true
  }

  /** Reads `null` (sets {@link number} to {@link NULL}); false, and nothing read, if it is not there. */
  null(): boolean {
    if (!this.text.startsWith('null', this.at)) return false
    this.at += 4
    this.number = NULL
    return true
  }

  /**
   * Reads a whole number written plainly (`0`, or digits not starting with 0: no sign, fraction
   * or exponent), or `null`; sets {@link number}. False for anything else.
   */
  integer(): boolean {
    if (this.null()) return true
    const { text } = this
    let value = 0
    let i = this.at
    for (; i < text.length && i - this.at <= MAX_DIGITS; i++) {
      const c = text.charCodeAt(i)
      if (c < 48 || c > 57) break
      value = value * 10 + (c - 48)
    }
    const digits = i - this.at
    if (digits === 0 || digits > MAX_DIGITS || (digits > 1 && text.charCodeAt(this.at) === 48)) return false
    this.at = i
    this.number = value
    return true
  }

  /** Expects character `c` next. */
  expect(c: number): boolean {
    if (this.text.charCodeAt(this.at) !== c) return false
    this.at++
    return true
  }

  /** Reads a key and its colon; returns its name's start, or -1. (A key written with an escape is none of ours: {@link is} tells.) */
  key(): number {
    if (!this.string() || !this.expect(58)) return -1
    return this.start
  }

  /** Is the key just read `name`? */
  is(name: string): boolean {
    return this.end - this.start === name.length && this.text.startsWith(name, this.start)
  }

  /** After a value: a comma (true, another key follows), or the closing brace (false, `at` past it); -1 for anything else. */
  next(): boolean | -1 {
    const c = this.text.charCodeAt(this.at++)
    return c === 44 ? true : c === 125 ? false : -1
  }

  /** `{"type":"offer"|"answer","sdp":…}`, in either order. */
  description(maxBytes: number): boolean {
    if (!this.expect(123)) return false
    let seen = 0
    for (;;) {
      if (this.key() < 0) return false
      if (this.is('type') && !(seen & 1)) {
        if (!this.string() || !(this.is('offer') || this.is('answer'))) return false
        seen |= 1
      } else if (this.is('sdp') && !(seen & 2)) {
        if (!this.bounded(maxBytes)) return false
        seen |= 2
      } else return false
      const more = this.next()
      if (more === -1) return false
      if (!more) return seen === 3
    }
  }

  /** `null` (end-of-candidates), or `{candidate, sdpMid?, sdpMLineIndex?, usernameFragment?}` as `parseSignal` takes them. */
  candidate(): boolean {
    if (this.null()) return true
    if (!this.expect(123)) return false
    let seen = 0
    for (;;) {
      if (this.key() < 0) return false
      let bit: number
      if (this.is('candidate')) {
        bit = 1
        if (!this.bounded(2048)) return false
      } else if (this.is('sdpMid')) {
        bit = 2
        if (!this.optionalBounded(256)) return false
      } else if (this.is('sdpMLineIndex')) {
        bit = 4
        if (!this.integer()) return false
      } else if (this.is('usernameFragment')) {
        bit = 8
        if (!this.optionalBounded(256)) return false
      } else return false
      if (seen & bit) return false
      seen |= bit
      const more = this.next()
      if (more === -1) return false
      if (!more) return (seen & 1) === 1
    }
  }
}

/**
 * Scans one message from `scanner.at` on (an object); returns what routing needs of it, or
 * undefined if the full way must judge it. `peer` is the sender the server expects: a `from`
 * written as it is costs no string of its own.
 */
function scanMessage(scanner: Scanner, peer: string | undefined, maxBytes: number): Scanned | undefined {
  const { text } = scanner
  if (!scanner.expect(123)) return undefined
  let seen = 0
  let kind: (typeof KINDS)[keyof typeof KINDS] | undefined
  let from: string | undefined
  let to: string | undefined
  let session = NO_NUMBER
  let toSession = NO_NUMBER
  let since = NO_NUMBER
  for (;;) {
    if (scanner.key() < 0) return undefined
    let bit: number
    if (scanner.is('kind')) {
      bit = KIND
      if (!scanner.string()) return undefined
      kind = undefined
      for (const name of KIND_NAMES) if (scanner.is(name)) kind = KINDS[name]
      if (!kind) return undefined
    } else if (scanner.is('from')) {
      bit = FROM
      if (!scanner.id()) return undefined
      const { start, end } = scanner
      from = peer !== undefined && end - start === peer.length && text.startsWith(peer, start) ? peer : text.slice(start, end)
    } else if (scanner.is('to')) {
      bit = TO
      if (!scanner.id()) return undefined // `to: null` is refused, by the full way
      to = text.slice(scanner.start, scanner.end)
    } else if (scanner.is('session')) {
      bit = SESSION
      if (!scanner.integer()) return undefined
      session = scanner.number
    } else if (scanner.is('toSession')) {
      bit = TO_SESSION
      if (!scanner.integer()) return undefined
      toSession = scanner.number
    } else if (scanner.is('since')) {
      bit = SINCE
      if (!scanner.integer()) return undefined
      since = scanner.number
    } else if (scanner.is('offer')) {
      bit = OFFER
      if (!scanner.optionalBounded(maxBytes)) return undefined
    } else if (scanner.is('description')) {
      bit = DESCRIPTION
      if (!scanner.description(maxBytes)) return undefined
    } else if (scanner.is('candidate')) {
      bit = CANDIDATE
      if (!scanner.candidate()) return undefined
    } else return undefined
    if (seen & bit) return undefined
    seen |= bit
    const more = scanner.next()
    if (more === -1) return undefined
    if (!more) break
  }
  if (!kind || from === undefined || (seen & kind.required) !== kind.required || seen & ~kind.allowed) return undefined
  // Session 0 only in a hello (a room member's presence); toSession and since, when given, from 1.
  if (session < (kind === KINDS.hello ? 0 : 1)) return undefined
  if (seen & TO_SESSION && (toSession === 0 || (toSession === NULL && kind !== KINDS.hello))) return undefined
  if (since === 0) return undefined
  return new Scanned(from, to)
}

/**
 * A POST body or WebSocket frame — one message, or an array of 1 to `maxBatch` — as the full way
 * would take it, when the scan can tell (see above); otherwise undefined. `maxBytes` is the size
 * a relayed message may have (`maxMessageBytes`); `peer`, the sender expected, when known.
 */
export function scanBatch(text: string, peer: string | undefined, maxBatch: number, maxBytes: number): Batch | undefined {
  if (SUSPECT.test(text)) return undefined
  const scanner = new Scanner(text)
  if (text.charCodeAt(0) !== 91) {
    if (text.length > maxBytes) return undefined
    const message = scanMessage(scanner, peer, maxBytes)
    return message && scanner.at === text.length ? { messages: [message], texts: [text] } : undefined
  }
  scanner.at = 1
  const messages: Scanned[] = []
  const texts: string[] = []
  for (;;) {
    const start = scanner.at
    const message = scanMessage(scanner, peer, maxBytes)
    if (!message || scanner.at - start > maxBytes || messages.length === maxBatch) return undefined
    messages.push(message)
    texts.push(text.slice(start, scanner.at))
    const c = text.charCodeAt(scanner.at++)
    if (c === 93) break // ]
    if (c !== 44) return undefined // ,
  }
  return scanner.at === text.length ? { messages, texts } : undefined
}
