// Server benchmark. 1: connections held per server process and route (politely WebSocket,
// politely SSE, PeerJS WebSocket): RSS and heap per connection at 10k and at 20k or as many
// as the fd limit allows. 2: relay throughput, latency and CPU per message at windows 2 and
// 32 next to the PeerJS server, y-webrtc's signaling server and a bare-ws floor, for the
// same workload: peer A sends a 1000-character SDP to peer B of its room. Each server runs
// alone in a child process (bench/server-runner.mjs) so its RSS and CPU are its own; part 1's
// clients are child processes too (bench/held-clients.mjs), part 2's are this process.
// Everything stays on 127.0.0.1; every child is killed on the way out.
//
//   npx rollup -c && node bench/server.mjs
//   SUBSCRIBERS=10000,20000 WINDOWS=2,32 PAIRS=100 SECONDS=5 WARMUP=1 ROUNDS=2 LIGHT_RATE=1000 node bench/server.mjs
//   SUBSCRIBERS=0 ONLY=politely   skip part 1; run part 2's matching rows only
//   PROFILE=1 [PROFILE_INTERVAL_US=250] node bench/server.mjs
//                                       …and print each server's GC share over the saturated window (its
//                                       profile's samples between the window's two CPU readings) and where it
//                                       spent its CPU (--cpu-prof; after `SOURCEMAP=1 npm run build`, by src/ line)
import { fork } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import {
  LIGHT_RATE,
  LIGHT_SECONDS,
  limitTime,
  mb,
  ms,
  own,
  PAIRS,
  PROTOCOLS,
  percent,
  printTable,
  ROUNDS,
  runRelay,
  SDP_CHARS,
  SECONDS,
  ssePeer,
  stamp,
  startServer as start,
  UNLIMITED,
  WARMUP,
  within,
  wsPeer,
} from './relay.mjs'

const PROFILE = process.env.PROFILE === '1'
// Messages in flight per pair: 2, a light closed loop where per-message latency shows, and 32, where throughput does.
const WINDOWS = (process.env.WINDOWS ?? process.env.WINDOW ?? '2,32').split(',').map(Number)

const profileDir = PROFILE ? mkdtempSync(join(os.tmpdir(), 'politely-bench-')) : undefined
/**
 * The profiles' sampling interval (µs). A GC share of 3 % over a 5 s window at 1 ms is ~150
 * samples, ±8 % of itself by chance alone: at 250 µs, ±4 %.
 */
