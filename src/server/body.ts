import { Refusal } from './http-errors.js'

/** Deepest nesting a signaling message has (message → description / candidate); anything deeper is not ours. */
const MAX_DEPTH = 8

/**
 * Nesting depth of a JSON text, outside strings, in one pass. Checked before
 * JSON.parse so a body of ten thousand `[` is refused for what it is.
 */
function depthOf(text: string): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92)
        i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) deepest = Math.max(deepest, ++depth)
    else if (c === 125 || c === 93) depth--
  }
  return deepest
}

/** Counts `{` and `[`, stopping past MAX_DEPTH: indexOf runs natively, far faster than a JS loop per character. */
function brackets(text: string): number {
  let count = 0
  for (const bracket of ['{', '[']) {
    for (let i = text.indexOf(bracket); i >= 0 && count <= MAX_DEPTH; i = text.indexOf(bracket, i + 1)) count++
  }
  return count
}

/** A POST body or WebSocket frame, parsed. */
export interface Batch {
  /** Its messages, as parsed (not yet validated). */
  messages: unknown[]
  /**
   * The JSON text of its message when it has only one (the frame itself, or what its brackets
   * hold): the relay passes it on as it came when it validates to exactly what it says, instead
   * of serializing the message again.
   */
  sole?: string
}

/** Parses a POST body or WebSocket frame: one message or an array of 1 to `maxBatch`. Throws a {@link Refusal}. */
export function parseBatch(text: string, maxBatch: number): Batch {
  // The full walk only for texts with enough brackets to be too deep (a message has about five).
  if (brackets(text) > MAX_DEPTH && depthOf(text) > MAX_DEPTH)
    throw new Refusal('invalid-signal', `JSON nested deeper than ${MAX_DEPTH} levels`)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new Refusal('invalid-signal', 'Not JSON')
  }
  if (!Array.isArray(parsed)) return { messages: [parsed], sole: text }
  if (!parsed.length || parsed.length > maxBatch) throw new Refusal('bad-request', `Send 1 to ${maxBatch} messages`)
  // JSON text that parsed to an array starts with its `[` and ends with its `]` (whitespace aside).
  return { messages: parsed, sole: parsed.length === 1 ? text.slice(text.indexOf('[') + 1, text.lastIndexOf(']')) : undefined }
}
