import type { IncomingMessage } from 'node:http'
import type { AllowedOrigins } from './admission.js'
import type { Hub } from './hub.js'
import type { CheckedTurn, TurnOptions } from './turn.js'

/**
 * Options of {@link createSignalingServer}. Every limit has a default, given with it (and in {@link SERVER_DEFAULTS}).
 *
 * @example
 * const options: ServerOptions = { path: '/rtc', maxPeersPerRoom: 2, allowedOrigins: ['https://app.example'] }
 * const signaling = createSignalingServer(options)
 */
export interface ServerOptions {
  /** URL prefix of the routes: `GET|POST <path>/<room>`, WebSocket on the same URL. Default `'/signal'`. */
  path?: string
  /**
   * Largest signaling message, in bytes of JSON (SDP of a big call is ~40 KB). Over it: 413
   * `too-large` (over WebSocket: an `error` frame with that code; the socket stays open). Default 128 KiB.
   */
  maxMessageBytes?: number
  /**
   * Largest POST body (a batch of messages) and WebSocket frame, in bytes. Over it: 413; a
   * WebSocket frame: close 1009. Default 512 KiB.
   */
  maxBodyBytes?: number
  /** Most messages in one POST or WebSocket frame. Over it: 400 `bad-request` (WebSocket: an `error` frame). Default 64. */
  maxBatch?: number
  /** Messages per second one peer may publish (token bucket, refilled continuously). Over it: 429. Default 50. */
  ratePerSecond?: number
  /** Burst size of the token bucket (a peer sends a burst of candidates at start). Default 200. */
  rateBurst?: number
  /**
   * Peers connected to one room at once (a client may ask for fewer with `maxPeers`; peers in
   * their release grace hold no seat). Over it: 403 `room-full`. Default 16.
   */
  maxPeersPerRoom?: number
  /** Rooms per process. Over it: 503 `too-many-rooms`. Default 100 000. */
  maxRooms?: number
  /** Rooms one client address may create per minute (a token bucket of that size). Over it: 429 `rate-limited`. Default 60. */
  newRoomsPerMinute?: number
  /**
   * Open streams, WebSockets and requests in flight, all clients together, in this process: a
   * bound on each process's file descriptors and memory, so with several processes (Redis) the
   * cluster holds up to this many times their number. Over it: 503 `unavailable`. Default 10 000.
   */
  maxConnections?: number
  /**
   * Open streams, WebSockets and requests in flight of one client address. With a hub shared by
   * several processes that counts connections ({@link Hub.hold}: the `RedisHub`), its streams and
   * WebSockets count on every process together; requests in flight (POSTs) count in the process
   * serving them. Over it: 429 `too-many-connections` (WebSocket: close 4429). Default 100.
   */
  maxConnectionsPerAddress?: number
  /** Replay buffer per room: most events kept. Default 64. */
  replayMessages?: number
  /** Replay buffer per room: most bytes of JSON (UTF-8) kept (in-memory hub). Default 256 Ki. */
  replayBytes?: number
  /**
   * Memory the replay buffers of all rooms take together, in bytes (in-memory hub; with Redis,
   * bound the streams with Redis's own `maxmemory`). Past it the largest buffers lose their oldest events.
   * Default 64 Mi.
   */
  replayBytesTotal?: number
  /** Replay buffer per room: how long an event is kept (ms). Default 60 000. */
  replayAgeMs?: number
  /** How long a peer id stays bound after its connection ended, so the same peer can resume (ms). Default 15 000. */
  releaseMs?: number
  /** SSE heartbeat comment and WebSocket ping interval (ms). A socket that misses a pong is closed. Default 15 000. */
  heartbeatMs?: number
  /** SSE `retry:` hint for EventSource's own reconnects (ms). Default 1000. */
  retryMs?: number
  /** Output a slow client (SSE or WebSocket) may leave unread before it is disconnected (bytes). Default 1 MiB. */
  maxBufferedBytes?: number
  /**
   * Pages of other origins that may use the server (SSE, POST, WebSocket): a list (`'*'` for
   * any) or a predicate. Requests without `Origin` and from the server's own origin are always
   * allowed. Default: none. Refused: 403 `origin-not-allowed` (WebSocket: close 4403).
   */
  allowedOrigins?: AllowedOrigins
  /** Behind a reverse proxy: take the client's address from the last `X-Forwarded-For` hop (for the per-address limits). */
  trustProxy?: boolean
  /**
   * Decides whether a request may use a room as a peer (e.g. check a cookie
   * or a token in the URL). Refused: 403 `forbidden`.
   */
  authorize?: (request: IncomingMessage, target: { room: string; peer: string }) => boolean | Promise<boolean>
  /**
   * Where rooms live. Default: a {@link MemoryHub} with the room and replay limits above; a hub
   * given here has its own (`maxRooms`, `replay…` and `releaseMs` above then do nothing).
   */
  hub?: Hub
  /**
   * A TURN server whose credentials the server mints for every admitted peer (coturn's
   * shared-secret scheme): they come with the `welcome`, and fresh ones from
   * `GET <path>/<room>/ice-servers`. The server adapters hand them to the peer by themselves.
   * A bad value throws at creation. Default: none.
   */
  turn?: TurnOptions
}

/**
 * Defaults of every limit in {@link ServerOptions}, each given in its field's documentation
 * (frozen: pass options to change them). They keep a 2-core, 1 GiB process alive under one
 * hostile client.
 *
 * @example
 * // The in-memory hub the server would make, with a smaller replay budget.
 * const hub = new MemoryHub({ ...SERVER_DEFAULTS, replayBytesTotal: 16 * 1024 * 1024 })
 */
export const SERVER_DEFAULTS: Readonly<
  Required<Omit<ServerOptions, 'allowedOrigins' | 'trustProxy' | 'authorize' | 'hub' | 'turn'>>
> = Object.freeze({
  path: '/signal',
  maxMessageBytes: 128 * 1024,
  maxBodyBytes: 512 * 1024,
  maxBatch: 64,
  ratePerSecond: 50,
  rateBurst: 200,
  maxPeersPerRoom: 16,
  maxRooms: 100_000,
  newRoomsPerMinute: 60,
  maxConnections: 10_000,
  maxConnectionsPerAddress: 100,
  replayMessages: 64,
  replayBytes: 256 * 1024,
  replayBytesTotal: 64 * 1024 * 1024,
  replayAgeMs: 60_000,
  releaseMs: 15_000,
  heartbeatMs: 15_000,
  retryMs: 1000,
  maxBufferedBytes: 1024 * 1024,
})

export type ResolvedServerOptions = typeof SERVER_DEFAULTS &
  ServerOptions & { hub: Hub; allowedOrigins: AllowedOrigins; trustProxy: boolean; turn?: CheckedTurn }
