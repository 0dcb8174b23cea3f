import type { IncomingMessage } from 'node:http'
import type { Hub } from './hub'

/** Options of {@link createSignalingServer}. Every limit has a default; see DEFAULTS. */
export interface ServerOptions {
  /** URL prefix of the routes: `GET|POST <path>/<room>`, WebSocket on the same URL. */
  path?: string
  /** Largest signaling message, in bytes of JSON (SDP of a big call is ~40 KB). Over it: 413, WebSocket close 1009. */
  maxMessageBytes?: number
  /** Largest POST body (a batch of messages), in bytes. Over it: 413. */
  maxBodyBytes?: number
  /** Most messages in one POST. */
  maxBatch?: number
  /** Messages per second one peer may publish (token bucket, refilled continuously). Over it: 429. */
  ratePerSecond?: number
  /** Burst size of the token bucket (a peer sends a burst of candidates at start). */
  rateBurst?: number
  /** Peers per room. Over it: 403 `room-full`. */
  maxPeersPerRoom?: number
  /** Rooms per process. Over it: 503 `too-many-rooms`. */
  maxRooms?: number
  /** Replay buffer per room: most events kept. */
  replayMessages?: number
  /** Replay buffer per room: most characters of JSON kept (bounds memory: rooms × this). */
  replayBytes?: number
  /** Replay buffer per room: how long an event is kept (ms). */
  replayAgeMs?: number
  /** How long a peer id stays bound after its connection ended, so the same peer can resume (ms). */
  releaseMs?: number
  /** SSE heartbeat comment and WebSocket ping interval (ms). A socket that misses a pong is closed. */
  heartbeatMs?: number
  /** SSE `retry:` hint for EventSource's own reconnects (ms). */
  retryMs?: number
  /** Output a slow SSE client may leave unread before it is disconnected (bytes). */
  maxBufferedBytes?: number
  /**
   * Decides whether a request may use a room as a peer (e.g. check a cookie
   * or a token in the URL). Refused: 403 `forbidden`.
   */
  authorize?: (request: IncomingMessage, target: { room: string; peer: string }) => boolean | Promise<boolean>
  /** Where rooms live; an in-memory hub by default. */
  hub?: Hub
}

/** Defaults of every limit in {@link ServerOptions}. */
export const SERVER_DEFAULTS = {
  path: '/signal',
  maxMessageBytes: 128 * 1024,
  maxBodyBytes: 512 * 1024,
  maxBatch: 64,
  ratePerSecond: 50,
  rateBurst: 200,
  maxPeersPerRoom: 16,
  maxRooms: 100_000,
  replayMessages: 64,
  replayBytes: 256 * 1024,
  replayAgeMs: 60_000,
  releaseMs: 15_000,
  heartbeatMs: 15_000,
  retryMs: 1000,
  maxBufferedBytes: 1024 * 1024,
}

export type ResolvedServerOptions = typeof SERVER_DEFAULTS & ServerOptions & { hub: Hub }
