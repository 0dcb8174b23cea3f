// The wire format of `politely/reliable` (docs/protocol.md, "Reliable delivery"): binary
// frames, a type byte, a flags byte, then big-endian u32 fields (DATA: then the payload).
// Pure functions, tested without a connection.

/** A piece of a message (or an abort marker): `seq`, then payload bytes. */
export const DATA = 1
/** Cumulative acknowledgement: `seq`, every frame up to it arrived. */
export const ACK = 2
/** Sent on every `open`: `nonce` (2 words), `seen` (2 words), `base`, `received`. */
export const SYNC = 3

/** DATA flags: the message is a string (UTF-8); this is its last chunk. */
export const STRING = 1
export const LAST = 2
/** The message this frame belongs to was aborted: the receiver drops what it has of it. */
export const ABORT = 4

const HEAD = 2
/** Number of u32 fields of each frame type. */
const FIELDS = [0, 1, 1, 6]

/** Bytes before a DATA frame's payload. */
export const DATA_HEADER = HEAD + 4

/** A decoded frame: its type, flags and fields; a DATA frame's payload. */
export interface Frame {
  type: number
  flags: number
  fields: number[]
  payload: Uint8Array
}

/** Encodes a frame. A field is written modulo 2³² (sequence numbers wrap on the wire). */
export function encode(type: number, fields: number[], flags = 0, payload: Uint8Array = new Uint8Array()): ArrayBuffer {
  const start = HEAD + 4 * fields.length
  const bytes = new Uint8Array(start + payload.length)
  const view = new DataView(bytes.buffer)
  bytes[0] = type
  bytes[1] = flags
  for (const [i, field] of fields.entries()) view.setUint32(HEAD + 4 * i, field)
  bytes.set(payload, start)
  return bytes.buffer
}

/**
 * Reads one frame, or `undefined` when it is not a well-formed one (the remote is
 * untrusted: wrong type, unknown flags, truncated, a string).
 */
export function decode(data: string | ArrayBuffer): Frame | undefined {
  const bytes = typeof data === 'string' ? new Uint8Array() : new Uint8Array(data)
  const [type = 0, flags = 0] = bytes
  const count = FIELDS[type]
  const start = HEAD + 4 * count!
  if (!count || flags > 7 || (type === DATA ? bytes.length < start : bytes.length !== start)) return undefined
  const view = new DataView(bytes.buffer)
  const fields = Array.from({ length: count }, (_, i) => view.getUint32(HEAD + 4 * i))
  return { type, flags, fields, payload: bytes.subarray(start) }
}

/** A nonce (an integer below 2⁵³) as two fields, and back. */
export const split = (nonce: number): number[] => [nonce / 2 ** 32, nonce]
export const join = (high: number, low: number): number => high * 2 ** 32 + low
