import type { IncomingMessage, ServerResponse } from 'node:http'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import type { SignalingServer } from './index.js'

/**
 * Options of {@link metricsRoute}.
 *
 * @example
 * // Into the registry the app already exposes, without Node's process metrics (it has them).
 * metricsRoute(signaling, { registry: appRegistry, processMetrics: false })
 */
export interface MetricsOptions {
  /** Path it answers. Default `'/metrics'`. */
  path?: string
  /** The prom-client registry to register with; a new one by default. */
  registry?: Registry
  /** Node's own metrics too (CPU, memory, event-loop lag, GC), unprefixed as prom-client names them. Default `true`. */
  processMetrics?: boolean
}

/**
 * The `/metrics` route: a handler to mount, and the registry behind it.
 *
 * @example
 * const metrics: MetricsRoute = metricsRoute(signaling)
 * const server = http.createServer((req, res) => metrics.handle(req, res) || signaling.handle(req, res) || notFound(res))
 */
export interface MetricsRoute {
  /** The registry the server's metrics are in. */
  readonly registry: Registry
  /** Answers `GET <path>` in Prometheus text format; returns `false`, without answering, for any other path. */
  handle(request: IncomingMessage, response: ServerResponse): boolean
  /** Stops counting (the server is no longer observed). */
  close(): void
}

/** Publish latency buckets (seconds): in memory a few µs; through Redis a round trip or a few. */
const PUBLISH_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

/**
 * Counts what a signaling server does, with prom-client, and serves it in
 * Prometheus text format:
 *
 * | metric | kind | labels |
 * |---|---|---|
 * | `politely_connections` | gauge | `transport`: `sse`, `websocket` |
 * | `politely_rooms` | gauge | |
 * | `politely_peers` | gauge (peers bound here) | |
 * | `politely_messages_relayed_total` | counter | |
 * | `politely_bytes_relayed_total` | counter (bytes of JSON) | |
 * | `politely_refusals_total` | counter | `code`, `route`: `sse`, `post`, `websocket`, `http` |
 * | `politely_hub_errors_total` | counter | `operation`: `admit`, `publish`, `subscribe` |
 * | `politely_hub_publish_seconds` | histogram | |
 *
 * plus Node's own (`nodejs_eventloop_lag_seconds`, `process_cpu_seconds_total`, …) unless
 * `processMetrics: false`. Mount it like the signaling routes (Express: `app.use((req, res, next) =>
 * metrics.handle(req, res) || next())`); keep it off the public internet, or behind your own check.
 *
 * @example
 * const signaling = createSignalingServer()
 * const metrics = metricsRoute(signaling)
 * const health = healthRoutes(signaling)
 * http.createServer((req, res) => metrics.handle(req, res) || health.handle(req, res) || signaling.handle(req, res) || notFound(res))
 */
export function metricsRoute(signaling: SignalingServer, options: MetricsOptions = {}): MetricsRoute {
  const { path = '/metrics', registry = new Registry(), processMetrics = true } = options
  const registers = [registry]
  if (processMetrics) collectDefaultMetrics({ register: registry })

  const connections = new Gauge({
    name: 'politely_connections',
    help: 'Open subscriptions of admitted peers, by transport',
    labelNames: ['transport'] as const,
    registers,
    collect() {
      const { sse, websocket } = signaling.stats().connections
      this.set({ transport: 'sse' }, sse)
      this.set({ transport: 'websocket' }, websocket)
    },
  })
  new Gauge({
    name: 'politely_rooms',
    help: 'Rooms this process holds',
    registers,
    collect() {
      this.set(signaling.stats().rooms)
    },
  })
  new Gauge({
    name: 'politely_peers',
    help: 'Peers bound to a live subscription on this process',
    registers,
    collect() {
      this.set(signaling.stats().peers)
    },
  })
  const messages = new Counter({ name: 'politely_messages_relayed_total', help: 'Messages accepted and relayed', registers })
  const bytes = new Counter({ name: 'politely_bytes_relayed_total', help: 'Bytes of JSON accepted and relayed', registers })
  const refusals = new Counter({
    name: 'politely_refusals_total',
    help: 'Requests, WebSockets and frames refused, by code and route',
    labelNames: ['code', 'route'] as const,
    registers,
  })
  const hubErrors = new Counter({
    name: 'politely_hub_errors_total',
    help: 'Hub (Redis) operations that failed, by operation',
    labelNames: ['operation'] as const,
    registers,
  })
  const publishSeconds = new Histogram({
    name: 'politely_hub_publish_seconds',
    help: 'Time the hub took to publish one message',
    buckets: PUBLISH_BUCKETS,
    registers,
  })
  // Gauges with labels show up once set; these start at zero so a scrape before any traffic has them.
  connections.set({ transport: 'sse' }, 0)
  connections.set({ transport: 'websocket' }, 0)

  const stop = signaling.observe({
    relayed(size, seconds) {
      messages.inc()
      bytes.inc(size)
      publishSeconds.observe(seconds)
    },
    refused: ({ code, route }) => refusals.inc({ code, route }),
    hubError: (operation) => hubErrors.inc({ operation }),
  })

  return {
    registry,
    handle(request, response) {
      const pathname = (request.url ?? '/').split('?')[0]
      if (pathname !== path) return false
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('Use GET\n')
        return true
      }
      registry.metrics().then(
        (text) => {
          response.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' })
          response.end(request.method === 'HEAD' ? undefined : text)
        },
        (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
      )
      return true
    },
    close() {
      stop()
      registry.clear()
    },
  }
}
