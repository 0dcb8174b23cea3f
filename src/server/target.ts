import type { IncomingMessage } from 'node:http'
import { isValidPeerId } from '../protocol.js'
import { Refusal } from './http-errors.js'

/** Who asks for what: the room from the path, the peer and its secret from the query or headers. */
export interface Target {
  room: string
  peer: string
  token: string
  /** `room` and `peer` as one string: the key of the peer's live connection and rate-limit bucket. */
  key: string
  /** Resume position: the `Last-Event-ID` header, or `lastEventId` in the query (WebSocket, fresh EventSource). */
  lastEventId?: string
  /** Seats the client asks the room to have (`?maxPeers=2` for a 1:1 room); the server's cap when absent. */
  maxPeers?: number
  /** Set on admission: the id was bound afresh (not a resume), so nothing published before belongs to it. */
  fresh?: boolean
  /** Set on admission: names this connection among every process's (see `Hub.onEvicted`). */
  connection?: string
}

/** One string for a peer of a room: the key of its live connection, rate-limit bucket and process-local counts. */
export const peerKey = (room: string, peer: string) => `${room}\u0000${peer}`

const TOKEN = /^[\w-]{16,128}$/
const EVENT_ID = /^[\w-]{1,64}$/

/** The room named by a request path under `prefix`, or undefined when the path is not ours. */
export function roomOf(url: URL, prefix: string): string | undefined {
  if (!url.pathname.startsWith(`${prefix}/`)) return undefined
  const room = decodeURIComponent(url.pathname.slice(prefix.length + 1))
  return room
}

/** Parses and validates the target of a subscription (SSE or WebSocket). */
export function subscriptionTarget(request: IncomingMessage, url: URL, room: string): Target {
  const peer = url.searchParams.get('peer')
  const token = url.searchParams.get('token') ?? bearer(request)
  const header = request.headers['last-event-id']
  const lastEventId = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('lastEventId') ?? undefined
  if (!isValidPeerId(room)) throw new Refusal('bad-request', 'The room must be 1-64 of [A-Za-z0-9_.:~-]')
  if (!isValidPeerId(peer)) throw new Refusal('bad-request', 'peer must be 1-64 of [A-Za-z0-9_.:~-]')
  if (!token) throw new Refusal('unauthorized', 'A token (16-128 of [A-Za-z0-9_-]) is required')
  if (!TOKEN.test(token)) throw new Refusal('bad-request', 'The token must be 16-128 of [A-Za-z0-9_-]')
  if (lastEventId !== undefined && !EVENT_ID.test(lastEventId)) throw new Refusal('bad-request', 'Invalid Last-Event-ID')
  const seats = url.searchParams.get('maxPeers')
  const maxPeers = seats === null ? undefined : Number(seats)
  if (maxPeers !== undefined && !(Number.isSafeInteger(maxPeers) && maxPeers >= 1)) {
    throw new Refusal('bad-request', 'maxPeers must be a whole number, 1 or more')
  }
  // The token is a slice of the URL: a copy of its own, so a held connection does not keep the whole URL.
  return {
    room,
    peer,
    token: Buffer.from(token, 'latin1').toString('latin1'),
    key: peerKey(room, peer),
    lastEventId,
    maxPeers,
  }
}

/** The token of `Authorization: Bearer <token>`, if present and well-formed. */
export function bearer(request: IncomingMessage): string | undefined {
  const match = /^Bearer ([\w-]{16,128})$/.exec(request.headers.authorization ?? '')
  return match?.[1]
}
