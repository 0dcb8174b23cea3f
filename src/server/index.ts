/**
 * The reference signaling server for Node (SSE + POST + WebSocket), mountable in any `http` server or Express.
 *
 * @module politely/server
 */
import { createServer, IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { Admission, clientAddress, corsHeaders, type Entry, PREFLIGHT_HEADERS } from './admission.js'
import { type Front, frontEventStreams } from './bare-front.js'
import { Refusal, sendRefusal } from './http-errors.js'
import { listen } from './listen.js'
import { MemoryHub } from './memory-hub.js'
import type { ServerObserver, ServerRoute } from './observer.js'
import { type ResolvedServerOptions, SERVER_DEFAULTS, type ServerOptions } from './options.js'
import { servePublish } from './publish.js'
import { RateLimiter } from './rate-limit.js'
import { Relay } from './relay.js'
import type { RequestHead } from './request-head.js'
import { type EventAnswer, EventStreams, serveEvents } from './sse.js'
import { roomOf, subscriptionTarget } from './target.js'
import { checkTurnOptions, ICE_SERVERS_ROUTE, serveIceServers } from './turn.js'
import { WebSocketRoute } from './websocket.js'
import { refuseUpgrade } from './ws-handshake.js'

export type { AllowedOrigins } from './admission.js'
export { type HealthOptions, type HealthRoutes, healthRoutes } from './health.js'
export { closeCodeOf, REFUSALS, type RefusalCode, type RefusalResponse } from './http-errors.js'
export { ByteEvent, type ClaimRefusal, type ClaimResult, type Hub, type RoomEvent } from './hub.js'
export { listen } from './listen.js'
export { MemoryHub, type MemoryHubOptions } from './memory-hub.js'
export { type MetricsOptions, type MetricsRoute, metricsRoute } from './metrics.js'
export type { RefusalReport, ServerObserver, ServerRoute } from './observer.js'
export { SERVER_DEFAULTS, type ServerOptions } from './options.js'
export { type Mounts, type RunningStaticServer, type StaticOptions, serveStatic, startStaticServer } from './static.js'
export { mintTurnCredentials, TURN_DEFAULT_TTL, type TurnCredentials, type TurnOptions } from './turn.js'
export { WS_CLOSE } from './websocket.js'
export { refuseUpgrade } from './ws-handshake.js'

/**
 * A signaling server to mount: `handle` for requests, `upgrade` for WebSockets.
 *
 * @example
 * const signaling: SignalingServer = createSignalingServer({ path: '/rtc' })
 * const server = http.createServer((request, response) => signaling.handle(request, response) || app(request, response))
 * server.on('upgrade', (request, socket, head) => signaling.upgrade(request, socket, head) || refuseUpgrade(socket))
 * protectServer(server)
 * process.once('SIGTERM', () => signaling.close())
 */
export interface SignalingServer {
  /**
   * The request handler. Returns `false`, without answering, for a request
   * outside `path`, so a framework can go on to its next route.
   */
  handle(request: IncomingMessage, response: ServerResponse): boolean
  /** The `upgrade` handler; returns `false` for a path that is not ours. */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): boolean
  /** Attaches both handlers to a `node:http` server (requests outside `path` get 404) and {@link protectServer}s it. */
  attach(server: Server): void
  /**
   * Answers event-stream subscriptions to `server` on the bare socket, before node:http parses
   * them: a held stream then costs some 5 KB less (no parser, request or response kept for it).
   * Only a connection's first request, a GET whose whole head arrives in one read in a plain
   * subset of HTTP/1.1, is taken; every other request (a POST, an upgrade, a head in pieces, a
   * route not ours, anything on a connection node:http has) reaches node:http and your handlers
   * exactly as it came. For a plain `node:http` server (not https)
   * with no `connection` listener of your own, called before it listens;
   * {@link startSignalingServer} and the CLI do it for the server they create.
   *
   * @throws {TypeError} for an https server, one with `connection` listeners of its own, or one
   * given to `takeEventStreams` before.
   */
  takeEventStreams(server: Server): void
  /** Ends every connection and the hub. */
  close(): Promise<void>
  /**
   * Tells `observer` what the server does from now on (metrics and logs use it); returns the
   * function that stops it.
   */
  observe(observer: ServerObserver): () => void
  /** What this process holds now. */
  stats(): SignalingStats
  /**
   * Whether this process can serve: not draining, and its hub answers (Redis reachable). For a
   * readiness probe; see {@link healthRoutes}.
   */
  ready(): Promise<boolean>
  /**
   * Drains for a restart: takes no new subscription (503, retryable), tells every connected client
   * to reconnect elsewhere within `retryMs` (WebSocket: the frames under way done and
   * acknowledged, then close 1012; SSE: a `restart` event with a `retry:` hint, then the end of
   * the stream), and resolves once they are all gone. Publishing still works meanwhile (a client's
   * last POSTs); call {@link close} after it.
   */
  drain(): Promise<void>
}