const PROFILE_INTERVAL_US = Number(process.env.PROFILE_INTERVAL_US ?? 250)
const startServer = (kind, label, options) =>
  start(
    kind,
    options,
    PROFILE
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${profileDir}`,
          `--cpu-prof-name=${label}.cpuprofile`,
          `--cpu-prof-interval=${PROFILE_INTERVAL_US}`,
        ]
      : [],
  )

// ---- 1. connections held ----------------------------------------------------------------

// 20k wanted; the server process's fd limit may allow fewer (it is said in the output).
const HELD_COUNTS = (process.env.SUBSCRIBERS ?? '10000,20000')
  .split(',')
  .map(Number)
  .filter(Boolean)
  .sort((a, b) => a - b)
const TOP = Math.max(0, ...HELD_COUNTS)
// Each client process holds at most this many, far under its fd limit (its sockets are one fd each).
const CLIENTS_PER_PROCESS = 5000
// Fds a held server may still need of its own (a log, a profile, the /proc read of our stats): never handed to clients.
const FD_MARGIN = 64
// What a one-address bench trips (every client is 127.0.0.1); the other limits stay at their defaults.
const POLITELY_HELD = { maxConnections: TOP, maxConnectionsPerAddress: TOP, newRoomsPerMinute: TOP }
const PEERJS_HELD = { concurrent_limit: Math.max(TOP, 5000) } // default 5000
const HELD = [
  { name: 'politely WebSocket', server: 'politely', options: POLITELY_HELD, route: 'politely-ws', barKb: 7 },
  { name: 'politely SSE', server: 'politely', options: POLITELY_HELD, route: 'politely-sse', barKb: 9 },
  { name: 'PeerJS WebSocket', server: 'peerjs', options: PEERJS_HELD, route: 'peerjs' },
  // Node's own floor for an event stream: a node:http server that only answers and holds (bench/server-runner.mjs).
  { name: 'floor: bare node:http SSE', server: 'floor-sse', options: {}, route: 'politely-sse' },
]
const kb = (bytes) => (bytes / 1024).toFixed(1)

/**
 * Soft and hard fd limits of this process. Node raises its soft limit to the hard one as it
 * starts (node.cc, PlatformInit), and every child does the same: the hard limit is the ceiling,
 * and raising that needs CAP_SYS_RESOURCE.
 */
function fileLimits() {
  try {
    const [, soft, hard] = /Max open files\s+(\S+)\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'))
    const number = (limit) => (limit === 'unlimited' ? Number.POSITIVE_INFINITY : Number(limit))
    return { soft: number(soft), hard: number(hard) }
  } catch {
    return { soft: Number.POSITIVE_INFINITY, hard: Number.POSITIVE_INFINITY }
  }
}

/** Client processes (bench/held-clients.mjs) that open and hold connections, CLIENTS_PER_PROCESS each. */
function clientProcesses() {
  const children = []
  const ask = (child, message) =>
    within(
      new Promise((resolve) => {
        child.once('message', resolve)
        child.send(message)
      }),
      120_000,
      'held clients',
    )
  return {
    /** Opens peers p<from>…p<to - 1>, a process at a time (the server is the bottleneck, not the clients). */
    async open(route, port, from, to) {
      const report = { welcomed: 0, failures: 0, firstFailure: undefined }
      for (let first = from; first < to; ) {
        const k = Math.floor(first / CLIENTS_PER_PROCESS)
        const count = Math.min(to, (k + 1) * CLIENTS_PER_PROCESS) - first
        children[k] ??= own(
          fork(new URL('./held-clients.mjs', import.meta.url), [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }),
        )
        const { welcomed, failures, firstFailure } = await ask(children[k], { type: 'open', route, port, first, count })
        report.welcomed += welcomed
        report.failures += failures
        report.firstFailure ??= firstFailure
        first += count
      }
      return report
    },
    /** Kills them: the kernel closes all their sockets at once. */
    async close() {
      await Promise.all(
        children.map((child) => {
          const exited = new Promise((resolve) => child.once('exit', resolve))
          child.kill('SIGKILL')
          return exited
        }),
      )
    },
  }
}

/** One server process holding one route's connections: a row per count in HELD_COUNTS, all measured after a GC. */
async function hold(target) {
  const server = await start(target.server, target.options)
  const clients = clientProcesses()
  try {
    const idle = await server.stats()
    // Past its fd limit a server accepts nothing more (EMFILE), so that is where the count stops.
    const room = idle.files.limit - idle.files.open - FD_MARGIN
    const rows = []
    let opened = 0
    let welcomed = 0
    let failed = 0
    for (const wanted of HELD_COUNTS) {
      const count = Math.min(wanted, room)
      const started = performance.now()
      const report = await clients.open(target.route, server.port, opened, count)
      const seconds = (performance.now() - started) / 1000
      opened = Math.max(opened, count)
      welcomed += report.welcomed
      failed += report.failures
      const held = await server.stats()
      rows.push({
        ...target,
        wanted,
        welcomed,
        failed,
        firstFailure: report.firstFailure,
        rate: report.welcomed / seconds,
        idle: idle.memory,
        held: held.memory,
        rssPer: (held.memory.rss - idle.memory.rss) / Math.max(1, welcomed),
        heapPer: (held.memory.heapUsed - idle.memory.heapUsed) / Math.max(1, welcomed),
        files: idle.files,
      })
    }
    return rows
  } finally {
    await clients.close()
    await server.stop()
  }
}

/** Why a row holds fewer than it wanted, in words (undefined if it holds them all). */
function shortfall(row) {
  if (row.welcomed >= row.wanted) return undefined
  if (row.failed) return `${row.failed} refused or failed, first: ${row.firstFailure}`
  const { limit, open } = row.files
  const hard = limit >= fileLimits().hard ? ', the hard limit: raising it needs CAP_SYS_RESOURCE' : ''
  return `the server process's fd limit is ${limit}${hard}; ${limit} - ${open} fds of its own - ${FD_MARGIN} kept free = ${limit - open - FD_MARGIN}`
}

