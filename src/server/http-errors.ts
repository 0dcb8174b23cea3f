import type { ServerResponse } from 'node:http'

/**
 * Every refusal of the server: a stable code and its HTTP status. A refused
 * WebSocket is accepted and closed at once with code `4000 + status` and the
 * refusal's code as the reason (a browser never sees the HTTP status of a
 * refused upgrade); `retry` marks the ones a client should retry, with backoff.
 */
export const REFUSALS = {
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
  /** The hub (Redis) failed, or the server holds all the connections it may: try again. */
  unavailable: { status: 503, retry: true },
} as const

export type RefusalCode = keyof typeof REFUSALS

/** WebSocket close code of a refusal: 4000 + its HTTP status (4403, 4409, 4429, …). */
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

/** Answers a request with `{ error, message }`, the refusal's status, and `headers` (CORS). */
export function sendRefusal(response: ServerResponse, refusal: Refusal, headers: Record<string, string> = {}): void {
  if (response.headersSent) {
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
  response.writeHead(REFUSALS[code].status, all).end(body)
}
