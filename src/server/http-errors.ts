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
  constructor(code: RefusalCode, message: string) {
    super(message)
    this.code = code
  }
}

/** Answers a request with `{ error, message }` and the refusal's status. */
export function sendRefusal(response: ServerResponse, refusal: Refusal): void {
  if (response.headersSent) {
    response.destroy()
    return
  }
  const body = JSON.stringify({ error: refusal.code, message: refusal.message })
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }
  if (refusal.code === 'rate-limited') headers['retry-after'] = '1'
  response.writeHead(REFUSALS[refusal.code].status, headers).end(body)
}