async function holdConnections() {
  const { soft, hard } = fileLimits()
  console.log(`1. Connections held, one route per server process; idle clients in child processes (${CLIENTS_PER_PROCESS} each), rooms of two.
   politely: maxConnections, maxConnectionsPerAddress and newRoomsPerMinute raised to ${TOP} (every client is 127.0.0.1,
   so one address would trip them; the other limits are the defaults). PeerJS: concurrent_limit ${PEERJS_HELD.concurrent_limit} (default 5000).
   Per connection = (RSS or heap used with the connections - before them) / connections, each read right after a full GC.
   fd limit per process: ${soft} (Node raises it to the hard limit, ${hard}); a server holds one fd per connection besides its own.
`)
  const rows = []
  for (const target of HELD) rows.push(...(await hold(target)))
  printTable([
    'server, route|wanted|held|RSS before|RSS held|RSS/conn|heap/conn|connects/s'.split('|'),
    ...rows.map((row) => [
      row.name,
      String(row.wanted),
      `${row.welcomed}${shortfall(row) ? '¹' : ' '}`,
      mb(row.idle.rss),
      mb(row.held.rss),
      `${kb(row.rssPer)} KB`,
      `${kb(row.heapPer)} KB`,
      String(Math.round(row.rate)),
    ]),
  ])
  const reasons = new Set(rows.map(shortfall).filter(Boolean))
  for (const reason of reasons) console.log(`   ¹ fewer than wanted: ${reason}`)
  console.log()
  for (const wanted of HELD_COUNTS) {
    const at = (name) => rows.find((row) => row.name === name && row.wanted === wanted)
    const peerjs = at('PeerJS WebSocket')
    for (const row of HELD.filter((target) => target.barKb).map((target) => at(target.name))) {
      const ratio = peerjs ? `${(row.rssPer / peerjs.rssPer).toFixed(2)}× PeerJS's ${kb(peerjs.rssPer)} KB` : 'PeerJS not run'
      // The bars are set at 10k.
      const bar = wanted === 10_000 ? `   bar ≤ ${row.barKb} KB: ${row.rssPer <= row.barKb * 1024 ? 'met' : 'NOT met'}` : ''
      console.log(
        `   ${String(row.welcomed).padStart(6)} held  ${row.name.padEnd(19)} ${kb(row.rssPer).padStart(5)} KB = ${ratio}${bar}`,
      )
    }
  }
  console.log()
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

// The issue's bars, politely / PeerJS: msg/s at least (by window), server µs CPU per message at most.
const RELAY_BARS = {
  'politely WebSocket': { rate: { 2: 1.0, 32: 1.2 }, cpu: 0.85, gc: 1 },
  'politely SSE + POST': { rate: { 2: 0.5, 32: 0.8 } },
}
const labelOf = (contender, window) => `${contender.name.replace(/\W+/g, '-')}-w${window}`

/**
 * One contender at one window, in a server process of its own (so peak RSS and the profile are
 * that window's). With PROFILE, each round has its profile, and the result carries its own round's
 * GC share and profile: a row is one round, every column of it.
 */
async function relay(contender, window, light, round) {
  const label = `${labelOf(contender, window)}-r${round}`
  const server = await startServer(contender.server, label, contender.options)
  let result
  try {
    const connect = contender.connect ?? ((...args) => wsPeer(contender.protocol, ...args))
    result = await runRelay({ servers: [server], connect, window, light })
  } finally {
    await server.stop()
  }
  const frame = JSON.stringify(PROTOCOLS[contender.protocol].message('a0', 'room0', 'b0', stamp())).length
  // The profile is written as the server exits; its GC share is read within the saturated window.
  const profiled = PROFILE ? { profile: label, profileGc: gcShare(readProfile(label), result.clocks[0]) } : {}
  return { name: contender.name, window, frame, ...result, ...profiled }
}

const median = (values) => {
  const sorted = [...values].sort((x, y) => x - y)
  const middle = sorted.length >> 1
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/**
 * `a / b` of one measure, each round's `a` over the same round's `b` (they ran minutes apart at
 * most, so a machine that speeds up or slows down over the run moves both): the median over the
 * rounds, their range after it, and the bar (at least or at most) if there is one, judged on the
 * median. * if a client process capped a msg/s in most rounds.
 */
function versus(pairs, measure, bar, atLeast) {
  if (!pairs.length) return '–'
  const ratios = pairs.map(([a, b]) => measure(a) / measure(b))
  const ratio = median(ratios)
  const cappedRounds = pairs.filter(([a, b]) => a.clientCpu > 0.95 || b.clientCpu > 0.95).length
  const capped = atLeast && 2 * cappedRounds > pairs.length ? '*' : ''
  const range = ratios.length > 1 ? ` [${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}]` : ''
  if (bar === undefined) return `${ratio.toFixed(2)}×${capped}${range}`
  const met = atLeast ? ratio >= bar : ratio <= bar
  return `${ratio.toFixed(2)}×${capped}${range} (${atLeast ? '≥' : '≤'} ${bar}: ${met ? 'met' : 'NOT met'})`
}

/** Per round, the results of `name` and `other` at `window` (rounds where both ran). */
const pairsOf = (rounds, name, other, window) =>
  rounds
    .map((round) => [
      round.find((r) => r?.name === name && r.window === window),
      round.find((r) => r?.name === other && r.window === window),
    ])
    .filter(([a, b]) => a && b)

function printRatios(rounds) {
  const rows = [['', ...WINDOWS.flatMap((window) => [`msg/s at ${window}`, `µs CPU/msg at ${window}`, `GC pauses at ${window}`])]]
  for (const [name, other] of [
    ['politely WebSocket', 'PeerJS server'],
    ['politely SSE + POST', 'PeerJS server'],
    ['politely WebSocket', 'y-webrtc server'],
    ['politely SSE + POST', 'y-webrtc server'],
  ]) {
    const bars = other === 'PeerJS server' ? (RELAY_BARS[name] ?? {}) : {}
    rows.push([
      `${name} / ${other.replace(' server', '')}`,
      ...WINDOWS.flatMap((window) => {
        const pairs = pairsOf(rounds, name, other, window)
        return [
          versus(pairs, (r) => r.rate, bars.rate?.[window], true),
          versus(pairs, (r) => r.serverUs, bars.cpu, false),
          versus(pairs, (r) => r.gcShare, bars.gc, false),
        ]
      }),
    ])
  }
  printTable(rows)
  console.log(`   Each ratio: the median over the rounds of one round's politely over the same round's other [lowest–highest].
   (msg/s: higher is better; µs CPU/msg and GC pauses (their share of server CPU): lower is better; * a client process near 100% CPU capped that ratio's msg/s)
   The floor row is a relay that forwards frames unread (bench/server-runner.mjs): no Node WebSocket server does less per message.`)
}

async function compare() {
  console.log(`2. Relay: A sends a ${SDP_CHARS}-character SDP (offer) to B of its room/topic; ${PAIRS} pairs, one ws or node:http client per peer, all in this process
   (SSE peers post as SseSignaler does: one POST at a time, each with everything queued meanwhile).
   saturated: ${WINDOWS.join(' and ')} in flight per pair (B's delivery lets A send the next), ${WARMUP} s warm-up, ${SECONDS} s measured;
   light (with the first window only): ${LIGHT_RATE} msg/s over all pairs, ${LIGHT_SECONDS} s. Latency = B's receive time - A's send time.
   politely runs with ratePerSecond, rateBurst, maxConnectionsPerAddress and newRoomsPerMinute at ${UNLIMITED.ratePerSecond} (the defaults, 50/s
   and a burst of 200 per peer, 100 connections and 60 new rooms a minute per address, would refuse this one-address load);
   the others have no such limits. Each server and window in its own process.${process.env.POLITELY_OPTIONS ? `\n   politely options: ${JSON.stringify(UNLIMITED)}` : ''}
`)
  const runs = CONTENDERS.flatMap((contender) => WINDOWS.map((window, w) => ({ contender, window, light: w === 0 })))
  const results = runs.map(() => undefined)
  const rounds = []
  for (let round = 0; round < ROUNDS; round++) {
    rounds.push(runs.map(() => undefined))
    // Rotated order, so no contender always runs right after the same one.
    for (let k = 0; k < runs.length; k++) {
      const index = (k + round * WINDOWS.length) % runs.length
      const { contender, window, light } = runs[index]
      const result = await relay(contender, window, light, round)
      rounds[round][index] = result
      if (!results[index] || result.rate > results[index].rate) results[index] = result
    }
  }
  const rows = [
    'server|window|A sends|msg/s|p50 ms|p99 ms|light p50|light p99|server CPU|µs CPU/msg|GC pauses|client CPU|other CPU|peak RSS|lost|out of order|errors'.split(
      '|',
    ),
    ...results.map((r) => [
      r.name,
      String(r.window),
      `${r.frame} B`,
      `${Math.round(r.rate)}${r.clientCpu > 0.95 ? '*' : ''}`,
      ms(r.p50),
      ms(r.p99),
      r.light ? ms(r.light.p50) : '',
      r.light ? ms(r.light.p99) : '',
      percent(r.serverCpu),
      r.serverUs.toFixed(1),
      `${(100 * r.gcShare).toFixed(1)}%`,
      percent(r.clientCpu),
      percent(r.otherCpu),
      mb(r.peakRss),
      String(r.lost),
      String(r.disordered),
      String(r.errors),
    ]),
  ]
  printTable(rows)
  console.log()
  printRatios(rounds)
  // Every round's every row, for a look past the medians.
  const roundsFile = join(os.tmpdir(), `politely-bench-rounds-${process.pid}.json`)
  writeFileSync(roundsFile, JSON.stringify(rounds.map((round) => round.map(({ samples, clocks, ...row }) => row))))
  console.log(`   every round's rows: ${roundsFile}`)
  console.log(`
   Best of ${ROUNDS} round(s) per row. CPU columns are % of one core over the measured window: a server near 100% is
   the bottleneck; a client near 100% (msg/s marked *), or other CPU well above 0 (${os.cpus().length} cores here), limited that row.
   Saturated latency is queueing: about ${PAIRS} pairs × window in flight / msg/s. "A sends" is the size of A's frame (same SDP in each).
   µs CPU/msg (server CPU time / messages relayed) is the number least moved by a busy machine.
   GC pauses: the time the server's main thread spent in garbage collection, as V8 reports each pause
   (a PerformanceObserver in bench/server-runner.mjs), over its CPU time in the measured window.
`)
  return { results, rounds }
}

// ---- profiles -------------------------------------------------------------------------------

const readProfile = (label) => JSON.parse(readFileSync(join(profileDir, `${label}.cpuprofile`), 'utf8'))

/**
 * Share of the busy (not idle) samples that V8 spent collecting garbage, among those taken within
 * `[from, to]` (µs, the server's clock): the saturated window that msg/s and CPU/msg measure, not
 * the server's start, its warm-up or the light load after it.
 */
function gcShare(profile, [from, to]) {
  const names = new Map(profile.nodes.map(({ id, callFrame }) => [id, callFrame.functionName]))
  let busy = 0
  let gc = 0
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]
    if (at < from || at > to) continue
    const name = names.get(profile.samples[i])
    if (name === '(idle)') continue
    busy++
    if (name === '(garbage collector)') gc++
  }
  return gc / Math.max(1, busy)
}

