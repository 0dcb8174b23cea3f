import { isUtf8 } from 'node:buffer'
import type { Batch } from './body.js'

/**
 * The fast way in for the messages clients write (`JSON.stringify` of a valid signal): one pass
 * over the bytes of a frame or body that checks them as JSON and as a signal, with no text
 * decoded, no JSON.parse and no validated copy; the bytes themselves are what is relayed. Under
 * relay load those three made more than half of what the server allocated, and the garbage
 * collector's share of its time more than PeerJS's.
 *
 * It is only a shortcut. It takes a text only when it can tell that the full way (`parseBatch`,
 * `parseSignal`, then relaying the text as it came) would take it and relay exactly that text, to
 * the same recipient: no space outside strings, no `\u` in a string, no number but a plain integer,
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

/** What a byte is to a string's scan: {@link PLAIN}, or one of the others. */
const PLAIN = 0
const CLOSES = 1
const ESCAPES = 2
/** A raw control character: not JSON inside a string (outside one, a space the scan does not skip). */
const CONTROL = 3
/** A byte of a character beyond ASCII: the text must then be valid UTF-8 (checked once, natively). */
const WIDE = 4
const BYTE_CLASS = new Uint8Array(256).map((_, byte) =>
  byte === QUOTE ? CLOSES : byte === BACKSLASH ? ESCAPES : byte < 32 ? CONTROL : byte >= 128 ? WIDE : PLAIN,
)
/** Is `\` then `byte` one of JSON's two-character escapes (`\" \\ \/ \b \f \n \r \t`)? */
const shortEscape = (byte: number) =>
  byte === QUOTE ||
  byte === BACKSLASH ||
  byte === 47 ||
  byte === 98 ||
  byte === 102 ||
  byte === 110 ||
  byte === 114 ||
  byte === 116
const U = 117

const EMPTY = Buffer.alloc(0)

/**
 * One scan's state: where it is, and what the last string or number read was. A class rather than
 * closures or result objects, so a scan allocates nothing but the strings it hands on.
 */
class Scanner {
  at = 0
  /** The last string read: its bytes, as written, lie in `[start, end)`, `escapes` of its characters written as two. */
  start = 0
  end = 0
  escapes = 0
  /** A string held bytes beyond ASCII: the whole text must be valid UTF-8. */
  wide = false
  /** The last number read, or {@link NULL}, or {@link NO_NUMBER}. */
  number = NO_NUMBER

  /** The text scanned, and where it ends. */
  bytes: Buffer = EMPTY
  limit = 0

  /** Starts on `bytes`, from its first byte. */
  reset(bytes: Buffer): this {
    this.bytes = bytes
    this.limit = bytes.length
    this.at = 0
    this.wide = false
    return this
  }

  /**
   * Reads the string that opens at `at`: false if it is not one the full way would relay as it
   * came (a raw control character, an escape JSON has not, a `\u` anywhere — the full way
   * relays no text with one as written). A loop over bytes looking each up in a table: an SDP
   * is most of a message, and this was cheaper than decoding it and searching the text natively.
   */
  string(): boolean {
    const { bytes, limit } = this
    if (bytes[this.at] !== QUOTE) return false
    const start = this.at + 1
    let escapes = 0
    for (let i = start; i < limit; i++) {
      const kind = BYTE_CLASS[bytes[i] as number]
      if (kind === PLAIN) continue
      if (kind === CLOSES) {
        this.start = start
        this.end = i
        this.escapes = escapes
        this.at = i + 1
        return true
      }
      if (kind === ESCAPES) {
        const next = bytes[++i] as number
        // `\u`, and a `u` after an escaped backslash: either way the text holds a backslash then a `u`.
        if (!shortEscape(next) || (next === BACKSLASH && bytes[i + 1] === U)) return false
        escapes++
      } else if (kind === CONTROL) return false
      else this.wide = true
    }
    return false
  }

  /**
   * Reads a string of at most `max` characters once decoded. Its bytes less its escapes are at
   * least its characters (UTF-16 units), so this never takes one the full way would refuse.
   */
  bounded(max: number): boolean {
    return this.string() && this.end - this.start - this.escapes <= max
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
    const { start, end, bytes } = this
    if (end === start || end - start > MAX_ID) return false
    for (let i = start; i < end; i++) if (!idCharacter(bytes[i] as number)) return false
    return true
  }

