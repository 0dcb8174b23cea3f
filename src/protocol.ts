import { PolitelyError } from './errors.js'

/**
 * The signaling protocol. Every message names its sender (`from`) and the
 * sender's connection generation (`session`); messages meant for one peer
 * name it in `to`, and the recipient's generation in `toSession`, so a
 * message written for a connection that has since been rebuilt is dropped
 * instead of confusing the new one.
 *
 * @example
 * peer.on('signal', ({ direction, message }) => console.log(direction, message.kind, message.from, message.session))
 */
export type SignalMessage = HelloMessage | DescriptionMessage | CandidateMessage | ByeMessage

interface MessageBase {
  /** Sender's peer id. */
  from: string
  /** Sender's connection generation: grows by one on every rebuild. 0 only in a room member's presence hello. */
  session: number
  /** Recipient's peer id; absent on broadcasts. */
  to?: string
}

/**
 * "I am here, on this session." Broadcast on start; answered, addressed, by
 * whoever hears it. `toSession` says the sender's connection is paired with
 * that session of the recipient.
 *
 * @example
 * peer.on('signal', ({ direction, message }) => {
 *   if (direction === 'in' && message.kind === 'hello') console.log(message.from, 'is here, since', message.since)
 * })
 */
export interface HelloMessage extends MessageBase {
  /** Message type. */
  kind: 'hello'
  /** The recipient's session the sender is paired with; absent on a broadcast, or when the sender is unpaired. */
  toSession?: number
  /** When the sender's instance started (ms since the epoch): a later start replaces an earlier one. */
  since?: number
  /**
   * An offer the unpaired sender made in advance (not yet set): a polite
   * recipient answers it at once, saving the impolite side's first trip.
   */
  offer?: string
}

/**
 * An SDP offer or answer for the recipient's session `toSession`.
 *
 * @example
 * peer.on('signal', ({ direction, message }) => {
 *   if (message.kind === 'description') console.log(direction, message.description.type, 'for session', message.toSession)
 * })
 */
export interface DescriptionMessage extends MessageBase {
  /** Message type. */
  kind: 'description'
  /** Recipient's peer id: descriptions are never broadcast. */
  to: string
  /** The recipient's session it was made for; any other session drops it. */
  toSession: number
  /** The session description, as `RTCSessionDescriptionInit` has it. */
  description: {
    /** Offer or answer (rollbacks stay local). */
    type: 'offer' | 'answer'
    /** The SDP text. */
    sdp: string
  }
}

/**
 * A trickled ICE candidate; `null` is end-of-candidates.
 *
 * @example
 * // End-of-candidates, from alice's session 2 to bob's session 1.
 * const end: CandidateMessage = { kind: 'candidate', from: 'alice', session: 2, to: 'bob', toSession: 1, candidate: null }
 */
export interface CandidateMessage extends MessageBase {
  /** Message type. */
  kind: 'candidate'
  /** Recipient's peer id: candidates are never broadcast. */
  to: string
  /** The recipient's session it is meant for; any other session drops it. */
  toSession: number
  /** The candidate, or `null` for end-of-candidates. */
  candidate: CandidateInit | null
}

/**
 * The sender is leaving: tear down now instead of waiting for ICE to time out.
 *
 * @example
 * peer.on('signal', ({ direction, message }) => {
 *   if (direction === 'in' && message.kind === 'bye') console.log(`${message.from} left`)
 * })
 */
export interface ByeMessage extends MessageBase {
  /** Message type. */
  kind: 'bye'
}

/**
 * The JSON form of an `RTCIceCandidate` (`candidate.toJSON()`).
 *
 * @example
 * const init: CandidateInit = { candidate: 'candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host', sdpMid: '0' }
 * await pc.addIceCandidate(init)
 */
export interface CandidateInit {
  /** The `candidate:` attribute line (at most 2048 characters); empty for end-of-candidates in some browsers. */
  candidate: string
  /** The `a=mid` of the m-section it belongs to. */
  sdpMid?: string | null
  /** Index of the m-section it belongs to, from 0. */
  sdpMLineIndex?: number | null
  /** ICE username fragment (`a=ice-ufrag`) it belongs to: tells an ICE restart's candidates from the old ones. */
  usernameFragment?: string | null
}

/** Largest accepted signaling message, in characters of JSON; SDP of a large call is ~40 000. */
export const DEFAULT_MAX_SIGNAL_SIZE = 128 * 1024

const ID_PATTERN = /^[\w.:~-]{1,64}$/

