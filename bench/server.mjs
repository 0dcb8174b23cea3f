// Server benchmark. 1: how many subscribers one politely server process holds, at
// what memory. 2: relay throughput and latency next to the PeerJS server and
// y-webrtc's signaling server, for the same workload: peer A sends a 1000-character
// SDP to peer B of its room. Each server runs alone in a child process
// (bench/server-runner.mjs) so its RSS and CPU are its own; this process is the
// only client. Everything stays on 127.0.0.1; every child is killed on the way out.
//
//   npx rollup -c && node bench/server.mjs
//   SUBSCRIBERS=10000 PAIRS=100 WINDOW=4 SECONDS=5 WARMUP=1 LIGHT_RATE=1000 node bench/server.mjs
//   PROFILE=1 node bench/server.mjs     …and print where each server spent its CPU (--cpu-prof; after
//                                       `SOURCEMAP=1 npm run build`, by src/ line)
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import net from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import {
  env,
  HOST,
  LIGHT_RATE,
  LIGHT_SECONDS,
  limitTime,
  mb,
  ms,
  PAIRS,
  PROTOCOLS,
  percent,
  pool,
  printTable,
  ROUNDS,
  runRelay,
  SDP_CHARS,
  SECONDS,
  ssePeer,
  stamp,
  startServer as start,
  tokenOf,
  UNLIMITED,
  WARMUP,
  WINDOW,
  wsPeer,
} from './relay.mjs'

const SUBSCRIBERS = env('SUBSCRIBERS', 10_000)
// The listen backlog is finite: 10k connects at once end in SYN retries (1 s each) that time the kernel, not the server.
const CONNECTING = 256
const PROFILE = process.env.PROFILE === '1'
const RSS_GOAL_MB = 300
const RATIO_GOAL = 3
limitTime((120 + ROUNDS * 5 * (WARMUP + SECONDS + LIGHT_SECONDS + 15)) * 1000)

const profileDir = PROFILE ? mkdtempSync(join(os.tmpdir(), 'politely-bench-')) : undefined
const startServer = (kind, label, options) =>
  start(kind, options, PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${label}.cpuprofile`] : [])

function openFileLimit() {
  try {
    return Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1])
  } catch {
    return Number.POSITIVE_INFINITY
  }
}

// ---- 1. subscribers held ----------------------------------------------------------------

/** An SSE subscriber on a raw socket: a few hundred bytes of client state, so one process holds thousands. */
function sseSubscriber(port, room, peer) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, HOST)
    let text = ''
    const fail = (why) => {
      socket.destroy()
      reject(new Error(`SSE ${peer}: ${why}`))
    }
    const timer = setTimeout(() => fail('no welcome in 20 s'), 20_000)
    socket.setEncoding('utf8')
    socket.on('error', (error) => fail(error.message))
    socket.on('close', () => fail('closed'))
    socket.write(
      `GET /signal/${room}?peer=${peer}&token=${tokenOf(peer)} HTTP/1.1\r\nHost: ${HOST}\r\nAccept: text/event-stream\r\n\r\n`,
    )
    socket.on('data', function welcome(chunk) {
      text += chunk
      if (!text.startsWith('HTTP/1.1 200') && text.includes('\r\n')) return fail(text.split('\r\n')[0])
      if (!text.includes(`event: welcome\ndata: {"peer":"${peer}"}`)) return
      clearTimeout(timer)
      socket.off('data', welcome)
      socket.on('data', () => {}) // heartbeats
      resolve(() => socket.destroy())
    })
  })
}

function wsSubscriber(port, room, peer) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${HOST}:${port}/signal/${room}?peer=${peer}&token=${tokenOf(peer)}`, {
      perMessageDeflate: false,
    })
    const timer = setTimeout(() => ws.terminate(), 20_000)
    ws.once('unexpected-response', (_, response) => reject(new Error(`WebSocket ${peer}: HTTP ${response.statusCode}`)))
    ws.on('error', (error) => reject(new Error(`WebSocket ${peer}: ${error.message}`)))
    ws.once('close', () => reject(new Error(`WebSocket ${peer}: closed`)))
    ws.once('message', (data) => {
      clearTimeout(timer)
      const frame = JSON.parse(data.toString())
      if (frame.type === 'welcome' && frame.peer === peer) resolve(() => ws.terminate())
      else reject(new Error(`WebSocket ${peer}: first frame ${data}`))
    })
  })
}

