import { createHash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'

/** RFC 6455 §1.3: appended to the client's key before hashing it into `Sec-WebSocket-Accept`. */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
/** A key is 16 random bytes in base64. */
const KEY = /^[+/0-9A-Za-z]{22}==$/
/** A subprotocol is an HTTP token (RFC 7230 §3.2.6); the header is a comma-separated list of them. */
const PROTOCOLS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/

/** Why an upgrade request is no WebSocket handshake we can answer: an HTTP status, a sentence, headers to add. */
export interface HandshakeProblem {
  status: 400 | 404 | 405
  message: string
  /** Header lines (each ending in CRLF) the answer adds: the versions we speak, for a version we do not. */
  headers?: string
}

/** The problem with `request` as an RFC 6455 opening handshake (§4.2.1), or undefined if it is one. */
export function handshakeProblem(request: IncomingMessage): HandshakeProblem | undefined {
  const { headers } = request
  if (request.method !== 'GET') return { status: 405, message: 'A WebSocket handshake is a GET' }
  if (request.httpVersion !== '1.1') return { status: 400, message: 'A WebSocket handshake is HTTP/1.1' }
  if (!headers.host) return { status: 400, message: 'A Host header is required' }
  // Upgrade is a list of protocols; websocket must be one of them.
  if (!headers.upgrade?.split(',').some((name) => name.trim().toLowerCase() === 'websocket')) {
    return { status: 400, message: 'Upgrade: websocket is required' }
  }
  if (!KEY.test(headers['sec-websocket-key'] ?? '')) return { status: 400, message: 'Missing or invalid Sec-WebSocket-Key' }
  // Version 13 is RFC 6455; the drafts before it are long gone from browsers. §4.4: say which we speak.
  if (headers['sec-websocket-version'] !== '13') {
    return { status: 400, message: 'Sec-WebSocket-Version must be 13', headers: 'Sec-WebSocket-Version: 13\r\n' }
  }
  const protocols = headers['sec-websocket-protocol']
  if (protocols !== undefined && !PROTOCOLS.test(protocols.trim())) {
    return { status: 400, message: 'Invalid Sec-WebSocket-Protocol' }
  }
  return undefined
}

const REASONS = { 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed' } as const
/** How long a refused socket may stay after the answer if the client does not close it. */
const REFUSED_LINGER_MS = 2000
function cutRefused(socket: Duplex): void {
  socket.destroy()
}

/**
 * Answers an upgrade request that no route took with `404 Not Found` and ends its socket (cut
 * 2 s later if the client keeps it open): what `attach()` and the CLI do with upgrades outside
 * the signaling path. A client is told why, rather than seeing its connection reset.
 *
 * @example
 * httpServer.on('upgrade', (req, socket, head) => signaling.upgrade(req, socket, head) || refuseUpgrade(socket))
 */
export function refuseUpgrade(socket: Duplex): void {
  refuseHandshake(socket, { status: 404, message: 'No such route' })
}

/** Answers a failed handshake with its status, and ends the socket (cut if the client keeps it open). */
export function refuseHandshake(socket: Duplex, { status, message, headers = '' }: HandshakeProblem): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status]}\r\nConnection: close\r\n${headers}Content-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
  )
  setTimeout(cutRefused, REFUSED_LINGER_MS, socket).unref()
}

/**
 * Completes a handshake that {@link handshakeProblem} found none with: `101 Switching Protocols`.
 * No extension is ever agreed (compression costs memory per socket, and signaling is small), and
 * the first subprotocol offered, if any, is the one taken: a browser fails a connection whose
 * offered subprotocols the server ignored.
 */
export function acceptHandshake(socket: Duplex, request: IncomingMessage): void {
  const key = request.headers['sec-websocket-key'] as string
  const accept = createHash('sha1')
    .update(key + GUID)
    .digest('base64')
  const protocol = request.headers['sec-websocket-protocol']?.split(',')[0]?.trim()
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
      `${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ''}\r\n`,
  )
}
