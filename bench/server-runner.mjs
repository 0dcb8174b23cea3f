// One signaling server in a process of its own, for bench/server.mjs, bench/redis.mjs and bench/mesh.mjs:
// alone in its process, its RSS and CPU time are its own, and it gets a core of its own.
//
//   node bench/server-runner.mjs <politely|politely-redis|peerjs|y-webrtc|floor|floor-room|floor-sse> '<options as JSON>'
//
// politely-redis: politely on a RedisHub at options.redisUrl (the other options go to both).
//
// LAG=ms (in the environment): prints each event-loop stall longer than that, with its Date.now().
//
// IPC: sends { type: 'ready', port } once listening; answers { type: 'stats', id, cpuOnly }
// with memory (after a full collection, unless cpuOnly), peak RSS, CPU time, time in GC pauses so far (`gcMs`),
// open file descriptors and `now` (µs, the monotonic clock of --cpu-prof's samples); exits on { type: 'exit' } (so --cpu-prof can write its
// profile) or as soon as the parent is gone, so it can never outlive the bench.
import { readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import { PerformanceObserver } from 'node:perf_hooks'

const [kind, json = '{}'] = process.argv.slice(2)
const options = JSON.parse(json)
process.on('disconnect', () => process.exit(0))
/**
 * Time this process's main thread spent in GC pauses (ms), as V8 reports each one: the GC share
 * measured without a profiler (whose sampling weighs some system calls more than others).
 */
let gcMs = 0
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration
}).observe({ entryTypes: ['gc'] })
// LAG=ms: prints each event-loop stall longer than that (a timer due every 10 ms, late), with Date.now().
if (process.env.LAG) {
  let last = Date.now()
  setInterval(() => {
    const now = Date.now()
    if (now - last - 10 > Number(process.env.LAG))
      process.stderr.write(`${kind} server: event loop late ${now - last - 10} ms at ${now}\n`)
    last = now
  }, 10).unref()
}

/** A `ws` server on 127.0.0.1 and a free port calling `serve(ws, query)` for each connection; resolves to its port. */
async function wsRelay(serve) {
  const { WebSocketServer } = await import('ws')
  const server = http.createServer()
  new WebSocketServer({ server }).on('connection', (ws, request) =>
    serve(ws, new URL(request.url, 'http://localhost').searchParams),
  )
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))
}

async function start() {
  if (kind === 'politely') {
    const { startSignalingServer } = await import('../dist/server.mjs')
    return (await startSignalingServer({ port: 0, host: '127.0.0.1', ...options })).port
  }
  if (kind === 'politely-redis') {
    const { startSignalingServer, SERVER_DEFAULTS } = await import('../dist/server.mjs')
    const { RedisHub } = await import('../dist/redis.mjs')
    const { redisUrl, ...rest } = options
    // The hub takes the same limits as the server, as the CLI's --redis does.
    const hub = new RedisHub({ ...SERVER_DEFAULTS, ...rest, redis: redisUrl })
    await hub.connect() // "ready" then means connected; a failure ends this process, and startServer rejects
    return (await startSignalingServer({ port: 0, host: '127.0.0.1', ...rest, hub })).port
  }
  if (kind === 'peerjs') {
    const { PeerServer } = await import('peer')
    return new Promise((resolve) => {
      PeerServer({ port: 0, host: '127.0.0.1', path: '/', ...options }, (server) => resolve(server.address().port))
    })
  }
  if (kind === 'y-webrtc') {
    // bin/server.js listens on $PORT on every interface the moment it is imported:
    // pin its one listen() to loopback and a free port.
    const listen = http.Server.prototype.listen
    const port = new Promise((resolve) => {
      http.Server.prototype.listen = function () {
        http.Server.prototype.listen = listen
        this.once('listening', () => resolve(this.address().port))
        return listen.call(this, 0, '127.0.0.1')
      }
    })
    await import(new URL('../node_modules/y-webrtc/bin/server.js', import.meta.url).href)
    return port
  }
  if (kind === 'floor') {
    // A reference, not a contender: the least a Node WebSocket relay can do per message —
    // no parsing, no checks, each frame forwarded as it came to the peer named in the URL.
    const peers = new Map()
    return wsRelay((ws, query) => {
      peers.set(query.get('id'), ws)
      ws.on('message', (data) => peers.get(query.get('to'))?.send(data, { binary: false }))
      ws.send('{"type":"welcome"}')
    })
  }
  if (kind === 'floor-room') {
    // A reference for bench/mesh.mjs: the least a room's signaling needs — each frame (JSON with
    // `from` and maybe `to`) forwarded as it came to `to`, or to everyone else in the URL's room;
    // `{"type":"bye","from":…}` to the room when a socket closes. No checks, no limits.
    const rooms = new Map()
    return wsRelay((ws, query) => {
      const id = query.get('id')
      const members = rooms.get(query.get('room')) ?? new Map()
      rooms.set(query.get('room'), members)
      members.set(id, ws)
      const others = (text) => {
        for (const [other, socket] of members) if (other !== id) socket.send(text)
      }
      ws.on('message', (data) => {
        const { to } = JSON.parse(data)
        if (to) members.get(to)?.send(data, { binary: false })
        else others(data.toString())
      })
      ws.on('close', () => {
        members.delete(id)
        others(JSON.stringify({ type: 'bye', from: id }))
      })
    })
  }
  if (kind === 'floor-sse') {
    // A reference for part 1: what Node's own HTTP server costs per held event stream — each
    // request answered with SSE headers and politely's welcome, its response kept and nothing more.
    const streams = new Set()
    const server = http.createServer((request, response) => {
      const peer = new URL(request.url, 'http://localhost').searchParams.get('peer')
      response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' })
      response.write(`event: welcome\ndata: ${JSON.stringify({ peer })}\n\n`)
      streams.add(response)
      response.once('close', () => streams.delete(response))
    })
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))
  }
  throw new Error(`unknown server ${kind}`)
}

/** Open fds and their soft limit: each held connection is one, so the limit caps what this process can hold. */
function files() {
  try {
    const limit = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1])
    return { open: readdirSync('/proc/self/fd').length, limit }
  } catch {
    return { open: Number.NaN, limit: Number.NaN } // not Linux
  }
}

process.on('message', (message) => {
  if (message.type === 'exit') process.exit(0)
  if (message.type === 'stats') {
    // A collection first, so heapUsed is what is live, not what is garbage yet.
    // Not for a CPU reading (cpuOnly) at the edges of a relay's measured window: a full collection
    // there, under load, was counted in that window's CPU and in the profile's GC share.
    if (!message.cpuOnly) globalThis.gc?.()
    const memory = process.memoryUsage()
    const peakRss = process.resourceUsage().maxRSS * 1024
    // now: this process's monotonic clock in µs, the clock of --cpu-prof's sample times.
    const now = Number(process.hrtime.bigint() / 1000n)
    process.send({ type: 'stats', id: message.id, memory, peakRss, cpu: process.cpuUsage(), gcMs, files: files(), now })
  }
})

process.send({ type: 'ready', port: await start() })
