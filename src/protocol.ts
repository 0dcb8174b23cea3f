import { PolitelyError } from './errors'

/**
 * The signaling protocol. Every message names its sender (`from`) and the
 * sender's connection generation (`session`); messages meant for one peer
 * name it in `to`, and the recipient's generation in `toSession`, so a
 * message written for a connection that has since been rebuilt is dropped
 * instead of confusing the new one.
 */
export type SignalMessage = HelloMessage | DescriptionMessage | CandidateMessage | ByeMessage

interface MessageBase {
  /** Sender's peer id. */
  from: string
  /** Sender's connection generation: grows by one on every rebuild. */
  session: number
  /** Recipient's peer id; absent on broadcasts. */
  to?: string
}

/**
 * "I am here, on this session." Broadcast on start; answered, addressed, by
 * whoever hears it. `toSession` says the sender's connection is paired with
 * that session of the recipient.
 */
export interface HelloMessage extends MessageBase {
  kind: 'hello'
  toSession?: number
}

/** An SDP offer or answer for the recipient's session `toSession`. */
export interface DescriptionMessage extends MessageBase {
  kind: 'description'
  to: string
  toSession: number
  description: { type: 'offer' | 'answer'; sdp: string }
}

/** A trickled ICE candidate; `null` is end-of-candidates. */
export interface CandidateMessage extends MessageBase {
  kind: 'candidate'
  to: string
  toSession: number
  candidate: CandidateInit | null
}

/** The sender is leaving: tear down now instead of waiting for ICE to time out. */
export interface ByeMessage extends MessageBase {
  kind: 'bye'
}

/** The JSON form of an `RTCIceCandidate` (`candidate.toJSON()`). */
export interface CandidateInit {
  candidate: string
  sdpMid?: string | null
  sdpMLineIndex?: number | null
  usernameFragment?: string | null
}

/** The message kinds this version understands. */
export const SIGNAL_KINDS: readonly SignalMessage['kind'][] = ['hello', 'description', 'candidate', 'bye']

/** Largest accepted signaling message, in characters of JSON; SDP of a large call is ~40 000. */
export const DEFAULT_MAX_SIGNAL_SIZE = 128 * 1024

const ID_PATTERN = /^[\w.:~-]{1,64}$/
const MAX_CANDIDATE_FIELD = 2048

/** Whether `value` can be used as a peer id: 1–64 of `A–Z a–z 0–9 _ . : ~ -`. */
export function isValidPeerId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value)
}

/** The field named is missing or has the wrong type, range or length; see the types above. */
function invalid(field: string): PolitelyError {
  return new PolitelyError('invalid-signal', `Invalid signal field: ${field}`)
}

function tooLarge(size: number, max: number): PolitelyError {
  return new PolitelyError('signal-too-large', `Signal of ${size} characters exceeds ${max}`)
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function isSession(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0
}

function readCandidate(value: unknown): CandidateInit | null {
  if (value === null) return null
  if (!isRecord(value) || typeof value.candidate !== 'string' || value.candidate.length > MAX_CANDIDATE_FIELD)
    throw invalid('candidate')
  const { candidate, sdpMid, sdpMLineIndex, usernameFragment } = value
  if (sdpMLineIndex != null && !(Number.isInteger(sdpMLineIndex) && (sdpMLineIndex as number) >= 0))
    throw invalid('candidate.sdpMLineIndex')
  for (const field of [sdpMid, usernameFragment]) {
    if (field != null && !(typeof field === 'string' && field.length <= 256)) throw invalid('candidate.sdpMid/usernameFragment')
  }
  // A fresh object: nothing else from untrusted input reaches the RTCPeerConnection.
  return { candidate, sdpMid, sdpMLineIndex, usernameFragment } as CandidateInit
}

function readDescription(value: unknown, maxSize: number): DescriptionMessage['description'] {
  if (!isRecord(value) || (value.type !== 'offer' && value.type !== 'answer') || typeof value.sdp !== 'string') {
    throw invalid('description')
  }
  if (value.sdp.length > maxSize) throw tooLarge(value.sdp.length, maxSize)
  return { type: value.type, sdp: value.sdp }
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
  if (!isRecord(value)) throw invalid('(not an object)')
  const { kind, from, to, session } = value
  if (typeof kind !== 'string') throw invalid('kind')
  if (!SIGNAL_KINDS.includes(kind as never)) {
    throw new PolitelyError('unknown-kind', `Unknown signal kind: ${kind.slice(0, 32)}`)
  }
  if (!isValidPeerId(from)) throw invalid('from')
  if (to !== undefined && !isValidPeerId(to)) throw invalid('to')
  if (!isSession(session)) throw invalid('session')
  const message: Record<string, unknown> = { kind, from, session }
  if (to !== undefined) message.to = to
  const { toSession } = value
  // toSession is optional on hello (and meaningless without `to`), required on descriptions and candidates.
  if (kind === 'description' || kind === 'candidate' || (kind === 'hello' && to !== undefined && toSession !== undefined)) {
    if (to === undefined) throw invalid('to')
    if (!isSession(toSession)) throw invalid('toSession')
    message.toSession = toSession
  }
  if (kind === 'description') message.description = readDescription(value.description, maxSize)
  if (kind === 'candidate') {
    if (!('candidate' in value)) throw invalid('candidate')
    message.candidate = readCandidate(value.candidate)
  }
  return message as unknown as SignalMessage
}
