// The relay workload shared by bench/server.mjs and bench/redis.mjs: signaling servers
// each in a child process of its own (bench/server-runner.mjs), raw-socket clients
// (bench/raw-clients.mjs) in this process, peer A of each pair sending a fixed-size SDP to peer B of its room.
// Importing this module is enough for no child to outlive this process.
import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { rawSsePeer, rawWsPeer } from './raw-clients.mjs'

export const env = (name, fallback) => Number(process.env[name] ?? fallback)
// This machine may be shared: each row runs ROUNDS times, interleaved, and its best round is kept.
export const ROUNDS = env('ROUNDS', 2)
export const PAIRS = env('PAIRS', 100)
export const WINDOW = env('WINDOW', 4) // messages in flight per pair
export const SECONDS = env('SECONDS', 5)
export const WARMUP = env('WARMUP', 1)
export const LIGHT_RATE = env('LIGHT_RATE', 1000) // msg/s over all pairs, for latency without queueing
export const LIGHT_SECONDS = 2
export const SDP_CHARS = 1000
export const HOST = '127.0.0.1'
// A rate limit of 50/s per peer would measure the limiter, not the relay; and every bench client is
// 127.0.0.1, so the per-address limits (100 connections, 60 new rooms a minute) would refuse most pairs.
// POLITELY_OPTIONS='{"replayMessages":16}' tries other server options on the relay runs.
export const UNLIMITED = {
  ratePerSecond: 1e9,
  rateBurst: 1e9,
  maxConnectionsPerAddress: 1e9,
  newRoomsPerMinute: 1e9,
  ...JSON.parse(process.env.POLITELY_OPTIONS ?? '{}'),
}

// ---- child processes: bounded in time, never left behind ----------------------------

const children = new Set()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130))

/** Killed (SIGKILL) when this process exits, however it exits short of SIGKILL itself. */
export function own(child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Exits (killing every child) if the bench still runs after `ms`. */
export function limitTime(ms) {
  setTimeout(() => {
    console.error(`bench: still running after ${ms / 1000} s; stopping`)
    process.exit(1)
  }, ms).unref()
}

export const within = (promise, ms, what) =>
  Promise.race([
    promise,
    sleep(ms, undefined, { ref: false }).then(() => Promise.reject(new Error(`${what}: nothing in ${ms} ms`))),
  ])

/** One server-runner.mjs child: its port, its stats (memory, CPU time) on demand, and stop(). */
export async function startServer(kind, options = {}, execArgv = []) {
  const child = own(
    fork(new URL('./server-runner.mjs', import.meta.url), [kind, JSON.stringify(options)], {
      execArgv: ['--expose-gc', ...execArgv],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    }),
  )
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const answers = new Map()
  let asked = 0
  const ready = new Promise((resolve, reject) => {
    child.on('message', (message) => {
      if (message.type === 'ready') resolve(message.port)
      else answers.get(message.id)?.(message)
    })
    exited.then(() => reject(new Error(`${kind} server exited`)))
  })
  return {
    port: await within(ready, 10_000, `${kind} server start`),
    /** Memory (after a full collection), peak RSS, CPU time, open fds; with `cpuOnly`, no collection first. */
    stats: (cpuOnly = false) =>
      within(
        new Promise((resolve) => {
          answers.set(++asked, resolve)
          child.send({ type: 'stats', id: asked, cpuOnly })
        }),
        10_000,
        `${kind} stats`,
      ),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.send({ type: 'exit' })
      await within(exited, 10_000, `${kind} exit`).catch(() => child.kill('SIGKILL'))
    },
  }
}

// ---- helpers --------------------------------------------------------------------------

