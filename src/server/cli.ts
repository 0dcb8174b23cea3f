#!/usr/bin/env node
// politely-server: the reference signaling server, and optionally static files (the demos).
//
//   politely-server [--port 8787] [--host 127.0.0.1] [--path /signal] [--static DIR]... [--redis URL]
//                   [--allowed-origin ORIGIN]... [--trust-proxy] [--log-level info] [--drain-ms 10000]
//                   [--no-metrics] [--no-health] [--turn-url URL]... [--turn-secret S] [--turn-ttl SECONDS]
//
// With --redis (or REDIS_URL), rooms live in Redis and any number of these processes act as one.
// --allowed-origin (or ALLOWED_ORIGINS, comma-separated): pages of another origin that may use the
// server (`*`: any); its own origin always may. --trust-proxy: behind a reverse proxy, per-address
// limits read the client's address from X-Forwarded-For.
// --turn-url (or TURN_URL, comma-separated) and --turn-secret (or TURN_SECRET, which keeps it out of
// the process list): every admitted peer gets credentials for that TURN server (coturn's
// --use-auth-secret), valid --turn-ttl (TURN_TTL) seconds, default 3600.
//
// Every limit of ServerOptions can be set as --max-peers-per-room 8, --rate-per-second 20, …
//
// Logs are JSON lines (pino) on stdout: one per refusal (code, route, client address), hub
// failures, start and drain; never a token or a message's content. /metrics (Prometheus text)
// and /healthz, /readyz are served unless --no-metrics / --no-health. On SIGTERM (or SIGINT) it
// drains: stops listening, tells every client to reconnect elsewhere, waits up to --drain-ms
// for them to go, and exits 0.
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import pino from 'pino'
import {
  createSignalingServer,
  healthRoutes,
  listen,
  metricsRoute,
  protectServer,
  refuseUpgrade,
  SERVER_DEFAULTS,
  type ServerOptions,
  serveStatic,
} from './index.js'
import { turnFromFlags } from './turn.js'

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
const limits = Object.keys(SERVER_DEFAULTS).filter((key) => key !== 'path')

/** The flags; a wrong one (unknown, or missing its value) is one line on stderr and exit 2, not a stack trace. */
function flags() {
  try {
    return parseArgs({
      options: {
        port: { type: 'string', default: process.env.PORT ?? '8787' },
        host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
        path: { type: 'string', default: SERVER_DEFAULTS.path },
        static: { type: 'string', multiple: true, default: [] },
        redis: { type: 'string', default: process.env.REDIS_URL },
        'allowed-origin': { type: 'string', multiple: true, default: process.env.ALLOWED_ORIGINS?.split(',') ?? [] },
        'trust-proxy': { type: 'boolean', default: false },
        'log-level': { type: 'string', default: process.env.LOG_LEVEL ?? 'info' },
        'drain-ms': { type: 'string', default: process.env.DRAIN_MS ?? '10000' },
        'no-metrics': { type: 'boolean', default: false },
        'no-health': { type: 'boolean', default: false },
        'turn-url': { type: 'string', multiple: true, default: process.env.TURN_URL?.split(',') ?? [] },
        'turn-secret': { type: 'string', default: process.env.TURN_SECRET },
        'turn-ttl': { type: 'string', default: process.env.TURN_TTL },
        help: { type: 'boolean', default: false },
        ...Object.fromEntries(limits.map((key) => [kebab(key), { type: 'string' as const }])),
      },
    })
  } catch (error) {
    console.error(`${(error as Error).message}\n(politely-server --help lists the flags)`)
    process.exit(2)
  }
}
const { values } = flags()