  /** The last string read, as ASCII (an id's). */
  ascii(): string {
    return this.bytes.toString('latin1', this.start, this.end)
  }

  /** Is the last string read `text` (ASCII), as written? */
  is(text: string): boolean {
    const { start, end, bytes } = this
    if (end - start !== text.length) return false
    for (let i = 0; i < text.length; i++) if (bytes[start + i] !== text.charCodeAt(i)) return false
    return true
  }

  /** Reads `null` (sets {@link number} to {@link NULL}); false, and nothing read, if it is not there. */
  null(): boolean {
    const { bytes, at } = this
    if (bytes[at] !== 110 || bytes[at + 1] !== 117 || bytes[at + 2] !== 108 || bytes[at + 3] !== 108) return false
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
    const { bytes, limit } = this
    let value = 0
    let i = this.at
    for (; i < limit && i - this.at <= MAX_DIGITS; i++) {
      const c = bytes[i] as number
      if (c < 48 || c > 57) break
      value = value * 10 + (c - 48)
    }
    const digits = i - this.at
    if (digits === 0 || digits > MAX_DIGITS || (digits > 1 && bytes[this.at] === 48)) return false
    this.at = i
    this.number = value
    return true
  }

  /** Expects character `c` next. */
  expect(c: number): boolean {
    if (this.at >= this.limit || this.bytes[this.at] !== c) return false
    this.at++
    return true
  }

  /** Reads a key and its colon; returns its name's start, or -1. (A key written with an escape is none of ours: {@link is} tells.) */
  key(): number {
    if (!this.string() || !this.expect(58)) return -1
    return this.start
  }

  /** After a value: a comma (true, another key follows), or the closing brace (false, `at` past it); -1 for anything else. */
  next(): boolean | -1 {
    if (this.at >= this.limit) return -1
    const c = this.bytes[this.at++]
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
      from = peer !== undefined && scanner.is(peer) ? peer : scanner.ascii()
    } else if (scanner.is('to')) {
      bit = TO
      if (!scanner.id()) return undefined // `to: null` is refused, by the full way
      to = scanner.ascii()
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
 * would take it, when the scan can tell (see above); otherwise undefined. The batch's `bytes` are
 * views of `payload`, each message's as it came: `payload` must stay as it is while they live.
 * `maxBytes` is the size a relayed message may have (`maxMessageBytes`; its bytes are at least its
 * characters); `peer`, the sender expected, when known.
 */
export function scanBatch(payload: Buffer, peer: string | undefined, maxBatch: number, maxBytes: number): Batch | undefined {
  const batch = scanWith(SCANNER.reset(payload), peer, maxBatch, maxBytes)
  SCANNER.reset(EMPTY) // the frame is not kept alive by the scanner
  return batch
}

/** The one scanner: a scan runs start to end in one call, so scans never overlap. */
const SCANNER = new Scanner()

function scanWith(scanner: Scanner, peer: string | undefined, maxBatch: number, maxBytes: number): Batch | undefined {
  const payload = scanner.bytes
  if (payload[0] !== 91) {
    if (payload.length > maxBytes) return undefined
    const message = scanMessage(scanner, peer, maxBytes)
    if (!message || scanner.at !== payload.length || (scanner.wide && !isUtf8(payload))) return undefined
    // Arrays of their exact size: a push would make room for 17.
    return { messages: [message], texts: [], bytes: [payload] }
  }
  const messages: Scanned[] = []
  const bytes: Buffer[] = []
  scanner.at = 1
  for (;;) {
    const start = scanner.at
    const message = scanMessage(scanner, peer, maxBytes)
    if (!message || scanner.at - start > maxBytes || messages.length === maxBatch) return undefined
    messages.push(message)
    bytes.push(payload.subarray(start, scanner.at))
    const c = payload[scanner.at++]
    if (c === 93) break // ]
    if (c !== 44) return undefined // ,
  }
  // Bytes beyond ASCII (in strings only): the full way would decode invalid UTF-8 to U+FFFD.
  if (scanner.at !== payload.length || (scanner.wide && !isUtf8(payload))) return undefined
  return { messages, texts: [], bytes }
}
