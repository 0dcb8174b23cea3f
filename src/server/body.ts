import { Refusal } from './http-errors.js'

/** Deepest nesting a signaling message has (message → description / candidate); anything deeper is not ours. */
const MAX_DEPTH = 8

/**
 * Nesting depth of a JSON text, outside strings, in one pass. Checked before
 * JSON.parse so a body of ten thousand `[` is refused for what it is, and cheaply
 * (parsing it would build ten thousand arrays first). Strings are skipped with
 * indexOf, natively: a batch's SDP is most of its characters, and a loop over
 * each of them was a fifth of the server's time under SSE load.
 */
export function depthOf(text: string): number {
  let depth = 0
  let deepest = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      // A string: on to its closing quote, the first one not escaped.
      let end = text.indexOf('"', i + 1)
      while (end > 0 && escaped(text, end)) end = text.indexOf('"', end + 1)
      if (end < 0) break // unterminated: not JSON, JSON.parse says so
      i = end
    } else if (c === 123 || c === 91) {
      if (++depth > deepest) deepest = depth
    } else if (c === 125 || c === 93) depth--
  }
  return deepest
}

/**
 * Whether the character at `at` is escaped: an odd run of backslashes before it. Each backslash
 * is counted for one quote at most (the run ends at the previous quote), so the scan stays linear.
 */
function escaped(text: string, at: number): boolean {
  let backslashes = 0
  while (text.charCodeAt(at - 1 - backslashes) === 92) backslashes++
  return backslashes % 2 === 1
}

/** Counts `{` and `[`, stopping past MAX_DEPTH: indexOf runs natively, far faster than a JS loop per character. */
function brackets(text: string): number {
  let count = 0
  for (const bracket of ['{', '[']) {
    for (let i = text.indexOf(bracket); i >= 0 && count <= MAX_DEPTH; i = text.indexOf(bracket, i + 1)) count++
  }
  return count
}

/**
 * The text of each element of a JSON array text, in order (whitespace around them trimmed): the
 * commas at depth 1 split it. Only for a text JSON.parse took as an array, so every string in it
 * ends. Strings are skipped with indexOf, as in {@link depthOf}.
 */
function elements(text: string): string[] {
  const texts: string[] = []
  let depth = 0
  let start = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      let end = text.indexOf('"', i + 1)
      while (end > 0 && escaped(text, end)) end = text.indexOf('"', end + 1)
      if (end < 0) break // not reached: JSON.parse took the text
      i = end
    } else if (c === 123 || c === 91) {
      if (++depth === 1) start = i + 1
    } else if (c === 125 || c === 93) {
      if (--depth === 0) texts.push(text.slice(start, i).trim())
    } else if (c === 44 && depth === 1) {
      texts.push(text.slice(start, i).trim())
      start = i + 1
    }
  }
  return texts
}

/** A POST body or WebSocket frame, parsed. */
export interface Batch {
  /** Its messages, as parsed (not yet validated). */
  messages: unknown[]
  /**
   * The JSON text of each message, as it came: the relay passes a message on as its own text when
   * it validates to exactly what the text says, instead of serializing the message again.
   */
  texts: string[]
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
  if (!Array.isArray(parsed)) return { messages: [parsed], texts: [text] }
  if (!parsed.length || parsed.length > maxBatch) throw new Refusal('bad-request', `Send 1 to ${maxBatch} messages`)
  const texts = elements(text)
  // A split that disagrees with the parser (it cannot, for JSON the parser took): nothing travels as it came.
  return { messages: parsed, texts: texts.length === parsed.length ? texts : parsed.map(() => '') }
}