/**
 * What one signaling server process holds at a moment.
 *
 * @example
 * const { rooms, peers, connections }: SignalingStats = signaling.stats()
 * console.log(`${rooms} rooms, ${peers} peers, ${connections.sse} SSE streams, ${connections.websocket} WebSockets`)
 */
export interface SignalingStats {
  /** Rooms of this process's hub (with Redis: the rooms this process has peers in). */
  rooms: number
  /** Peers with a live subscription here. */
  peers: number
  /** Open subscriptions by route. */
  connections: {
    /** SSE streams. */
    sse: number
    /** WebSockets. */
    websocket: number
  }
}

function resolve(options: ServerOptions): ResolvedServerOptions {
  const resolved: Record<string, unknown> = { ...SERVER_DEFAULTS, allowedOrigins: [], trustProxy: false }
  for (const [key, value] of Object.entries(options)) if (value !== undefined) resolved[key] = value
  const limits = resolved as typeof SERVER_DEFAULTS
  // Checked here, so a bad value stops the server at start, not its first client.
  if (options.turn) resolved.turn = checkTurnOptions(options.turn)
  resolved.hub ??= new MemoryHub({
    maxRooms: limits.maxRooms,
    replayMessages: limits.replayMessages,
    replayBytes: limits.replayBytes,
    replayBytesTotal: limits.replayBytesTotal,
    replayAgeMs: limits.replayAgeMs,
    releaseMs: limits.releaseMs,
  })
  return resolved as unknown as ResolvedServerOptions
}

/**
 * Counts `entry` out when `answer` closes — or, for a pipelined request still waiting for its
 * turn (its response has no socket yet), when its socket does: Node never closes such a
 * response if the client leaves first. Only then a listener on the socket, whose list of them
 * would grow by ~150 bytes per held stream. (`on`, not `once`: `done` runs once anyway, and
 * `once` wraps it in two objects more.) A function of its own, so that the listener a held
 * stream keeps holds the entry and the socket, not the request.
 */
function leaveOnClose(entry: Entry, answer: ServerResponse | Socket, socket: Socket): void {
  const done = () => {
    entry.leave()
    socket.off('close', done)
  }
  answer.on('close', done)
  if (answer !== socket && !(answer as ServerResponse).socket) socket.on('close', done)
}

/** An `error` listener that ends its socket (`this`). */
function destroySelf(this: Duplex): void {
  this.destroy()
}

/**
 * Bounds on a `node:http` server for clients that send slowly or never: headers
 * within 10 s, a whole request within 30 s (node's defaults: 1 and 5 minutes;
 * an event stream's request has no body, so it is not cut), and at most
 * `maxConnections` open sockets (idle ones too) plus room for handshakes and
 * static files; past that, new sockets are dropped. `attach()` and {@link startSignalingServer}
 * do it; a server you start yourself (Express's, say) needs this call.
 *
 * @example
 * protectServer(app.listen(8787))
 */
export function protectServer(server: Server, maxConnections: number = SERVER_DEFAULTS.maxConnections): void {
  server.headersTimeout = 10_000
  server.requestTimeout = 30_000
  server.maxConnections = maxConnections + 1000
}

/**
 * The reference signaling server: SSE subscribe (`GET <path>/<room>`), POST
 * publish (`POST <path>/<room>`) and WebSocket (upgrade on the same URL), one
 * room model behind all three, with replay, sender authentication and limits.
 *
 * @example
 * // bare node:http
 * const signaling = createSignalingServer()
 * const server = http.createServer()
 * signaling.attach(server)
 * server.listen(8787)
 *
 * @example
 * // inside Express: requests outside /signal fall through to the app
 * app.use((req, res, next) => signaling.handle(req, res) || next())
 * httpServer.on('upgrade', (req, socket, head) => signaling.upgrade(req, socket, head) || refuseUpgrade(socket))
 */