async function holdSubscribers() {
  const server = await startServer('politely', 'subscribers', { maxRooms: 1_000_000, maxPeersPerRoom: 16 })
  try {
    const idle = await server.stats()
    const failures = []
    const started = performance.now()
    // Rooms of two, one SSE and one WebSocket peer each.
    const closers = await pool(SUBSCRIBERS, CONNECTING, (index) => {
      const connect = index % 2 ? wsSubscriber : sseSubscriber
      return connect(server.port, `room${index >> 1}`, `p${index}`).catch((error) => void failures.push(error.message))
    })
    const seconds = (performance.now() - started) / 1000
    const held = await server.stats()
    for (const close of closers) close?.()
    const welcomed = closers.filter(Boolean).length
    const rss = held.memory.rss
    console.log(`1. Subscribers held by one politely server process (maxRooms raised to 1e6, other limits default)
   subscribers   ${welcomed} of ${SUBSCRIBERS} got their welcome (${Math.ceil(SUBSCRIBERS / 2)} SSE on raw sockets + ${Math.floor(SUBSCRIBERS / 2)} WebSocket, ${Math.ceil(SUBSCRIBERS / 2)} rooms of 2)${failures.length ? `; ${failures.length} failed, first: ${failures[0]}` : ''}
   connect time  ${seconds.toFixed(2)} s for all (${Math.round(welcomed / seconds)}/s, ${CONNECTING} connecting at a time, one client process)
   server RSS    ${mb(rss)} (${mb(idle.memory.rss)} before; ${((rss - idle.memory.rss) / 1024 / Math.max(1, welcomed)).toFixed(1)} KB per subscriber); heap used ${mb(held.memory.heapUsed)}
   goal          RSS ≤ ${RSS_GOAL_MB} MB with ${SUBSCRIBERS}: ${rss <= RSS_GOAL_MB * 2 ** 20 && welcomed === SUBSCRIBERS ? 'met' : 'NOT met'}
`)
  } finally {
    await server.stop()
  }
}

// ---- 2. relay throughput and latency ------------------------------------------------------

const ALL = [
  { name: 'politely WebSocket', server: 'politely', options: UNLIMITED, protocol: 'politely' },
  { name: 'politely SSE + POST', server: 'politely', options: UNLIMITED, protocol: 'politely', connect: ssePeer },
  { name: 'PeerJS server', server: 'peerjs', protocol: 'peerjs' },
  { name: 'y-webrtc server', server: 'y-webrtc', protocol: 'y-webrtc' },
  { name: 'floor: bare ws forward', server: 'floor', protocol: 'floor' },
]
// ONLY=politely runs just the matching rows (a regular expression on the names).
const CONTENDERS = ALL.filter(({ name }) => new RegExp(process.env.ONLY ?? '', 'i').test(name))

async function relay(contender) {
  const server = await startServer(contender.server, contender.name.replace(/\W+/g, '-'), contender.options)
  try {
    const connect = contender.connect ?? ((...args) => wsPeer(PROTOCOLS[contender.protocol], ...args))
    const result = await runRelay({ servers: [server], connect })
    const frame = JSON.stringify(PROTOCOLS[contender.protocol].message('a0', 'room0', 'b0', stamp())).length
    return { name: contender.name, frame, ...result }
  } finally {
    await server.stop()
  }
}

async function compare() {
  console.log(`2. Relay: A sends a ${SDP_CHARS}-character SDP (offer) to B of its room/topic; ${PAIRS} pairs, one ws or node:http client per peer, all in this process.
   saturated: ${WINDOW} in flight per pair (B's delivery lets A send the next), ${WARMUP} s warm-up, ${SECONDS} s measured;
   light: ${LIGHT_RATE} msg/s over all pairs, ${LIGHT_SECONDS} s. Latency = B's receive time - A's send time.
   politely runs with ratePerSecond ${UNLIMITED.ratePerSecond}, rateBurst ${UNLIMITED.rateBurst} (defaults 50/s, burst 200 per peer would refuse this load);
   the others have no rate limit. Each server in its own process.${process.env.POLITELY_OPTIONS ? `\n   politely options: ${JSON.stringify(UNLIMITED)}` : ''}
`)
  const results = CONTENDERS.map(() => undefined)
  for (let round = 0; round < ROUNDS; round++) {
    // Rotated order, so no contender always runs right after the same one.
    for (let k = 0; k < CONTENDERS.length; k++) {
      const index = (k + round) % CONTENDERS.length
      const result = await relay(CONTENDERS[index])
      if (!results[index] || result.rate > results[index].rate) results[index] = result
    }
  }
  const rows = [
    'server|A sends|msg/s|p50 ms|p99 ms|light p50|light p99|server CPU|µs CPU/msg|client CPU|other CPU|RSS after|lost|errors'.split(
      '|',
    ),
    ...results.map((r) => [
      r.name,
      `${r.frame} B`,
      `${Math.round(r.rate)}${r.clientCpu > 0.95 ? '*' : ''}`,
      ms(r.p50),
      ms(r.p99),
      ms(r.light.p50),
      ms(r.light.p99),
      percent(r.serverCpu),
      r.serverUs.toFixed(1),
      percent(r.clientCpu),
      percent(r.otherCpu),
      mb(r.rss),
      String(r.lost),
      String(r.errors),
    ]),
  ]
  printTable(rows)
  const [ws, sse, peerjs, yWebrtc] = ALL.slice(0, 4).map((contender) => results[CONTENDERS.indexOf(contender)])
  // By CPU per message too: that is the capacity ratio on one core, even where the client capped msg/s.
  const ratio = (a, b) => `${(a.rate / b.rate).toFixed(2)}× msg/s, ${(b.serverUs / a.serverUs).toFixed(2)}× by CPU/msg`
  if (ws && sse && peerjs && yWebrtc)
    console.log(`
   politely WebSocket / PeerJS     ${ratio(ws, peerjs)}      politely WebSocket / y-webrtc   ${ratio(ws, yWebrtc)}
   politely SSE+POST  / PeerJS     ${ratio(sse, peerjs)}      politely SSE+POST  / y-webrtc   ${ratio(sse, yWebrtc)}
   goal ≥ ${RATIO_GOAL}× both: ${Math.min(ws.rate / peerjs.rate, ws.rate / yWebrtc.rate) >= RATIO_GOAL ? 'met' : 'NOT met'} (WebSocket path)
   The floor row is a relay that forwards frames unread (bench/server-runner.mjs): no Node WebSocket server does less per message.`)
  console.log(`
   Best of ${ROUNDS} round(s) per row. CPU columns are % of one core over the measured window: a server near 100% is
   the bottleneck; a client near 100% (msg/s marked *), or other CPU well above 0 (${os.cpus().length} cores here), limited that row.
   Saturated latency is queueing: about ${PAIRS * WINDOW} in flight / msg/s. "A sends" is the size of A's frame (same SDP in each).
   µs CPU/msg (server CPU time / messages relayed) is the number least moved by a busy machine.
`)
}

