// Relay over Redis: politely's WebSocket transport with 1, 2 and 4 server processes on
// one redis-server, next to the in-memory hub (1 process, no Redis), in the same run and
// with the same workload as bench/server.mjs (peer A sends a 1000-character SDP to peer B
// of its room). With N > 1 processes A and B of a pair are on different processes, so
// every message goes through Redis from one process to another. The redis-server is
// this script's own (a free port on 127.0.0.1, no persistence), stopped at the end;
// nothing leaves the machine, and every child is killed on the way out.
//
//   npm run bench:redis                          (builds first)
//   PROCESSES=1,2,4 PAIRS=100 WINDOW=4 SECONDS=5 WARMUP=1 LIGHT_RATE=1000 ROUNDS=2 node bench/redis.mjs
import { spawn } from 'node:child_process'
import net from 'node:net'
import os from 'node:os'
import { Redis } from 'ioredis'
import {
  HOST,
  LIGHT_RATE,
  LIGHT_SECONDS,
  limitTime,
  ms,
  own,
  PAIRS,
  percent,
  printTable,
  ROUNDS,
  runRelay,
  SDP_CHARS,
  SECONDS,
  startServer,
  UNLIMITED,
  WARMUP,
  WINDOW,
  within,
  wsPeer,
} from './relay.mjs'

const PROCESSES = (process.env.PROCESSES ?? '1,2,4').split(',').map(Number)
const CORES = os.cpus().length
const ROWS = [
  { name: 'memory hub', processes: 1 },
  ...PROCESSES.map((processes) => ({ name: 'Redis hub', processes, redis: true })),
]
limitTime((60 + ROUNDS * ROWS.length * (WARMUP + SECONDS + LIGHT_SECONDS + 20)) * 1000)

// ---- redis-server ---------------------------------------------------------------------------