export function createSignalingServer(options: ServerOptions = {}): SignalingServer {
  const resolved = resolve(options)
  const limiter = new RateLimiter(resolved.ratePerSecond, resolved.rateBurst)
  const admission = new Admission(resolved, (error) => relay.observers.emit('hubError', 'admit', error))
  const relay = new Relay(resolved, limiter, admission)
  const websockets = new WebSocketRoute(relay, resolved)
  const streams = new EventStreams(relay, resolved)
  const { observers } = relay
  let draining = false
  const refused = (refusal: Refusal, route: ServerRoute, address: string) =>
    observers.emit('refused', { code: refusal.code, route, address, message: refusal.message })
  const routeOf = (request: IncomingMessage): ServerRoute =>
    request.method === 'GET' ? 'sse' : request.method === 'POST' ? 'post' : 'http'
  const restarting = () => new Refusal('unavailable', 'The server is restarting; try again')

  // The fronts before servers (takeEventStreams): close() and drain() end their sockets, which
  // node:http's closeAllConnections() and closeIdleConnections() do not know.
  const fronts: Front[] = []

  const locate = (request: { url?: string }) => {
    let url: URL
    try {
      url = new URL(request.url ?? '/', 'http://localhost')
    } catch {
      return undefined
    }
    let room: string | undefined
    try {
      room = roomOf(url, resolved.path)
    } catch {
      room = '' // undecodable: ours, but invalid
    }
    return room === undefined ? undefined : { url, room }
  }

  async function subscribe(
    request: IncomingMessage,
    answer: EventAnswer,
    url: URL,
    room: string,
    headers: Record<string, string>,
    entry: Entry,
  ): Promise<void> {
    if (draining) throw restarting()
    const target = subscriptionTarget(request, url, room)
    await entry.hold()
    // Gone while the hub counted it: nothing to claim (leaving gave the count back).
    if (answer.destroyed || request.socket.destroyed) return
    await serveEvents(request, answer, target, relay, entry, headers, streams)
  }

  async function route(
    request: IncomingMessage,
    response: ServerResponse,
    url: URL,
    room: string,
    headers: Record<string, string>,
    entry: Entry,
  ): Promise<void> {
    const ice = room.endsWith(ICE_SERVERS_ROUTE)
    if (ice) room = room.slice(0, -ICE_SERVERS_ROUTE.length)
    if (ice && request.method === 'GET') {
      await serveIceServers(request, response, room, url, relay, resolved.turn, headers)
    } else if (request.method === 'GET') {
      await subscribe(request, response, url, room, headers, entry)
    } else if (request.method === 'POST' && !ice) {
      await servePublish(request, response, room, relay, resolved, headers)
    } else if (request.method === 'OPTIONS') {
      response.writeHead(204, { ...headers, ...PREFLIGHT_HEADERS, allow: 'GET, POST, OPTIONS' }).end()
    } else {
      throw new Refusal('method-not-allowed', 'Use GET (events), POST (publish) or a WebSocket upgrade')
    }
  }

  /** Anything but a refusal is ours (e.g. Redis down): 503, so clients retry instead of giving up. */
  const asRefusal = (error: unknown) =>
    error instanceof Refusal ? error : new Refusal('unavailable', 'Temporarily unavailable; try again')

  /** A request of ours, answered on its response or (the front took it) its bare socket. */
  function serve(request: IncomingMessage, answer: ServerResponse | Socket, url: URL, room: string): void {
    // Refusals carry CORS headers even for an origin that is not allowed: the page learns why
    // (its request had no effect), and a refusal holds nothing to protect.
    const headers = corsHeaders(request)
    const address = clientAddress(request, resolved.trustProxy)
    let entry: Entry
    try {
      entry = admission.enter(request, address)
      leaveOnClose(entry, answer, request.socket)
    } catch (error) {
      const refusal = asRefusal(error)
      refused(refusal, routeOf(request), address)
      sendRefusal(answer, refusal, headers)
      return
    }
    const served =
      answer === request.socket
        ? subscribe(request, answer, url, room, headers, entry)
        : route(request, answer as ServerResponse, url, room, headers, entry)
    served.catch((error) => {
      const refusal = asRefusal(error)
      refused(refusal, routeOf(request), address)
      sendRefusal(answer, refusal, headers)
    })
  }

  /**
   * The front's request: a subscription of ours (not the ICE route) is served on `socket` with a
   * request built from the head (what `authorize` and the checks read); any other goes back.
   */
  function takeBare(head: RequestHead, socket: Socket): boolean {
    const found = locate(head)
    if (!found || found.room.endsWith(ICE_SERVERS_ROUTE)) return false
    const request = new IncomingMessage(socket)
    request.method = 'GET'
    request.url = head.url
    // As node:http's parser hands them over, so that `headers` and `headersDistinct` are built
    // as node:http builds them (an `authorize` of yours sees the same object); set by hand
    // where that method is gone.
    const lines = request as unknown as { _addHeaderLines?: (lines: string[], count: number) => void }
    if (typeof lines._addHeaderLines === 'function') lines._addHeaderLines(head.rawHeaders, head.rawHeaders.length)
    else {
      request.rawHeaders = head.rawHeaders
      request.headers = head.headers
    }
    request.httpVersion = '1.1'
    request.httpVersionMajor = 1
    request.httpVersionMinor = 1
    request.complete = true
    request.push(null) // a GET: no body
    serve(request, socket, found.url, found.room)
    return true
  }

  const signaling: SignalingServer = {
    handle(request, response) {
      const found = locate(request)
      if (!found) return false
      serve(request, response, found.url, found.room)
      return true
    },
    upgrade(request, socket, head) {
      const found = locate(request)
      if (!found) return false
      // A shared listener, not a closure: one here would keep this whole scope (the request, its
      // URL) alive as long as the socket.
      socket.on('error', destroySelf)
      const address = clientAddress(request, resolved.trustProxy)
      let entry: Entry | undefined
      Promise.resolve()
        .then(async () => {
          entry = admission.enter(request, address)
          if (draining) throw restarting()
          const target = subscriptionTarget(request, found.url, found.room)
          await entry.hold()
          // Gone while the hub counted it: nothing to claim or upgrade; its count goes with it.
          if (socket.destroyed) return entry.leave()
          return websockets.upgrade(request, socket, head, target, entry)
        })
        .catch((error) => {
          const refusal = asRefusal(error)
          refused(refusal, 'websocket', address)
          websockets.refuse(request, socket, head, refusal, entry)
        })
      return true
    },
    attach(server) {
      protectServer(server, resolved.maxConnections)
      server.on('request', (request, response) => {
        if (!signaling.handle(request, response)) sendRefusal(response, new Refusal('not-found', 'No such route'))
      })
      server.on('upgrade', (request, socket, head) => {
        if (!signaling.upgrade(request, socket, head)) refuseUpgrade(socket)
      })
    },
    takeEventStreams(server) {
      fronts.push(frontEventStreams(server, takeBare, server.headersTimeout || 10_000))
    },
    async close() {
      websockets.close()
      streams.destroy()
      for (const front of fronts) front.destroy()
      limiter.close()
      admission.close()
      await resolved.hub.close()
    },
    observe: (observer) => observers.add(observer),
    stats: () => ({
      rooms: resolved.hub.rooms(),
      peers: relay.peers,
      connections: { sse: streams.size, websocket: websockets.size },
    }),
    async ready() {
      if (draining) return false
      try {
        return (await resolved.hub.ready?.()) ?? true
      } catch {
        return false
      }
    },
    async drain() {
      draining = true
      for (const front of fronts) front.closeWaiting()
      await Promise.all([websockets.drain(), streams.drain()])
    },
  }
  return signaling
}