// ---- profiles -------------------------------------------------------------------------------

/** Self time by function, and inclusive time of politely's own functions, mapped back to src/ through the source map. */
function hotSpots(label, top = 12) {
  // The library builds ship without source maps: `SOURCEMAP=1 npm run bench:server` builds them.
  const mapFile = new URL('../dist/server.mjs.map', import.meta.url)
  const map = existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))) : undefined
  const where = ({ functionName, url, lineNumber, columnNumber }) => {
    const name = functionName || '(anonymous)'
    if (map && url.endsWith('/dist/server.mjs')) {
      const entry = map.findEntry(lineNumber, columnNumber)
      if (entry.originalSource) return `${name}  src/${entry.originalSource.split('src/').pop()}:${entry.originalLine + 1}`
    }
    return url
      ? `${name}  ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/bench\//, 'bench/')}:${lineNumber + 1}`
      : name
  }
  const profile = JSON.parse(readFileSync(join(profileDir, `${label}.cpuprofile`), 'utf8'))
  const self = new Map()
  let busy = 0
  for (const node of profile.nodes) {
    if (!node.hitCount || node.callFrame.functionName === '(idle)') continue
    const key = where(node.callFrame)
    self.set(key, (self.get(key) ?? 0) + node.hitCount)
    busy += node.hitCount
  }
  // Inclusive time of politely's own functions: each sample counted once per function on its stack.
  const parent = new Map()
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const total = new Map()
  for (const id of profile.samples) {
    const keys = new Set()
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const key = where(byId.get(at).callFrame)
      if (key.includes(' src/')) keys.add(key)
    }
    for (const key of keys) total.set(key, (total.get(key) ?? 0) + 1)
  }
  const list = (title, map) => {
    console.log(`   ${label}, ${title} (% of ${busy} busy samples)`)
    for (const [key, hits] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`   ${((100 * hits) / busy).toFixed(1).padStart(6)}%  ${key}`)
    }
  }
  list('self time', self)
  if (total.size) list('inclusive time in src/', total)
}

// ---- run ------------------------------------------------------------------------------------

const needed = SUBSCRIBERS + PAIRS * 2 * (WINDOW + 1) + 200
if (needed > openFileLimit()) {
  console.error(
    `bench: needs ~${needed} file descriptors, the limit is ${openFileLimit()}: raise it (ulimit -n ${needed}) or lower SUBSCRIBERS`,
  )
  process.exit(2)
}
console.log(
  `politely server benchmark — Node ${process.version}, ${os.cpus().length} CPUs, ${mb(os.totalmem())}, 127.0.0.1 only\n`,
)
if (SUBSCRIBERS > 0) await holdSubscribers()
await compare()
if (PROFILE) {
  console.log(`3. CPU profiles (${profileDir})`)
  for (const contender of CONTENDERS) hotSpots(contender.name.replace(/\W+/g, '-'))
  // Measured here: `perf record` puts writev (with the kernel's loopback TCP) at ~20% of the politely server's CPU
  // where --cpu-prof shows ~50%; the ranking of politely's own functions agrees.
  console.log('   (--cpu-prof over-weights writev on this machine; `perf record` saw about half as much)')
}
process.exit(0)
