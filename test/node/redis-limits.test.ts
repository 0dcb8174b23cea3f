// A client address's connection cap with several server processes on one real Redis: the
// processes count together (Hub.hold of the RedisHub), a dead process's counts lapse, and
// the hot path stays one Redis call per connect and one per disconnect.
import { connect as tcp } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import { type RunningSignalingServer, SERVER_DEFAULTS, type ServerOptions, startSignalingServer } from '../../src/server/index'
import { RedisHub } from '../../src/server/redis-hub'
import { startCli } from '../support/cli-server'
import { redisServer, startRedis } from '../support/redis'
import { describeRequiring } from '../support/requires'
import { readEvents } from '../support/sse-reader'
import { until } from '../support/until'

type Route = 'sse' | 'websocket'
const ROUTES: Route[] = ['sse', 'websocket']
/** How each route refuses: HTTP status, or the WebSocket's close code (4000 + status), and the code. */
const refusal = (route: Route, code = 'too-many-connections', status = code === 'unavailable' ? 503 : 429) =>
  `${route === 'sse' ? status : 4000 + status} ${code}`

let made = 0
/** Something no other test (or run) uses: a room, a key prefix. */
const unique = (what: string) => `${what}${Date.now().toString(36)}x${made++}`
/** A peer's secret: its id padded to 24 characters. */
const token = (peer: string) => peer.padEnd(24, '0')
/** Every test connects from 127.0.0.1: one client address. */
const ADDRESS = '127.0.0.1'

interface Attempt {
  admitted: boolean
  /** A refusal: `<status or close code> <code>`. */
  code?: string
  /** A refused subscription's message. */
  message?: string
  send(text: string): void
  received: string[]
  close(): void
}

/** Subscribes `peer` (a new room by default) over `route`; resolves admitted (welcome) or refused. */
async function open(route: Route, url: string, peer = 'p', room = unique('room')): Promise<Attempt> {
  const target = `${url}/${room}?peer=${peer}&token=${token(peer)}`
  if (route === 'sse') {
    const stream = await readEvents(target)
    if (stream.response.status === 200) {
      return {
        admitted: true,
        get received() {
          return stream.events.filter((e) => !e.event).map((e) => e.data as string)
        },
        send: () => {},
        close: stream.close,
      }
    }
    await until(() => stream.raw.text.endsWith('}'), 'the refusal body')
    const { error, message } = JSON.parse(stream.raw.text)
    stream.close()
    return { admitted: false, code: `${stream.response.status} ${error}`, message, received: [], send: () => {}, close: () => {} }
  }
  return new Promise((resolve) => {
    const ws = new WebSocket(target.replace(/^http/, 'ws'))
    const received: string[] = []
    const attempt = { received, send: (text: string) => ws.send(text), close: () => ws.close() }
    ws.on('error', () => {})
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data))
      if (frame.type === 'welcome') resolve({ ...attempt, admitted: true })
      if (frame.type === 'message') received.push(JSON.stringify(frame.message))
    })
    ws.on('close', (code, reason) => resolve({ ...attempt, admitted: false, code: `${code} ${reason}` }))
  })
}