/**
 * Whether `value` can be used as a peer id: 1–64 of `A–Z a–z 0–9 _ . : ~ -`.
 *
 * @example
 * const id = new URLSearchParams(location.search).get('id')
 * const peer = new PerfectNegotiationPeer({ signaler, id: isValidPeerId(id) ? id : undefined })
 */
export function isValidPeerId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value)
}

/** Checks one field of untrusted input and returns what may be kept of it (a fresh copy for objects). */
type Field = (value: unknown, name: string) => unknown

/** The field named is missing or has the wrong type, range or length; see the message types above. */
function invalid(name: string): never {
  throw new PolitelyError('invalid-signal', `Invalid signal field: ${name}`)
}

function tooLarge(size: number, max: number): PolitelyError {
  return new PolitelyError('signal-too-large', `Signal of ${size} characters exceeds ${max}`)
}

const id: Field = (value, name) => (isValidPeerId(value) ? value : invalid(name))
const positive: Field = (value, name) => (Number.isSafeInteger(value) && (value as number) > 0 ? value : invalid(name))
const index: Field = (value, name) => (Number.isSafeInteger(value) && (value as number) >= 0 ? value : invalid(name))
const text =
  (max: number): Field =>
  (value, name) =>
    typeof value === 'string' && value.length <= max ? value : invalid(name)
const optional =
  (field: Field): Field =>
  (value, name) =>
    value == null ? value : field(value, name)
/** Only the listed fields are read and copied: nothing else from untrusted input travels further. */
const object = (shape: Record<string, Field>): Field => {
  const fields = Object.entries(shape)
  return (value, name) => {
    if (typeof value !== 'object' || !value) return invalid(name)
    const copy: Record<string, unknown> = {}
    for (const [key, field] of fields) {
      const kept = field((value as Record<string, unknown>)[key], key)
      if (kept !== undefined) copy[key] = kept
    }
    return copy
  }
}

/** An SDP, within the size limit. */
const sdp =
  (maxSize: number): Field =>
  (value, name) => {
    if (typeof value !== 'string') return invalid(name)
    if (value.length > maxSize) throw tooLarge(value.length, maxSize)
    return value
  }

const candidate = object({
  candidate: text(2048),
  sdpMid: optional(text(256)),
  sdpMLineIndex: optional(index),
  usernameFragment: optional(text(256)),
})

/** The fields of each kind, besides `kind`, `from`, `to` and `session`. */
const KINDS: Record<string, (maxSize: number) => Record<string, Field>> = {
  hello: (maxSize) => ({ toSession: optional(positive), since: optional(positive), offer: optional(sdp(maxSize)) }),
  bye: () => ({}),
  description: (maxSize) => ({
    to: id,
    toSession: positive,
    description: object({
      type: (value, name) => (value === 'offer' || value === 'answer' ? value : invalid(name)),
      sdp: sdp(maxSize),
    }),
  }),
  // `null` is end-of-candidates; a missing candidate is not.
  candidate: () => ({
    to: id,
    toSession: positive,
    candidate: (value, name) => (value === null ? null : candidate(value, name)),
  }),
}

/**
 * Validates one untrusted signaling message — a JSON string or an already
 * parsed value — and returns a fresh object holding only the known fields.
 * Throws a {@link PolitelyError} with code `invalid-signal`,
 * `signal-too-large` or `unknown-kind`.
 *
 * @example
 * const message = parseSignal(event.data)
 */
export function parseSignal(input: unknown, maxSize: number = DEFAULT_MAX_SIGNAL_SIZE): SignalMessage {
  let value = input
  if (typeof input === 'string') {
    // A UTF-16 length is never more than the UTF-8 byte length, so this bound is safe and O(1).
    if (input.length > maxSize) throw tooLarge(input.length, maxSize)
    try {
      value = JSON.parse(input)
    } catch (cause) {
      throw new PolitelyError('invalid-signal', 'Signal is not JSON', { cause })
    }
  }
  const kind = (value as { kind?: unknown } | null)?.kind
  if (typeof kind !== 'string') return invalid('kind')
  const fields = Object.hasOwn(KINDS, kind) && KINDS[kind]
  if (!fields) throw new PolitelyError('unknown-kind', `Unknown signal kind: ${kind.slice(0, 32)}`)
  // Made once per kind and size limit (a server validates every message it relays).
  // Session 0 is a room member's presence (a hello): it has no connection for the recipient yet.
  return (checks[kind + maxSize] ??= object({
    kind: String,
    from: id,
    to: optional(id),
    session: kind === 'hello' ? index : positive,
    ...fields(maxSize),
  }))(value, 'message') as SignalMessage
}

/** Validators by kind and size limit. */
const checks: Record<string, Field> = {}