/** A free TCP port on 127.0.0.1 (redis-server --port 0 would not listen on TCP at all). */
const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer().once('error', reject)
    server.listen(0, HOST, () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

/** A redis-server of our own on loopback, without persistence; a child, so it is killed with us. */
async function startRedis() {
  const port = await freePort()
  const child = own(
    spawn(
      'redis-server',
      // --dir: nothing should be written with saving off, but if anything were, not into the repo.
      ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', os.tmpdir()],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  )
  let log = ''
  const ready = new Promise((resolve, reject) => {
    child.once('error', reject) // e.g. no redis-server on the PATH
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${log.trim().split('\n').pop()}`)))
    child.stdout.setEncoding('utf8').on('data', function read(chunk) {
      log += chunk
      if (!log.includes('Ready to accept connections')) return
      child.stdout.off('data', read).resume() // still read (a full pipe would block Redis), no longer kept
      resolve()
    })
  })
  await within(ready, 10_000, 'redis-server start')
  let stopping = false
  // Without Redis every later number is meaningless: stop at once, with one clear line.
  child.once('exit', (code, signal) => {
    if (stopping) return
    console.error(`bench: redis-server exited (${signal ?? code}) during the run`)
    process.exit(1)
  })
  const client = new Redis({ host: HOST, port, maxRetriesPerRequest: 1 })
  client.on('error', () => {}) // a failure shows as a rejected command
  const version = /redis_version:(\S+)/.exec(await client.info('server'))?.[1]
  return {
    url: `redis://${HOST}:${port}`,
    port,
    pid: child.pid,
    version,
    flush: () => client.flushall(),
    /** redis-server's CPU time so far (getrusage of the whole process, as INFO reports it), in ms. */
    async cpuMs() {
      const info = await client.info('cpu')
      const seconds = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1])
      return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1000
    },
    async stop() {
      stopping = true
      client.disconnect()
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM') // with saving off, a SIGTERM'd redis-server just exits
      await within(exited, 5000, 'redis-server exit').catch(() => child.kill('SIGKILL'))
    },
  }
}

// ---- the rows -------------------------------------------------------------------------------

const connect = (...args) => wsPeer('politely', ...args)

async function run(row, redis) {
  // Each row starts from an empty Redis: no replay of the previous row's messages, no leftover bindings.
  if (row.redis) await redis.flush()
  const kind = row.redis ? 'politely-redis' : 'politely'
  const options = row.redis ? { ...UNLIMITED, redisUrl: redis.url } : UNLIMITED
  const servers = []
  try {
    for (let k = 0; k < row.processes; k++) servers.push(await startServer(kind, options))
    const n = servers.length
    return await runRelay({
      servers,
      connect,
      // A on process i, B on the next one: with n > 1 no pair shares a process.
      route: (index) => [servers[index % n], servers[(index + 1) % n]],
      backendCpuMs: row.redis ? redis.cpuMs : undefined,
    })
  } finally {
    await Promise.all(servers.map((server) => server.stop()))
  }
}

const redis = await startRedis()
try {
  const processes = Math.max(...ROWS.map((row) => row.processes))
  console.log(`politely relay over Redis — Node ${process.version}, redis-server ${redis.version} (pid ${redis.pid}, ${redis.url}, no persistence), 127.0.0.1 only
${CORES} CPU cores here: the ${processes}-process row's ${processes} servers + redis-server + this client process all share those ${CORES} cores.

A sends a ${SDP_CHARS}-character SDP (offer) to B of its room over politely's WebSocket transport; ${PAIRS} pairs, one ws client per peer, all in this process.
With N > 1 server processes, A of pair i is on process i % N and B on (i + 1) % N: every message crosses Redis between two processes.
saturated: ${WINDOW} in flight per pair (B's delivery lets A send the next), ${WARMUP} s warm-up, ${SECONDS} s measured;
light: ${LIGHT_RATE} msg/s over all pairs, ${LIGHT_SECONDS} s. Latency = B's receive time - A's send time.
politely runs with ratePerSecond ${UNLIMITED.ratePerSecond}, rateBurst ${UNLIMITED.rateBurst}; the Redis hub gets the server defaults.${process.env.POLITELY_OPTIONS ? `\npolitely options: ${JSON.stringify(UNLIMITED)}` : ''}
`)
  const results = ROWS.map(() => undefined)
  const lost = ROWS.map(() => 0)
  const disordered = ROWS.map(() => 0)
  const errors = ROWS.map(() => 0)
  for (let round = 0; round < ROUNDS; round++) {
    // Rotated order, so no row always runs right after the same one.
    for (let k = 0; k < ROWS.length; k++) {
      const index = (k + round) % ROWS.length
      const result = await run(ROWS[index], redis)
      lost[index] += result.lost
      disordered[index] += result.disordered
      errors[index] += result.errors
      if (!results[index] || result.rate > results[index].rate) results[index] = result
    }
  }

  const memory = results[0]
  const totalUs = (r) => r.serverUs + r.backendUs
  const times = (value) => `${value.toFixed(2)}×`
  printTable([
    'hub|processes|msg/s|p50 ms|p99 ms|light p50|light p99|server CPU|server µs/msg|Redis CPU|Redis µs/msg|client CPU|other CPU|lost|out of order|errors'.split(
      '|',
    ),
    ...results.map((r, index) => [
      ROWS[index].name,
      String(ROWS[index].processes),
      `${Math.round(r.rate)}${r.clientCpu > 0.95 ? '*' : ''}`,
      ms(r.p50),
      ms(r.p99),
      ms(r.light.p50),
      ms(r.light.p99),
      percent(r.serverCpu),
      r.serverUs.toFixed(1),
      ROWS[index].redis ? percent(r.backendCpu) : '-',
      ROWS[index].redis ? r.backendUs.toFixed(1) : '-',
      percent(r.clientCpu),
      percent(r.otherCpu),
      String(lost[index]),
      String(disordered[index]),
      String(errors[index]),
    ]),
  ])
  console.log('\n   vs the in-memory hub (saturated unless said; above 1× is more time or more CPU):')
  printTable([
    'row|msg/s|p50|p99|light p50|light p99|server µs/msg|server+Redis µs/msg'.split('|'),
    ...results
      .slice(1)
      .map((r, index) => [
        `${ROWS[index + 1].name}, ${ROWS[index + 1].processes} process${ROWS[index + 1].processes > 1 ? 'es' : ''}`,
        times(r.rate / memory.rate),
        times(r.p50 / memory.p50),
        times(r.p99 / memory.p99),
        times(r.light.p50 / memory.light.p50),
        times(r.light.p99 / memory.light.p99),
        times(r.serverUs / memory.serverUs),
        times(totalUs(r) / memory.serverUs),
      ]),
  ])
  const allLost = lost.reduce((sum, count) => sum + count, 0)
  console.log(`
   Messages lost: ${allLost === 0 ? '0 in every row and round' : `${allLost} — NOT 0`}.
   Best of ${ROUNDS} round(s) per row (by msg/s); lost, out of order and errors are summed over all rounds.
   CPU columns are % of one core over the measured window; server CPU and server µs/msg are summed over all server processes.
   Redis µs/msg is redis-server's CPU time (INFO cpu: used_cpu_user + used_cpu_sys) per message relayed.
   ${CORES} cores for everything: N server processes + redis-server + this client are N + 2 busy processes on ${CORES} cores, so msg/s
   here measures contention for cores, not scale-out (the ${processes}-process row shares ${CORES} cores among ${processes + 2}). µs/msg is the number least moved by that.
   Every process holding a peer of a room is subscribed to its Redis channel: A's process gets each message back too (and drops it).
`)
} finally {
  await redis.stop()
}
process.exit(0)