describeRequiring(redisServer, 'connection caps across processes on one Redis', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>
  let client: Redis
  const servers: RunningSignalingServer[] = []
  const hubs = new Map<RunningSignalingServer, RedisHub>()
  const watchers: Redis[] = []

  /** A server process of its own (its own RedisHub) on the shared Redis, under `prefix`. */
  async function start(prefix: string, options: ServerOptions = {}) {
    const limits = { ...SERVER_DEFAULTS, releaseMs: 3000, ...options }
    const hub = new RedisHub({ ...limits, redis: redis.url, prefix })
    await hub.connect()
    const server = await startSignalingServer({ port: 0, newRoomsPerMinute: 1000, ...options, hub })
    servers.push(server)
    hubs.set(server, hub)
    return server
  }
  const startMany = (n: number, prefix: string, options: ServerOptions) =>
    Promise.all(Array.from({ length: n }, () => start(prefix, options)))

  /** Connections of 127.0.0.1 that Redis counts now, all processes together. */
  const counted = async (prefix: string) =>
    Object.values(await client.hgetall(`${prefix}:conn/${ADDRESS}`)).reduce((sum, n) => sum + Number(n), 0)

  /** Every command Redis runs from now on (MONITOR), as its arguments. */
  async function monitor() {
    // monitor() watches on a connection of its own: the one it is called on never connects.
    const base = new Redis(redis.url, { lazyConnect: true })
    const watcher = await base.monitor()
    watchers.push(base, watcher)
    const seen: string[][] = []
    watcher.on('monitor', (_time: string, args: string[]) => seen.push(args))
    /** Calls of our scripts (EVAL or EVALSHA) with `keys` keys, the first of them `key`. */
    const calls = (keys: number, key: string) =>
      seen.filter((args) => /^eval/i.test(args[0] ?? '') && args[2] === String(keys) && args[3] === key).length
    /** Waits until Redis has run every command sent before this call, from any connection (MONITOR is in run order). */
    const settled = async () => {
      const mark = unique('mark')
      await client.echo(mark)
      await until(() => seen.some((args) => args[1] === mark), 'the monitor caught up')
    }
    return { seen, calls, settled }
  }

  beforeAll(async () => {
    redis = await startRedis()
    client = new Redis(redis.url)
  })
  afterAll(async () => {
    for (const server of servers) await server.close()
    for (const watcher of watchers) watcher.disconnect()
    client?.disconnect()
    await redis?.stop()
  })

  test.each(ROUTES)(
    '%s: cap 3 on three processes: 3 admitted in all, the 4th refused on each; a close frees a slot on another',
    async (route) => {
      const prefix = unique('caps')
      const [one, two, three] = await startMany(3, prefix, { maxConnectionsPerAddress: 3 })
      if (!one || !two || !three) throw new Error('three servers')
      const held = [await open(route, one.url), await open(route, two.url), await open(route, three.url)]
      expect(held.map((attempt) => attempt.admitted)).toEqual([true, true, true])
      expect(await counted(prefix)).toBe(3)
      // Each process holds one connection of the address, well under its own count of 3.
      for (const server of [one, two, three]) expect((await open(route, server.url)).code).toBe(refusal(route))
      held[0]?.close()
      await until(async () => (await counted(prefix)) === 2, 'the closed connection counted out in Redis')
      const again = await open(route, two.url)
      expect(again.admitted).toBe(true)
      expect((await open(route, three.url)).code).toBe(refusal(route))
      for (const attempt of [...held, again]) attempt.close()
      await until(async () => (await counted(prefix)) === 0, 'every connection counted out')
    },
  )

  test('50 connects at once from one address, SSE and WebSocket, over three processes with cap 10: exactly 10 admitted', async () => {
    const prefix = unique('race')
    const three = await startMany(3, prefix, { maxConnectionsPerAddress: 10 })
    const routes = Array.from({ length: 50 }, (_, i): Route => (i % 2 ? 'websocket' : 'sse'))
    const attempts = await Promise.all(routes.map((route, i) => open(route, (three[i % 3] as RunningSignalingServer).url)))
    expect(attempts.filter((attempt) => attempt.admitted).length).toBe(10)
    for (const [i, attempt] of attempts.entries()) if (!attempt.admitted) expect(attempt.code).toBe(refusal(routes[i] as Route))
    expect(await counted(prefix)).toBe(10)
    for (const attempt of attempts) attempt.close()
    // Nothing leaked, refused or admitted: the address has its whole cap again.
    await until(async () => (await counted(prefix)) === 0, 'every connection counted out')
    const after = await Promise.all(
      routes.slice(0, 10).map((route, i) => open(route, (three[i % 3] as RunningSignalingServer).url)),
    )
    expect(after.every((attempt) => attempt.admitted)).toBe(true)
    for (const attempt of after) attempt.close()
  })

  test.each(ROUTES)('%s: a client that leaves while Redis counts it has its count given back', async (route) => {
    const prefix = unique('gone')
    const [server, other] = await startMany(2, prefix, { maxConnectionsPerAddress: 1 })
    if (!server || !other) throw new Error('two servers')
    // Told when the server asks its hub to count (a spy on the real hub; Redis is real, and frozen below).
    const hub = hubs.get(server) as RedisHub
    const hold = hub.hold.bind(hub)
    let asked = 0
    hub.hold = (key, limit) => {
      asked++
      return hold(key, limit)
    }
    const watch = await monitor()
    const room = unique('room')
    const { port } = new URL(server.url)
    const path = `/signal/${room}?peer=p&token=${token('p')}`
    redis.freeze()
    try {
      const socket = tcp(Number(port), '127.0.0.1')
      socket.on('error', () => {})
      socket.write(
        route === 'sse'
          ? `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`
          : `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      )
      // Redis answers nothing while frozen: the count is asked for and waits. The client goes.
      await until(() => asked === 1, 'the server asked Redis to count the connection')
      socket.destroy()
      // The server reads a request's socket, so it sees an SSE client go at once; an upgrade's
      // socket is nobody's to read until the handshake, which finds it gone when it answers.
      const connections = () => new Promise<number>((resolve) => server.server.getConnections((_e, n) => resolve(n)))
      if (route === 'sse') await until(async () => (await connections()) === 0, 'the server saw the client go')
    } finally {
      redis.thaw()
    }
    const key = `${prefix}:conn/${ADDRESS}`
    await until(() => watch.calls(2, key) === 1 && watch.calls(1, key) === 1, 'the count, then its count-out, in Redis')
    expect(await counted(prefix)).toBe(0)
    // Seen gone before Redis answered, an SSE client had nothing claimed for it.
    await watch.settled()
    if (route === 'sse') expect(watch.seen.some((args) => args.includes(`${prefix}:${room}:peer:p`))).toBe(false)
    const next = await open(route, other.url)
    expect(next.admitted).toBe(true)
    next.close()
  })

  test('one Redis call per connect and one per disconnect; none per message (POST or WebSocket frame)', async () => {
    const prefix = unique('hot')
    // A long release grace: no refresh runs during the test (they would be told apart anyway).
    const [server] = await startMany(1, prefix, { maxConnectionsPerAddress: 10, releaseMs: 60_000 })
    if (!server) throw new Error('a server')
    const key = `${prefix}:conn/${ADDRESS}`
    const watch = await monitor()
    const room = unique('room')
    const a = await open('sse', server.url, 'a', room)
    const b = await open('websocket', server.url, 'b', room)
    expect([a.admitted, b.admitted]).toEqual([true, true])
    await watch.settled()
    expect([watch.calls(2, key), watch.calls(1, key)]).toEqual([2, 0])
    for (let session = 1; session <= 20; session++) {
      const posted = await fetch(`${server.url}/${room}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token('a')}` },
        body: JSON.stringify({ kind: 'hello', from: 'a', to: 'b', session }),
      })
      expect(posted.status).toBe(202)
      b.send(JSON.stringify({ kind: 'hello', from: 'b', to: 'a', session }))
    }
    await until(() => a.received.length === 20 && b.received.length === 20, 'forty messages relayed')
    await watch.settled()
    expect([watch.calls(2, key), watch.calls(1, key)]).toEqual([2, 0])
    a.close()
    b.close()
    await until(() => watch.calls(1, key) === 2, 'two counts out')
    expect(watch.calls(2, key)).toBe(2)
    expect(await counted(prefix)).toBe(0)
  })
})

describeRequiring(redisServer, 'a server process killed while it holds connections', () => {
  test('its counts lapse within releaseMs (and count until then); then the address has its whole cap on the process that lives', async () => {
    const redis = await startRedis()
    const client = new Redis(redis.url)
    const releaseMs = 2000
    const cap = ['--max-connections-per-address', '3', '--release-ms', String(releaseMs), '--new-rooms-per-minute', '1000']
    const cli = await startCli(['--redis', redis.url, '--log-level', 'silent', ...cap])
    const hub = new RedisHub({ ...SERVER_DEFAULTS, releaseMs, redis: redis.url })
    await hub.connect()
    const other = await startSignalingServer({ port: 0, hub, maxConnectionsPerAddress: 3, releaseMs, newRoomsPerMinute: 1000 })
    const held: Attempt[] = []
    const key = `politely:conn/${ADDRESS}`
    const now = async () => {
      const [seconds, micros] = await client.time()
      return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
    }
    try {
      // One connection on the process that lives (it keeps the address's counts from expiring as a
      // whole: only the dead process's part may go), two on the one that will be killed.
      held.push(await open('sse', other.url), await open('websocket', cli.url), await open('sse', cli.url))
      expect(held.map((attempt) => attempt.admitted)).toEqual([true, true, true])
      expect((await open('sse', other.url)).code).toBe(refusal('sse'))
      const [dead] = Object.entries(await client.hgetall(key)).find(([, count]) => count === '2') ?? []
      if (!dead) throw new Error(`the killed process's count is not in Redis: ${JSON.stringify(await client.hgetall(key))}`)
      cli.child.kill('SIGKILL')
      await cli.exited
      const killed = await now()
      // Until when Redis takes it for alive: at most releaseMs after it last spoke.
      const lapses = Number(await client.zscore('politely:processes', dead))
      expect(lapses).toBeLessThanOrEqual(killed + releaseMs)
      // Redis cannot tell a crash from a pause: within the bound its connections still count.
      const early = await open('websocket', other.url)
      held.push(early)
      if ((await now()) < lapses) expect(early.code).toBe(refusal('websocket'))
      await until(async () => (await now()) > lapses, 'the killed process lapsed in Redis', releaseMs + 10_000)
      // (Had the machine been slow enough for `early` to come after the lapse, it holds one of the two.)
      const again: Attempt[] = []
      for (const route of ['sse', 'websocket'].slice(early.admitted ? 1 : 0) as Route[]) again.push(await open(route, other.url))
      held.push(...again)
      expect(again.every((attempt) => attempt.admitted)).toBe(true)
      expect((await open('websocket', other.url)).code).toBe(refusal('websocket'))
      // Its field is gone from the address's counts (dropped by the next count).
      expect(await client.hget(key, dead)).toBeNull()
    } finally {
      for (const attempt of held) attempt.close()
      await cli.stop()
      await other.close()
      client.disconnect()
      await redis.stop()
    }
  })
})

