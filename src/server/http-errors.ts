import { ServerResponse, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { ErrorCode } from '../errors.js'

/**
 * Every refusal of the server, by its stable code: the `error` of the JSON body, the reason of
 * a refused WebSocket's close. Clients see the ones an app can act on under the same
 * {@link ErrorCode} (the others as `signaling-failed`).
 *
 * @example
 * // A client of the HTTP routes: a refusal's body is { error, message }.
 * if (!response.ok) {
 *   const { error, message }: { error: RefusalCode; message: string } = await response.json()
 *   if (REFUSALS[error]?.retry) setTimeout(publishAgain, 1000)
 *   else console.error(error, message)
 * }
 */
export type RefusalCode =
  /**
   * A malformed request: room, peer id, token, `Last-Event-ID` or `maxPeers`; a batch of none or
   * more than `maxBatch` messages; a binary WebSocket frame.
   */
  | 'bad-request'
  /** A message that is not JSON, is nested too deep, or does not have the protocol's shape. */
  | 'invalid-signal'
  /** No token: a subscription without one, a POST without `Authorization: Bearer`. */
  | 'unauthorized'
  /** The `authorize` option refused the peer. */
  | 'forbidden'
  /** The page's origin is not in `allowedOrigins`. */
  | 'origin-not-allowed'
  /** A message whose `from` is not the peer the token holds in this room. */
  | 'spoofed-sender'
  /** The room has `maxPeersPerRoom` peers (or the `maxPeers` the client asked for). */
  | 'room-full'
  /** A path outside `path`, on a server given to `attach()`. */
  | 'not-found'
  /** A method other than GET, POST, OPTIONS or a WebSocket upgrade. */
  | 'method-not-allowed'
  /** Another token holds this peer id in the room (connected, or within its release grace). */
  | 'id-taken'
  /** A body or frame over `maxBodyBytes`, or a message over `maxMessageBytes`. */
  | 'too-large'
  /** Messages over `ratePerSecond`, or new rooms over `newRoomsPerMinute` from one address. */
  | 'rate-limited'
  /** The client's address holds `maxConnectionsPerAddress` connections (with Redis: on every process together). */
  | 'too-many-connections'
  /** The server holds `maxRooms` rooms. */
  | 'too-many-rooms'
  /** The hub (Redis) failed, or anything else unexpected, or the server holds `maxConnections`: try again. */
  | 'unavailable'

/**
 * How the server answers one {@link RefusalCode}.
 *
 * @example
 * const { status, retry }: RefusalResponse = REFUSALS['rate-limited'] // 429, true: retry after Retry-After
 */
export interface RefusalResponse {
  /** HTTP status; a refused WebSocket closes with 4000 + it. */
  readonly status: number
  /** `true` when a client should retry, with backoff: the answer carries `Retry-After`. Absent otherwise. */
  readonly retry?: true
}

/**
 * Every refusal of the server: a stable code and its HTTP status. A refused
 * WebSocket is accepted and closed at once with code `4000 + status` and the
 * refusal's code as the reason (a browser never sees the HTTP status of a
 * refused upgrade); `retry` marks the ones a client should retry, with backoff.
 *
 * @example
 * REFUSALS['room-full'] // { status: 403 }
 * const retryable = Object.entries(REFUSALS).filter(([, { retry }]) => retry).map(([code]) => code)
 */
export const REFUSALS: Readonly<Record<RefusalCode, RefusalResponse>> = {
  'bad-request': { status: 400 },
  'invalid-signal': { status: 400 },
  unauthorized: { status: 401 },
  forbidden: { status: 403 },
  'origin-not-allowed': { status: 403 },
  'spoofed-sender': { status: 403 },
  'room-full': { status: 403 },
  'not-found': { status: 404 },
  'method-not-allowed': { status: 405 },
  'id-taken': { status: 409 },
  'too-large': { status: 413 },
  'rate-limited': { status: 429, retry: true },
  'too-many-connections': { status: 429, retry: true },
  'too-many-rooms': { status: 503, retry: true },
  unavailable: { status: 503, retry: true },
}

/**
 * WebSocket close code of a refusal: 4000 + its HTTP status (4403, 4409, 4429, …).
 *
 * @example
 * closeCodeOf('room-full') // 4403
 * socket.on('close', (code, reason) => code === closeCodeOf('id-taken') && console.log('id taken:', String(reason)))
 */
export const closeCodeOf = (code: RefusalCode): number => 4000 + REFUSALS[code].status

/** Seconds a client is asked to wait (`Retry-After`) before retrying a retryable refusal. */
const RETRY_AFTER_SECONDS = 1

/** A refusal with a message a person can act on. */
export class Refusal extends Error {
  readonly code: RefusalCode
  /** Messages of the refused batch that were published before it failed (the client must not send them again). */
  readonly published: number
  constructor(code: RefusalCode, message: string, published = 0) {
    super(message)
    this.code = code
    this.published = published
  }
}

/**
 * A response head written by hand, for an answer on a bare socket (the event-stream front). Its
 * values are ours or, for CORS, the request's own `Origin`, which the front took only as visible
 * ASCII: no CR or LF can reach it.
 */
export function bareHead(status: number, headers: Record<string, string>): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n`
  for (const name in headers) head += `${name}: ${headers[name]}\r\n`
  return `${head}\r\n`
}

/**
 * Answers a request with `{ error, message }`, the refusal's status, and `headers` (CORS): on its
 * response, or on the bare socket the front took it on (then closed). An answer already begun is cut.
 */
export function sendRefusal(response: ServerResponse | Socket, refusal: Refusal, headers: Record<string, string> = {}): void {
  const bare = !(response instanceof ServerResponse)
  if (bare ? response.bytesWritten > 0 : response.headersSent) {
    response.destroy()
    return
  }
  const { code, message, published } = refusal
  const body = JSON.stringify(published ? { error: code, message, published } : { error: code, message })
  const all: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  }
  if ('retry' in REFUSALS[code]) all['retry-after'] = String(RETRY_AFTER_SECONDS)
  const { status } = REFUSALS[code]
  if (!bare) {
    response.writeHead(status, all).end(body)
    return
  }
  const length = String(Buffer.byteLength(body))
  response.write(bareHead(status, { ...all, 'content-length': length, connection: 'close' }) + body)
  // Closed once written: node:http's sockets are half-open, and `end()` alone would wait for the
  // client's own end, maybe forever (a client that never sends it would keep its fd).
  response.destroySoon()
}
