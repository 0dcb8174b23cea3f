import type { ServerResponse } from 'node:http'

/** Every refusal of the server: a stable code, its HTTP status and WebSocket close code. */
export const REFUSALS = {
  'bad-request': { status: 400, close: 1008 },
  'invalid-signal': { status: 400, close: 1008 },
  unauthorized: { status: 401, close: 1008 },
  forbidden: { status: 403, close: 1008 },
  'spoofed-sender': { status: 403, close: 1008 },
  'room-full': { status: 403, close: 1008 },
  'not-found': { status: 404, close: 1008 },
  'method-not-allowed': { status: 405, close: 1008 },
  'id-taken': { status: 409, close: 4409 },
  'too-large': { status: 413, close: 1009 },
  'rate-limited': { status: 429, close: 1008 },
  'too-many-rooms': { status: 503, close: 1013 },
  /** The hub (Redis) failed: try again. */
  unavailable: { status: 503, close: 1013 },
} as const

export type RefusalCode = keyof typeof REFUSALS

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

/** Answers a request with `{ error, message }` and the refusal's status. */
export function sendRefusal(response: ServerResponse, refusal: Refusal): void {
  if (response.headersSent) {
    response.destroy()
    return
  }
  const { code, message, published } = refusal
  const body = JSON.stringify(published ? { error: code, message, published } : { error: code, message })
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }
  if (refusal.code === 'rate-limited') headers['retry-after'] = '1'
  response.writeHead(REFUSALS[refusal.code].status, headers).end(body)
}
