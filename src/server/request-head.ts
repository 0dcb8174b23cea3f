/**
 * The head of a plain HTTP/1.1 GET, as the bare-socket front ({@link takeEventStreams}) reads it.
 * Deliberately a small subset of HTTP: whatever falls outside it is not an error here but a
 * request for node:http, whose parser answers it (a 400, a body, an upgrade, a head in pieces).
 */
export interface RequestHead {
  /** The request-target, origin-form: `/signal/room?peer=…`. */
  readonly url: string
  /** Header values by lower-case name, each name at most once. */
  readonly headers: Record<string, string>
  /** Names and values in arrival order, as node:http's `rawHeaders`. */
  readonly rawHeaders: string[]
}

/** Heads longer than this go to node:http (its own limit is 16 KB). */
export const MAX_BARE_HEAD_BYTES = 8192

const REQUEST_LINE = /^GET (\/[!-~]*) HTTP\/1\.1$/
// A token (RFC 9110 §5.6.2), a colon, optional blanks, a value of visible characters and blanks.
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([ -~\t]*?)[ \t]*$/
// Bytes the subset takes: visible ASCII, space, tab, CR and LF. Anything else (obs-text, NUL,
// a bare CR inside a line, DEL) is for node:http to judge.
const OUTSIDE = /[^\t\r\n -~]/
/**
 * Headers that mean a body, an upgrade or an expectation: node:http's business. And `__proto__`,
 * which a plain object cannot hold as a header: node:http decides what it is.
 */
const NOT_BARE = new Set(['content-length', 'transfer-encoding', 'upgrade', 'expect', '__proto__'])

/**
 * A copy of `text` of its own. A substring (a line of the head, a value in it) is, in V8, a view
 * that keeps the whole head alive: a `Last-Event-ID` held for a stream's life would hold its
 * cookies too.
 */
const own = (text: string) => Buffer.from(text, 'latin1').toString('latin1')

/**
 * Reads `chunk` as exactly one complete GET head and nothing after it; `undefined` for anything
 * else (another method, HTTP/1.0, a head cut short or followed by a pipelined request, a header
 * twice, a body), which the caller hands to node:http untouched.
 *
 * @example
 * parseRequestHead(Buffer.from('GET /signal/r?peer=a HTTP/1.1\r\nHost: x\r\n\r\n'))
 * // { url: '/signal/r?peer=a', headers: { host: 'x' }, rawHeaders: ['Host', 'x'] }
 */
export function parseRequestHead(chunk: Buffer, maxBytes = MAX_BARE_HEAD_BYTES): RequestHead | undefined {
  const end = chunk.indexOf('\r\n\r\n')
  if (end < 0 || end + 4 !== chunk.length || chunk.length > maxBytes) return undefined
  const text = chunk.toString('latin1', 0, end)
  if (OUTSIDE.test(text)) return undefined
  const lines = text.split('\r\n')
  const url = REQUEST_LINE.exec(lines[0] as string)?.[1]
  if (url === undefined) return undefined
  const headers: Record<string, string> = {}
  const rawHeaders: string[] = []
  for (let i = 1; i < lines.length; i++) {
    // A lone CR or LF inside a line, or a folded line (leading blank), fails the pattern.
    const header = HEADER_LINE.exec(lines[i] as string)
    if (!header) return undefined
    const [, name = '', value = ''] = header
    const key = name.toLowerCase()
    if (NOT_BARE.has(key) || Object.hasOwn(headers, key)) return undefined
    const copy = own(value)
    headers[key] = copy
    rawHeaders.push(own(name), copy)
  }
  // node:http answers a request without Host with 400; so does the front, by handing it over.
  return headers.host === undefined ? undefined : { url: own(url), headers, rawHeaders }
}