export async function pool(count, parallel, task) {
  const results = new Array(count)
  let next = 0
  const worker = async () => {
    while (next < count) {
      const index = next++
      results[index] = await task(index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker))
  return results
}

export const tokenOf = (id) => `bench-token-${id}`.padEnd(16, '0')
export const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MB`
export const percentile = (sorted, p) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : Number.NaN
export const ms = (value) => (value < 10 ? value.toFixed(2) : value.toFixed(1))
export const percent = (share) => `${Math.round(share * 100)}%`

/** CPU time (ms) used by the whole machine so far, to show what else ran during a window. */
export function machineBusyMs() {
  try {
    const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    return (ticks.reduce((sum, tick) => sum + tick, 0) - ticks[3] - ticks[4]) * 10 // USER_HZ 100; minus idle and iowait
  } catch {
    return Number.NaN
  }
}

/** Prints rows of cells as columns: the first left-aligned, the others right-aligned. */
export function printTable(rows) {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => row[column].length)))
  for (const row of rows)
    console.log(
      `   ${row.map((cell, column) => (column ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join('  ')}`,
    )
}

// ---- clients ----------------------------------------------------------------------------

export const description = (id, _room, to, sdp) => ({
  kind: 'description',
  from: id,
  to,
  session: 1,
  toSession: 1,
  description: { type: 'offer', sdp },
})

/**
 * What differs between the servers: URL, how a client knows it is in, the frame A
 * sends, and where B finds the SDP in what it receives (a string to deliver,
 * `false` for an error frame, anything else ignored).
 */
export const PROTOCOLS = {
  politely: {
    url: (port, room, id) => `ws://${HOST}:${port}/signal/${room}?peer=${id}&token=${tokenOf(id)}`,
    ready: (frame) => frame.type === 'welcome',
    message: description,
    receive: (frame) => (frame.type === 'message' ? frame.message.description.sdp : frame.type !== 'error'),
  },
  peerjs: {
    url: (port, _room, id) => `ws://${HOST}:${port}/peerjs?key=peerjs&id=${id}&token=${tokenOf(id)}`,
    ready: (frame) => frame.type === 'OPEN',
    message: (_id, _room, to, sdp) => ({
      type: 'OFFER',
      dst: to,
      payload: { type: 'media', connectionId: 'mc_bench', sdp: { type: 'offer', sdp } },
    }),
    receive: (frame) => (frame.type === 'OFFER' ? frame.payload.sdp.sdp : false),
  },
  'y-webrtc': {
    url: (port) => `ws://${HOST}:${port}/`,
    // Frames are handled in order, so the pong proves the subscription is in place.
    join: (ws, room) => ws.send(JSON.stringify({ type: 'subscribe', topics: [room] })) || ws.send('{"type":"ping"}'),
    ready: (frame) => frame.type === 'pong',
    message: (id, room, to, sdp) => ({
      type: 'publish',
      topic: room,
      data: { type: 'signal', from: id, to, signal: { type: 'offer', sdp } },
    }),
    // The server echoes every publish to its sender too: that echo is ignored, but it is the server's cost.
    receive: (frame, id) => (frame.type === 'publish' && frame.data.to === id ? frame.data.signal.sdp : undefined),
  },
  floor: {
    url: (port, _room, id) => `ws://${HOST}:${port}/?id=${id}&to=${id.replace('a', 'b')}`,
    ready: (frame) => frame.type === 'welcome',
    message: description,
    receive: (frame) => frame.description.sdp,
  },
}

/** A peer of `name`'s protocol on a raw WebSocket (bench/raw-clients.mjs). */
export const wsPeer = (name, ...args) => rawWsPeer(name, PROTOCOLS[name], ...args)

/** politely over SSE down and POST up, posting as its SseSignaler does (bench/raw-clients.mjs). */
export const ssePeer = (port, room, id, deliver, fail) =>
  rawSsePeer(port, room, id, deliver, fail, { token: tokenOf(id), message: (to, sdp) => description(id, room, to, sdp) })

// ---- the workload -------------------------------------------------------------------------

/**
 * A real SDP's lines (Chromium's offer of a data channel, 552 characters), repeated and cut to
 * make the body of every message: their CRLFs are JSON escapes on the wire, one every 30-odd
 * characters as in every real signaling message (an SDP of 'x's was cheaper for every server to
 * parse and write than any real one).
 */
const SDP_LINES = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  'a=candidate:3131780922 1 udp 2113937151 192.0.2.2 47327 typ host generation 0 network-cost 999',
  'a=ice-ufrag:Zq3b',
  'a=ice-pwd:6vBq0p0ZdoH8AbI7bG3Fdl9K',
  'a=ice-options:trickle',
  'a=fingerprint:sha-256 4F:1A:7C:D2:93:0B:5E:C8:21:9A:F0:37:6D:B4:E2:58:0C:A1:3F:96:7B:D5:28:E0:4A:9C:13:F7:62:BD:05:8E',
  'a=setup:actpass',
  'a=mid:0',
  'a=sctp-port:5000',
  'a=max-message-size:262144',
].join('\r\n')
/** The send time, right-aligned in this many characters: every message's SDP has the same length and escapes. */
const TIME_CHARS = 16
const BODY = SDP_LINES.repeat(Math.ceil(SDP_CHARS / SDP_LINES.length)).slice(0, SDP_CHARS - TIME_CHARS - 1)
/** A fixed-size SDP that starts with its send time. */
export function stamp() {
  return `${performance.now().toFixed(3).padStart(TIME_CHARS)} ${BODY}`
}
/** Its length on the wire, where clients find it (in the JSON text, escapes and all). */
const SDP_WIRE_CHARS = JSON.stringify(stamp()).length - 2

/**
 * PAIRS pairs on running servers: saturated (closed loop, `window` in flight per pair), then
 * light load (LIGHT_RATE msg/s) unless `light` is false. `connect(port, room, id, deliver, fail, window)` makes a peer;
 * `route(index)` is the [A's server, B's server] of pair `index` (the first server for
 * both by default); `backendCpuMs()`, if given, is the CPU time used so far by what the
 * servers share (Redis), counted apart from theirs. Closes the peers, not the servers.
 */