/**
 * Options of {@link startSignalingServer}: the server's, and where to listen.
 *
 * @example
 * // Every interface, port 8787, with the server's own options beside.
 * await startSignalingServer({ host: '0.0.0.0', port: 8787, allowedOrigins: ['https://app.example'] })
 */
export interface StartSignalingServerOptions extends ServerOptions {
  /** Port to listen on; 0 picks a free one. Default 8787. */
  port?: number
  /** Address to listen on. Default `'127.0.0.1'` (this machine only); `'0.0.0.0'` or `'::'` for every interface. */
  host?: string
  /** A `node:http` server to attach to and start; a new one by default. */
  server?: Server
}

/**
 * A signaling server {@link startSignalingServer} started.
 *
 * @example
 * const running: RunningSignalingServer = await startSignalingServer({ port: 0 })
 * console.log(`signaling on ${running.url}, port ${running.port}`)
 * await running.close()
 */
export interface RunningSignalingServer {
  /** The `node:http` server it listens with. */
  server: Server
  /** The signaling server attached to it. */
  signaling: SignalingServer
  /** The port it listens on (the one picked, when 0 was asked for). */
  port: number
  /** The signaling URL, `http://<host>:<port><path>`: the `url` option of the signalers. */
  url: string
  /** Ends the signaling server and every connection, and stops listening. */
  close(): Promise<void>
}

/**
 * Starts a bare signaling server on `host:port`.
 *
 * @example
 * const { url, close } = await startSignalingServer({ port: 0 })
 * const signaler = new SseSignaler({ url, room: 'demo' })
 */
export async function startSignalingServer(options: StartSignalingServerOptions = {}): Promise<RunningSignalingServer> {
  const { port = 8787, host = '127.0.0.1', server, ...rest } = options
  const signaling = createSignalingServer(rest)
  const http = server ?? createServer()
  signaling.attach(http)
  // Ours alone: no listener of the caller's to keep.
  if (!server) signaling.takeEventStreams(http)
  const actual = await listen(http, port, host)
  return {
    server: http,
    signaling,
    port: actual,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}${rest.path ?? SERVER_DEFAULTS.path}`,
    async close() {
      await signaling.close()
      http.closeAllConnections()
      await new Promise<void>((done) => http.close(() => done()))
    },
  }
}