if (values.help) {
  console.log(`politely-server [--port 8787] [--host 127.0.0.1] [--path /signal] [--static DIR]... [--redis URL (or REDIS_URL)]
  [--allowed-origin ORIGIN]... (or ALLOWED_ORIGINS=a,b; '*' for any) [--trust-proxy]
  [--log-level fatal|error|warn|info|debug|trace|silent (or LOG_LEVEL; default info)]
  [--drain-ms N (or DRAIN_MS): on SIGTERM, how long clients get to leave (default 10000)]
  [--no-metrics] (no /metrics) [--no-health] (no /healthz, /readyz)
  [--turn-url URL]... (or TURN_URL=a,b) --turn-secret SECRET (or TURN_SECRET) [--turn-ttl SECONDS (or TURN_TTL; default 3600)]
  ${limits.map((key) => `--${kebab(key)} (default ${SERVER_DEFAULTS[key as keyof typeof SERVER_DEFAULTS]})`).join('\n  ')}`)
  process.exit(0)
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const level = values['log-level'] as string
if (!LEVELS.includes(level)) {
  console.error(`--log-level must be one of ${LEVELS.join(', ')}`)
  process.exit(2)
}
const drainMs = Number(values['drain-ms'])
if (!Number.isFinite(drainMs) || drainMs < 0) {
  console.error('--drain-ms must be a number of milliseconds, 0 or more')
  process.exit(2)
}
const log = pino({ level, base: { pid: process.pid } })

const options: ServerOptions = {
  path: values.path as string,
  allowedOrigins: (values['allowed-origin'] as string[]).map((origin) => origin.trim()).filter(Boolean),
  trustProxy: values['trust-proxy'] as boolean,
}
for (const key of limits) {
  const text = values[kebab(key) as keyof typeof values] as string | undefined
  if (text === undefined) continue
  const number = Number(text)
  if (!Number.isFinite(number) || number <= 0) {
    console.error(`--${kebab(key)} must be a positive number`)
    process.exit(2)
  }
  ;(options as Record<string, number>)[key] = number
}

try {
  options.turn = turnFromFlags({
    urls: values['turn-url'] as string[],
    secret: values['turn-secret'] as string | undefined,
    ttl: values['turn-ttl'] as string | undefined,
  })
} catch (error) {
  console.error((error as Error).message)
  process.exit(2)
}

if (values.redis) {
  // Loaded only when asked for: ioredis is an optional dependency.
  const { RedisHub } = await import('./redis-hub.js')
  const limits = { ...SERVER_DEFAULTS, ...options }
  const hub = new RedisHub({
    redis: values.redis as string,
    ...limits,
    onError: (error) => log.warn({ err: error.message }, 'redis unreachable'),
  })
  try {
    await hub.connect()
  } catch (error) {
    console.error(`Redis at ${values.redis} is not reachable: ${(error as Error).message}`)
    process.exit(1)
  }
  options.hub = hub
}
const signaling = createSignalingServer(options)
// What a log line may carry: codes, routes, addresses, counts. Never a token, a message or SDP.
signaling.observe({
  refused: ({ code, route, address }) => log.info({ code, route, address }, 'refused'),
  hubError: (operation, error) => log.error({ operation, err: (error as Error)?.message }, 'hub failed'),
  connection: (route, open) => log.debug({ route }, open ? 'connected' : 'disconnected'),
})
const metrics = values['no-metrics'] ? undefined : metricsRoute(signaling)
const health = values['no-health'] ? undefined : healthRoutes(signaling)
// Static directories: the first is served at /, every one also under /<its name>/; /dist/ is the build.
const dirs = values.static as string[]
const mounts: Record<string, string> = { '/dist/': new URL('.', import.meta.url).pathname }
dirs.forEach((dir, index) => {
  mounts[index === 0 ? '/' : `/${dir.replace(/\/$/, '').split('/').pop()}/`] = dir
})
const files = dirs.length ? serveStatic(mounts) : undefined
const server = createServer((request, response) => {
  if (signaling.handle(request, response)) return
  if (metrics?.handle(request, response) || health?.handle(request, response)) return
  if (files) files(request, response)
  else response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not-found","message":"No such route"}')
})
server.on('upgrade', (request, socket, head) => {
  if (!signaling.upgrade(request, socket, head)) refuseUpgrade(socket)
})
protectServer(server, options.maxConnections)
// Event streams on the bare socket: some 5 KB less per held one than through node:http.
signaling.takeEventStreams(server)

const host = values.host as string

let port: number
try {
  port = await listen(server, Number(values.port), host)
} catch (error) {
  if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error
  console.warn(`port ${values.port} is taken, using a free one`)
  port = await listen(server, 0, host)
}
const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`
// The lines a person (and the tests) read first stay plain text; the TURN one before the signaling
// line, which is the one a supervisor waits for.
if (options.turn) console.log(`politely TURN credentials: ${options.turn.urls} (valid ${options.turn.ttl} s)`)
console.log(`politely signaling: ${origin}${options.path}  (SSE: GET, publish: POST, WebSocket: same URL)`)
if (dirs.length) console.log(`politely demo: ${origin}/`)
log.info({ url: `${origin}${options.path}`, redis: !!values.redis, metrics: !!metrics, health: !!health }, 'listening')

/**
 * A graceful stop: no new connections (the listening socket closes; the load balancer sends
 * clients elsewhere), every client told to reconnect (WebSocket 1012, SSE `restart`), POSTs under
 * way finished; after `--drain-ms` whatever is left is cut. Exit 0.
 */
let stopping = false
const stop = async (signal: string) => {
  if (stopping) return
  stopping = true
  const { connections } = signaling.stats()
  log.info({ signal, ...connections, drainMs }, 'draining')
  const deadline = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), drainMs).unref())
  // Resolves once every connection is gone: the subscriptions drained, the requests under way answered.
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  // A keep-alive connection that goes idle after this (its POST answered) is closed too.
  const idle = setInterval(() => server.closeIdleConnections(), 100)
  const drained = await Promise.race([
    signaling
      .drain()
      .then(() => closed)
      .then(() => 'drained' as const),
    deadline,
  ])
  clearInterval(idle)
  const left = signaling.stats().connections
  server.closeAllConnections()
  await signaling.close()
  log.info(drained === 'late' ? { left } : {}, drained)
  log.flush()
  process.exit(0)
}
process.once('SIGINT', () => void stop('SIGINT'))
process.once('SIGTERM', () => void stop('SIGTERM'))