export async function runRelay({
  servers,
  connect,
  route = () => [servers[0], servers[0]],
  backendCpuMs,
  window = WINDOW,
  light = true,
}) {
  let errors = 0
  const fail = () => errors++
  let sent = 0
  let received = 0
  // A pair's messages carry their send times: one that arrives before an earlier-sent one came out of order.
  let disordered = 0
  let closedLoop = false
  let samples // latencies of the current measuring window, or undefined
  const fire = (pair) => {
    sent++
    pair.a.send(pair.b.id, stamp())
  }
  const arrived = (pair, sdp) => {
    received++
    if (sdp.length !== SDP_WIRE_CHARS) errors++
    const sentAt = Number.parseFloat(sdp)
    if (sentAt < pair.lastSent) disordered++
    pair.lastSent = sentAt
    samples?.push(performance.now() - sentAt)
    if (closedLoop) fire(pair)
  }
  const drain = async () => {
    for (const deadline = performance.now() + 5000; received < sent && performance.now() < deadline; ) await sleep(20)
  }
  /**
   * The servers' CPU time so far (ms); `clocks` gets each server's clock reading (µs, its profile's
   * clock), `gc` the time each spent in GC pauses so far (ms).
   */
  const serverCpuMs = async (clocks = [], gc = []) => {
    let total = 0
    for (const { cpu, now, gcMs } of await Promise.all(servers.map((server) => server.stats(true)))) {
      total += cpu.user + cpu.system
      clocks.push(now)
      gc.push(gcMs ?? Number.NaN)
    }
    return total / 1000
  }
  const measure = async (seconds) => {
    const from = []
    const to = []
    const [gc0, gc1] = [[], []]
    const [server0, backend0, client0, machine0] = [
      await serverCpuMs(from, gc0),
      (await backendCpuMs?.()) ?? 0,
      process.cpuUsage(),
      machineBusyMs(),
    ]
    const started = performance.now()
    samples = []
    await sleep(seconds * 1000)
    const latencies = Float64Array.from(samples).sort()
    samples = undefined
    const elapsed = performance.now() - started
    const [server1, backend1, client1, machine1] = [
      await serverCpuMs(to, gc1),
      (await backendCpuMs?.()) ?? 0,
      process.cpuUsage(client0),
      machineBusyMs(),
    ]
    const serverMs = server1 - server0
    const backendMs = backend1 - backend0
    const clientMs = (client1.user + client1.system) / 1000
    const messages = Math.max(1, latencies.length)
    return {
      rate: latencies.length / (elapsed / 1000),
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      serverCpu: serverMs / elapsed,
      // Server CPU time per relayed message: unlike msg/s, barely moved by whatever else runs on the machine.
      serverUs: (serverMs * 1000) / messages,
      // Time in GC pauses over server CPU time, as V8 reports the pauses (no profiler).
      gcShare: gc1.reduce((sum, ms, k) => sum + ms - gc0[k], 0) / serverMs,
      backendCpu: backendMs / elapsed,
      backendUs: (backendMs * 1000) / messages,
      clientCpu: clientMs / elapsed,
      // The rest of the machine (other processes, and loopback work done in softirq outside ours).
      otherCpu: Math.max(0, machine1 - machine0 - serverMs - backendMs - clientMs) / elapsed,
      // Each server's clock at the window's start and end: its profile's samples within are the window's.
      clocks: servers.map((_, k) => [from[k], to[k]]),
    }
  }
  let pairs = []
  // Light: a steady LIGHT_RATE over all pairs, latency without queueing.
  const measureLight = async () => {
    let next = 0
    const ticker = setInterval(() => {
      for (let k = 0; k < LIGHT_RATE / 100; k++) fire(pairs[next++ % PAIRS])
    }, 10)
    await sleep(500)
    const result = await measure(LIGHT_SECONDS)
    clearInterval(ticker)
    await drain()
    return result
  }
  try {
    pairs = await pool(PAIRS, 20, async (index) => {
      const pair = { lastSent: 0 }
      const room = `room${index}`
      const [serverA, serverB] = route(index)
      pair.b = await connect(serverB.port, room, `b${index}`, (sdp) => arrived(pair, sdp), fail, window)
      pair.a = await connect(serverA.port, room, `a${index}`, fail, fail, window)
      return pair
    })
    // Saturated: each delivery to B lets its A send the next message, `window` in flight per pair.
    closedLoop = true
    for (const pair of pairs) for (let k = 0; k < window; k++) fire(pair)
    await sleep(WARMUP * 1000)
    const loaded = await measure(SECONDS)
    closedLoop = false
    await drain()
    const lightLoad = light ? await measureLight() : undefined
    let rss = 0
    let peakRss = 0
    for (const stats of await Promise.all(servers.map((server) => server.stats()))) {
      rss += stats.memory.rss
      peakRss += stats.peakRss
    }
    return { ...loaded, light: lightLoad, rss, peakRss, sent, lost: sent - received, disordered, errors }
  } finally {
    for (const pair of pairs) {
      pair.a?.close()
      pair.b?.close()
    }
  }
}