function printGcShares(results, rounds) {
  const share = (contender, window) => results.find((r) => r.name === contender.name && r.window === window)?.profileGc
  printTable([
    ["GC share of busy CPU (saturated window, the row's round)", ...WINDOWS.map((window) => `window ${window}`)],
    ...CONTENDERS.map((contender) => [
      contender.name,
      ...WINDOWS.map((window) => `${(100 * (share(contender, window) ?? Number.NaN)).toFixed(1)}%`),
    ]),
  ])
  const [ws, peerjs] = [ALL[0], ALL[2]]
  if (CONTENDERS.includes(ws) && CONTENDERS.includes(peerjs))
    for (const window of WINDOWS) {
      const pairs = pairsOf(rounds, ws.name, peerjs.name, window)
      const each = pairs.map(([a, b]) => `${(100 * a.profileGc).toFixed(1)} vs ${(100 * b.profileGc).toFixed(1)}`).join(', ')
      console.log(
        `   window ${window}, politely WebSocket / PeerJS by round: ${each} % → ${versus(pairs, (r) => r.profileGc, 1, false)}`,
      )
    }
  console.log()
}

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
  const profile = readProfile(label)
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

// Part 1 takes well under a minute per server; each relay run its seconds plus start, connects and stop.
limitTime((HELD.length * 120 + ROUNDS * CONTENDERS.length * WINDOWS.length * (WARMUP + SECONDS + LIGHT_SECONDS + 15)) * 1000)
// This process holds part 2's clients only (part 1's are in client processes): per peer a socket,
// or for SSE a stream and one keep-alive socket for its POSTs.
const needed = CONTENDERS.length ? PAIRS * 2 * 2 + 200 : 0
if (needed > fileLimits().soft) {
  console.error(`bench: needs ~${needed} file descriptors, the limit is ${fileLimits().soft}: lower PAIRS or WINDOWS`)
  process.exit(2)
}
console.log(
  `politely server benchmark — Node ${process.version}, ${os.cpus().length} CPUs, ${mb(os.totalmem())}, load average ${os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(' ')}, 127.0.0.1 only\n`,
)
if (HELD_COUNTS.length) await holdConnections()
const { results, rounds } = CONTENDERS.length ? await compare() : { results: [], rounds: [] }
if (PROFILE) {
  console.log(`3. CPU profiles (${profileDir})`)
  printGcShares(results, rounds)
  // Top functions at the largest window, where the relay's own work weighs most.
  for (const r of results) if (r.window === Math.max(...WINDOWS)) hotSpots(r.profile)
  // Measured here: `perf record` puts writev (with the kernel's loopback TCP) at ~20% of the politely server's CPU
  // where --cpu-prof shows ~50%; the ranking of politely's own functions agrees.
  console.log('   (--cpu-prof over-weights writev on this machine; `perf record` saw about half as much)')
}
console.log(
  `   load average at the end: ${os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(' ')}`,
)
process.exit(0)
