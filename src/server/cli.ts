#!/usr/bin/env node
// politely-server: the reference signaling server, and optionally static files (the demos).
//
//   politely-server [--port 8787] [--host 127.0.0.1] [--path /signal] [--static DIR]... [--redis URL]
//                   [--allowed-origin ORIGIN]... [--trust-proxy]
//
// With --redis (or REDIS_URL), rooms live in Redis and any number of these processes act as one.
// --allowed-origin (or ALLOWED_ORIGINS, comma-separated): pages of another origin that may use the
// server (`*`: any); its own origin always may. --trust-proxy: behind a reverse proxy, per-address
// limits read the client's address from X-Forwarded-For.
//
// Every limit of ServerOptions can be set as --max-peers-per-room 8, --rate-per-second 20, …
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import { createSignalingServer, listen, protectServer, SERVER_DEFAULTS, type ServerOptions, serveStatic } from './index.js'

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
const limits = Object.keys(SERVER_DEFAULTS).filter((key) => key !== 'path')

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '8787' },
    host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
    path: { type: 'string', default: SERVER_DEFAULTS.path },
    static: { type: 'string', multiple: true, default: [] },
    redis: { type: 'string', default: process.env.REDIS_URL },
    'allowed-origin': { type: 'string', multiple: true, default: process.env.ALLOWED_ORIGINS?.split(',') ?? [] },
    'trust-proxy': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
    ...Object.fromEntries(limits.map((key) => [kebab(key), { type: 'string' as const }])),
  },
})

if (values.help) {
  console.log(`politely-server [--port 8787] [--host 127.0.0.1] [--path /signal] [--static DIR]... [--redis URL (or REDIS_URL)]
  [--allowed-origin ORIGIN]... (or ALLOWED_ORIGINS=a,b; '*' for any) [--trust-proxy]
  ${limits.map((key) => `--${kebab(key)} (default ${SERVER_DEFAULTS[key as keyof typeof SERVER_DEFAULTS]})`).join('\n  ')}`)
  process.exit(0)
}

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

if (values.redis) {
  // Loaded only when asked for: ioredis is an optional dependency.
  const { RedisHub } = await import('./redis-hub.js')
  const limits = { ...SERVER_DEFAULTS, ...options }
  const hub = new RedisHub({ redis: values.redis as string, ...limits })
  try {
    await hub.connect()
  } catch (error) {
    console.error(`Redis at ${values.redis} is not reachable: ${(error as Error).message}`)
    process.exit(1)
  }
  options.hub = hub
}
const signaling = createSignalingServer(options)
// Static directories: the first is served at /, every one also under /<its name>/; /dist/ is the build.
const dirs = values.static as string[]
const mounts: Record<string, string> = { '/dist/': new URL('.', import.meta.url).pathname }
dirs.forEach((dir, index) => {
  mounts[index === 0 ? '/' : `/${dir.replace(/\/$/, '').split('/').pop()}/`] = dir
})
const files = dirs.length ? serveStatic(mounts) : undefined
const server = createServer((request, response) => {
  if (signaling.handle(request, response)) return
  if (files) files(request, response)
  else response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not-found","message":"No such route"}')
})
server.on('upgrade', (request, socket, head) => {
  if (!signaling.upgrade(request, socket, head)) socket.destroy()
})
protectServer(server, options.maxConnections)

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
console.log(`politely signaling: ${origin}${options.path}  (SSE: GET, publish: POST, WebSocket: same URL)`)
if (dirs.length) console.log(`politely demo: ${origin}/`)

const stop = async () => {
  await signaling.close()
  server.closeAllConnections()
  server.close(() => process.exit(0))
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