describeRequiring(redisServer, 'Redis unreachable while a client connects', () => {
  test('the subscription is refused with 503 unavailable (closed, as a publish is) and the hub error observed; admitted again once Redis is back', async () => {
    const redis = await startRedis()
    let outages = 0
    const hub = new RedisHub({
      ...SERVER_DEFAULTS,
      releaseMs: 3000,
      // No offline queue: while Redis is down a call fails at once instead of waiting for it.
      redis: { host: '127.0.0.1', port: redis.port, enableOfflineQueue: false },
      onError: () => outages++,
    })
    await hub.connect()
    const server = await startSignalingServer({ port: 0, hub, maxConnectionsPerAddress: 5 })
    const failed: string[] = []
    server.signaling.observe({ hubError: (operation) => failed.push(operation) })
    let again: Awaited<ReturnType<typeof startRedis>> | undefined
    try {
      await redis.stop()
      await until(() => outages > 0, 'the hub noticed')
      const sse = await open('sse', server.url)
      expect([sse.code, sse.message]).toEqual([refusal('sse', 'unavailable'), 'Could not count the connection; try again'])
      expect((await open('websocket', server.url)).code).toBe(refusal('websocket', 'unavailable'))
      expect(failed).toEqual(['admit', 'admit'])
      again = await startRedis(redis.port)
      await until(() => server.signaling.ready(), 'Redis back')
      const back = await Promise.all(ROUTES.map((route) => open(route, server.url)))
      expect(back.map((attempt) => attempt.admitted)).toEqual([true, true])
      for (const attempt of back) attempt.close()
    } finally {
      await server.close()
      await redis.stop()
      await again?.stop()
    }
  })
})

