import { Refusal } from './http-errors.js'

/** Deepest nesting a signaling message has (message → description / candidate); anything deeper is not ours. */
const MAX_DEPTH = 8

/** The shape of a JSON text outside its strings: how deep it nests, its keys, and where its top level is cut. */
interface Outline {
  deepest: number
  /** Keys written (a colon outside strings is one), duplicates included: JSON.parse keeps only the last of those. */
  keys: number
  /** The opening bracket, the commas and the closing bracket at depth 1: a top-level array's elements lie between them. */
  cuts: number[]
}

/**
 * The {@link Outline} of a JSON text, in one pass. Its depth is checked before JSON.parse so a
 * body of ten thousand `[` is refused for what it is, and cheaply (parsing it would build ten
 * thousand arrays first). Strings are skipped with indexOf, natively: a batch's SDP is most of
 * its characters, and a loop over each of them was a fifth of the server's time under SSE load.
 * `withCuts: false` when only the depth and keys are wanted: no array per call.
 */
export function outline(text: string, withCuts = true): Outline {
  let depth = 0
  let deepest = 0
  let keys = 0
  const cuts: number[] = []
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 34) {
      i = stringEnd(text, i)
      if (i < 0) break // unterminated: not JSON, JSON.parse says so
    } else if (c === 123 || c === 91) {
      if (++depth > deepest) deepest = depth
      if (depth === 1 && withCuts) cuts.push(i)
    } else if (c === 125 || c === 93) {
      if (depth-- === 1 && withCuts) cuts.push(i)
    } else if (c === 44 && depth === 1 && withCuts) cuts.push(i)
    else if (c === 58) keys++
  }
  return { deepest, keys, cuts }
}

/**
 * Where the string opened by the quote at `open` closes: its first quote not escaped (after an
 * odd run of backslashes); -1 if it never does. Each backslash is counted for one quote at most
 * (a run ends at the quote before it), so the scan stays linear.
 */
function stringEnd(text: string, open: number): number {
  for (let end = text.indexOf('"', open + 1); end >= 0; end = text.indexOf('"', end + 1)) {
    let backslashes = 0
    while (text.charCodeAt(end - 1 - backslashes) === 92) backslashes++
    if (backslashes % 2 === 0) return end
  }
  return -1
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
  /** Its messages, as parsed; each becomes its validated copy once validated (`validateBatch`). */
  messages: unknown[]
  /**
   * The JSON text of each message, as it came: the relay passes a message on as its own text when
   * it validates to exactly what the text says, instead of serializing the message again.
   */
  texts: string[]
  /**
   * Each message's UTF-8 bytes as they came, when a scan took the batch (`scanBatch`): then they,
   * not `texts`, are what is relayed. Views of the frame or body, which stays as it is.
   */
  bytes?: Buffer[]
}

/** Parses a POST body or WebSocket frame: one message or an array of 1 to `maxBatch`. Throws a {@link Refusal}. */
export function parseBatch(text: string, maxBatch: number): Batch {
  // The outline first only for texts with enough brackets to be too deep (a message has about five).
  const shape = brackets(text) > MAX_DEPTH ? outline(text) : undefined
  if (shape && shape.deepest > MAX_DEPTH) throw new Refusal('invalid-signal', `JSON nested deeper than ${MAX_DEPTH} levels`)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new Refusal('invalid-signal', 'Not JSON')
  }
  if (!Array.isArray(parsed)) return { messages: [parsed], texts: owned([text.trim()], text) }
  if (!parsed.length || parsed.length > maxBatch) throw new Refusal('bad-request', `Send 1 to ${maxBatch} messages`)
  // Each element's own text (spaces around it trimmed) lies between two cuts of the array.
  const { cuts } = shape ?? outline(text)
  const texts = cuts.slice(1).map((cut, k) => text.slice((cuts[k] as number) + 1, cut).trim())
  // A split that disagrees with the parser (it cannot, for JSON the parser took): nothing travels as it came.
  return { messages: parsed, texts: texts.length === parsed.length ? owned(texts, text) : parsed.map(() => '') }
}

/**
 * `texts`, cut out of `whole`, as strings that do not keep `whole` alive where that would hold
 * much more than they are. A cut is a view of the string it came from (in V8), and a relayed
 * text lives on in the replay buffer and in slow readers' queues, each counted at its own size:
 * 4 KB of message padded with 500 KB of spaces would hold the 500 KB. So when the texts are less
 * than half of `whole`, each becomes a copy of its own; otherwise a view holds at most twice what
 * is counted.
 */
function owned(texts: string[], whole: string): string[] {
  let length = 0
  for (const text of texts) length += text.length
  if (length * 2 >= whole.length) return texts
  return texts.map((text) => Buffer.from(text).toString())
}