describeRequiring(redisServer, 'Redis restarted without persistence under held connections', () => {
  test('the processes put their counts back: the cap holds again, and a close counts out from there', async () => {
    const redis = await startRedis()
    const client = new Redis(redis.url)
    const servers: RunningSignalingServer[] = []
    let again: Awaited<ReturnType<typeof startRedis>> | undefined
    const counted = async () =>
      Object.values(await client.hgetall(`politely:conn/${ADDRESS}`)).reduce((sum, n) => sum + Number(n), 0)
    const held: Attempt[] = []
    try {
      for (let i = 0; i < 2; i++) {
        const hub = new RedisHub({ ...SERVER_DEFAULTS, releaseMs: 1500, redis: redis.url, onError: () => {} })
        await hub.connect()
        servers.push(await startSignalingServer({ port: 0, hub, maxConnectionsPerAddress: 3, releaseMs: 1500 }))
      }
      const [one, two] = servers as [RunningSignalingServer, RunningSignalingServer]
      held.push(await open('sse', one.url), await open('websocket', one.url), await open('websocket', two.url))
      expect(held.map((attempt) => attempt.admitted)).toEqual([true, true, true])
      await redis.stop()
      again = await startRedis(redis.port)
      // Everything Redis held is gone; each process's timer sets its counts again.
      await until(async () => (await counted()) === 3, 'the counts put back')
      for (const route of ROUTES) expect((await open(route, two.url)).code).toBe(refusal(route))
      held[0]?.close()
      await until(async () => (await counted()) === 2, 'the closed connection counted out')
      const next = await open('sse', two.url)
      held.push(next)
      expect(next.admitted).toBe(true)
    } finally {
      for (const attempt of held) attempt.close()
      for (const server of servers) await server.close()
      client.disconnect()
      await redis.stop()
      await again?.stop()
    }
  })
})
