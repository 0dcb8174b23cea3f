import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, test, vi } from 'vitest'
import type { RoomEvent } from '../../src/server/hub'
import { startSignalingServer } from '../../src/server/index'
import { RedisHub, type RedisHubOptions } from '../../src/server/redis-hub'
import { type ProxiedConnection, redisProxy, redisServer, startRedis } from '../support/redis'
import { describeRequiring } from '../support/requires'
import { ADAPTERS } from '../support/server'
import { readEvents as stream } from '../support/sse-reader'
import { makePeer, opened, roundTrip, uniqueRoom, wrtcStack } from '../support/stacks'
import { until } from '../support/until'

const token = (c: string) => c.repeat(24)

/** A signaling server on its own RedisHub (as a separate process would have), on a free port. */
async function startOnRedis(hubOptions: Partial<RedisHubOptions> & Pick<RedisHubOptions, 'redis'>, releaseMs = limits.releaseMs) {
  const hub = new RedisHub({ ...limits, releaseMs, ...hubOptions })
  await hub.connect()
  return startSignalingServer({ port: 0, hub, ...limits, releaseMs })
}
const limits = { maxPeersPerRoom: 16, maxRooms: 1000, replayMessages: 64, replayAgeMs: 60_000, releaseMs: 3000 }

/** A hello from `from` to `to` (to everyone for `''`). */
const publish = (url: string, room: string, from: string, session: number, to = 'b') =>
  fetch(`${url}/${room}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token(from)}` },
    body: JSON.stringify({ kind: 'hello', from, ...(to && { to }), session }),
  })

describeRequiring(redisServer, 'several server processes on one Redis', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>
  const servers: Array<Awaited<ReturnType<typeof startSignalingServer>>> = []
  const startOne = async () => {
    const server = await startOnRedis({ redis: redis.url })
    servers.push(server)
    return server
  }
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    for (const server of servers) await server.close()
    await redis?.stop()
  })

  test('subscribe through process 1, publish through process 2; resume on process 3 with exactly the missed messages', async () => {
    const [one, two, three] = [await startOne(), await startOne(), await startOne()]
    const room = uniqueRoom()
    const a = await stream(`${two.url}/${room}?peer=a&token=${token('a')}`)
    const b = await stream(`${one.url}/${room}?peer=b&token=${token('b')}`)
    await until(() => a.events.length === 1 && b.events.length === 1, 'welcomes')
    for (const n of [1, 2]) expect((await publish(two.url, room, 'a', n)).status).toBe(202)
    await until(() => b.events.length === 3, 'two messages through process 1')
    const last = b.events.at(-1)?.id as string
    b.close()
    for (const n of [3, 4]) await publish(two.url, room, 'a', n)
    const resumed = await stream(`${three.url}/${room}?peer=b&token=${token('b')}`, { 'last-event-id': last })
    await until(() => resumed.events.filter((e) => !e.event).length === 2, 'the missed messages')
    await publish(one.url, room, 'a', 5)
    await until(() => resumed.events.filter((e) => !e.event).length === 3, 'a live one')
    expect(resumed.events.filter((e) => !e.event).map((e) => JSON.parse(e.data as string).session)).toEqual([3, 4, 5])
    expect(resumed.events.some((e) => e.event === 'reset')).toBe(false)
    a.close()
    resumed.close()
  })

  /** Process two, on Redis through a proxy (which holds or drops its connections' bytes); `close()` ends both. */
  const proxiedProcess = async () => {
    const proxy = await redisProxy(redis.port)
    const two = await startOnRedis({ redis: proxy.url })
    const close = async () => {
      // Process two first: its Redis clients would go on reconnecting to the closed proxy.
      await two.close()
      proxy.close()
    }
    return { proxy, two, close }
  }

  test('an event still on its way to a process when a peer resumes there past it is not sent to it twice', async () => {
    // Process two's subscription to the room is slow: what a publish fans out reaches it late.
    const { proxy, two, close } = await proxiedProcess()
    try {
      const one = await startOne()
      const room = uniqueRoom()
      // A peer on process two: the room is subscribed there before b comes.
      const a = await stream(`${two.url}/${room}?peer=a&token=${token('a')}`)
      const b = await stream(`${one.url}/${room}?peer=b&token=${token('b')}`)
      await until(() => a.events.length === 1 && b.events.length === 1, 'welcomes')
      const subscribers = proxy.connections.filter((connection) => connection.subscriber)
      expect(subscribers).toHaveLength(1)
      for (const connection of subscribers) connection.holdReplies()
      expect((await publish(one.url, room, 'a', 1)).status).toBe(202)
      await until(() => b.events.length === 2, 'the message at b, through process one')
      const last = b.events.at(-1)?.id as string
      b.close()
      // b resumes on process two, past message 1; only then does message 1 reach process two.
      const resumed = await stream(`${two.url}/${room}?peer=b&token=${token('b')}`, { 'last-event-id': last })
      await until(() => resumed.events.length === 1, 'the welcome on process two')
      // Message 1 was held on its way to process two (or the test proves nothing).
      expect(subscribers.reduce((chunks, connection) => chunks + connection.release(), 0)).toBeGreaterThan(0)
      expect((await publish(one.url, room, 'a', 2)).status).toBe(202)
      await until(() => resumed.events.some((e) => !e.event && JSON.parse(e.data as string).session === 2), 'message 2')
      expect(resumed.events.filter((e) => !e.event).map((e) => JSON.parse(e.data as string).session)).toEqual([2])
      // A resume, not a fresh start (which would drop message 1 for another reason).
      expect(resumed.events.some((e) => e.event === 'reset')).toBe(false)
      a.close()
      resumed.close()
    } finally {
      await close()
    }
  })

  test("events a process's room subscription lost during an outage of its Redis connection: its peers there are reset", async () => {
    const { proxy, two, close } = await proxiedProcess()
    const client = new Redis(redis.url)
    try {
      const one = await startOne()
      const room = uniqueRoom()
      const b = await stream(`${two.url}/${room}?peer=b&token=${token('b')}`)
      const a = await stream(`${one.url}/${room}?peer=a&token=${token('a')}`)
      await until(() => a.events.length === 1 && b.events.length === 1, 'welcomes')
      expect((await publish(one.url, room, 'a', 1)).status).toBe(202)
      await until(() => b.events.length === 2, 'message 1 at b')
      const subscriber = proxy.connections.find((connection) => connection.subscriber) as ProxiedConnection
      subscriber.holdReplies()
      for (const n of [2, 3, 4]) expect((await publish(one.url, room, 'a', n)).status).toBe(202)
      await until(() => subscriber.held > 0, 'their pub/sub messages held')
      // The buffer lets go of messages 1 and 2 (as its trims would, in whole nodes).
      const entries = await client.xrange(`politely:{${room}}:log`, '-', '+')
      await client.xtrim(`politely:{${room}}:log`, 'MINID', entries[2]?.[0] as string)
      subscriber.drop()
      await until(() => b.events.some((e) => !e.event && JSON.parse(e.data as string).session === 4), 'message 4 at b')
      const after = b.events.slice(2)
      expect(after[0]?.event).toBe('reset')
      expect(after.slice(1).map((e) => JSON.parse(e.data as string).session)).toEqual([3, 4])
      a.close()
      b.close()
    } finally {
      client.disconnect()
      await close()
    }
  })

  test('a resume position that is no stream id, or one past the newest event: reset, then live events come', async () => {
    const [one, two] = [await startOne(), await startOne()]
    const room = uniqueRoom()
    const a = await stream(`${one.url}/${room}?peer=a&token=${token('a')}`)
    const b = await stream(`${two.url}/${room}?peer=b&token=${token('b')}`)
    await until(() => a.events.length === 1 && b.events.length === 1, 'welcomes')
    b.close()
    for (const position of ['zz-top', '99999999999999-0']) {
      const resumed = await stream(`${two.url}/${room}?peer=b&token=${token('b')}`, { 'last-event-id': position })
      await until(() => resumed.events.length >= 1, 'the welcome')
      const session = position.length
      expect((await publish(one.url, room, 'a', session)).status).toBe(202)
      await until(
        () => resumed.events.some((e) => !e.event && JSON.parse(e.data as string).session === session),
        `a live message after ${position}`,
      )
      expect(resumed.events.some((e) => e.event === 'reset')).toBe(true)
      resumed.close()
    }
    a.close()
  })

  test('a connection with the same token on another process takes over: the older ends (`replaced`), the peer stays present', async () => {
    const [one, two] = [await startOne(), await startOne()]
    const room = uniqueRoom()
    const older = await stream(`${one.url}/${room}?peer=a&token=${token('a')}`)
    const b = await stream(`${one.url}/${room}?peer=b&token=${token('b')}`)
    await until(() => older.events.length === 1 && b.events.length === 1, 'welcomes')
    const newer = await stream(`${two.url}/${room}?peer=a&token=${token('a')}`)
    await until(() => older.events.some((e) => e.event === 'replaced'), 'the older connection ended')
    expect(newer.events.some((e) => e.event === 'replaced')).toBe(false)
    // b's message to a reaches the newer connection alone.
    expect((await publish(one.url, room, 'b', 7, 'a')).status).toBe(202)
    await until(() => newer.events.some((e) => !e.event && JSON.parse(e.data as string).session === 7), 'b’s message at a')
    expect(older.events.filter((e) => !e.event)).toEqual([])
    // a is still present: a newcomer on process one is handed its hello.
    expect((await publish(two.url, room, 'a', 8, '')).status).toBe(202)
    const c = await stream(`${one.url}/${room}?peer=c&token=${token('c')}`)
    await until(() => c.events.some((e) => !e.event && JSON.parse(e.data as string).session === 8), 'a’s hello at the newcomer')
    for (const s of [newer, b, c]) s.close()
  })

  /**
   * Process two (its pub/sub connection behind a proxy) holds peer a's older connection; a newer one
   * is made on process one while the message saying so is held on its way to process two.
   */
  const takeoverHeld = async () => {
    const { proxy, two, close } = await proxiedProcess()
    const one = await startOne()
    const room = uniqueRoom()
    const older = await stream(`${two.url}/${room}?peer=a&token=${token('a')}`)
    await until(() => older.events.length === 1, 'welcome')
    const subscriber = proxy.connections.find((connection) => connection.subscriber) as ProxiedConnection
    subscriber.holdReplies()
    const newer = await stream(`${one.url}/${room}?peer=a&token=${token('a')}`)
    await until(() => subscriber.held > 0, 'the takeover message held on its way to process two')
    return { one, two, room, older, newer, subscriber, close }
  }

  test('a peer back on its first process before the takeover message reached it: the newest connection stays, the others end', async () => {
    const { one, two, room, older, newer, subscriber, close } = await takeoverHeld()
    try {
      const third = await stream(`${two.url}/${room}?peer=a&token=${token('a')}`)
      await until(() => third.events.length === 1, 'the third connection’s welcome')
      subscriber.release()
      await until(() => newer.events.some((e) => e.event === 'replaced'), 'the second connection ended')
      await until(() => older.events.some((e) => e.event === 'replaced'), 'the first connection ended')
      // …and the third, the newest, goes on: a message to a reaches it.
      const b = await stream(`${one.url}/${room}?peer=b&token=${token('b')}`)
      expect((await publish(one.url, room, 'b', 9, 'a')).status).toBe(202)
      await until(() => third.events.some((e) => !e.event && JSON.parse(e.data as string).session === 9), 'b’s message at a')
      expect(third.events.some((e) => e.event === 'replaced')).toBe(false)
      for (const s of [third, b]) s.close()
    } finally {
      await close()
    }
  })

  for (const newerGone of [false, true])
    test(`the takeover message lost with a pub/sub connection${newerGone ? ', the newer connection gone since' : ''}: the older still ends, at the next refresh`, async () => {
      const { older, newer, subscriber, close } = await takeoverHeld()
      try {
        subscriber.drop()
        if (newerGone) newer.close()
        // releaseMs 3 s: process two refreshes its bindings every second.
        await until(() => older.events.some((e) => e.event === 'replaced'), 'the older connection ended')
        expect(newer.events.some((e) => e.event === 'replaced')).toBe(false)
        newer.close()
      } finally {
        await close()
      }
    })

  test('sender authentication holds across processes: a live id cannot be claimed on another process', async () => {
    const [one, two] = [await startOne(), await startOne()]
    const room = uniqueRoom()
    const a = await stream(`${one.url}/${room}?peer=a&token=${token('a')}`)
    await until(() => a.events.length === 1, 'welcome')
    const thief = await stream(`${two.url}/${room}?peer=a&token=${token('t')}`)
    expect(thief.response.status).toBe(409)
    // …and another process refuses a publish as `a` without a's secret.
    const spoofed = await fetch(`${two.url}/${room}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token('t')}` },
      body: JSON.stringify({ kind: 'hello', from: 'a', session: 1 }),
    })
    expect(spoofed.status).toBe(403)
    a.close()
  })

  test("a peer's rate limit holds across processes: its POSTs to two processes share one bucket", async () => {
    const rate = { ratePerSecond: 5, rateBurst: 5 }
    const start = async () => {
      const hub = new RedisHub({ ...limits, redis: redis.url })
      await hub.connect()
      const server = await startSignalingServer({ port: 0, hub, ...limits, ...rate })
      servers.push(server)
      return server
    }
    const [one, two] = [await start(), await start()]
    const room = uniqueRoom()
    const a = await stream(`${one.url}/${room}?peer=a&token=${token('a')}`)
    await until(() => a.events.length === 1, 'welcome')
    const started = Date.now()
    const statuses: number[] = []
    for (let n = 1; n <= 20; n++) statuses.push((await publish(n % 2 ? one.url : two.url, room, 'a', n)).status)
    const elapsed = Date.now() - started
    const accepted = statuses.filter((status) => status === 202).length
    // One bucket: the burst plus what refilled meanwhile. Two buckets (one per process) would take 10 at once.
    expect(accepted).toBeGreaterThanOrEqual(rate.rateBurst)
    expect(accepted).toBeLessThanOrEqual(rate.rateBurst + Math.ceil((elapsed / 1000) * rate.ratePerSecond))
    expect(statuses.filter((status) => status !== 202).every((status) => status === 429)).toBe(true)
    a.close()
  })

  test.each(ADAPTERS)('$name: peers on different processes connect over real WebRTC and exchange data', async (adapter) => {
    const [one, two] = [await startOne(), await startOne()]
    const stack = await wrtcStack()
    const room = uniqueRoom()
    const a = makePeer(stack, room, { signaler: adapter.make(one.url, room) })
    const b = makePeer(stack, room, { signaler: adapter.make(two.url, room) })
    try {
      await Promise.all([a.start(), b.start()])
      await Promise.all([opened(a), opened(b)])
      await roundTrip(a, b, 'across processes')
      await roundTrip(b, a, 'and back')
      expect([...a.errors, ...b.errors]).toEqual([])
    } finally {
      a.close()
      b.close()
    }
  })
})

describeRequiring(redisServer, 'Redis restarted under live peers', () => {
  test.each(ADAPTERS)(
    '$name: data keeps flowing, signaling recovers, a renegotiation goes through, nothing twice',
    async (adapter) => {
      const redis = await startRedis()
      const servers: Array<Awaited<ReturnType<typeof startSignalingServer>>> = []
      const stack = await wrtcStack()
      const room = uniqueRoom()
      let a: ReturnType<typeof makePeer> | undefined
      let b: ReturnType<typeof makePeer> | undefined
      let again: Awaited<ReturnType<typeof startRedis>> | undefined
      try {
        for (let i = 0; i < 2; i++) servers.push(await startOnRedis({ redis: redis.url, onError: () => {} }, 600))
        a = makePeer(stack, room, { signaler: adapter.make((servers[0] as { url: string }).url, room) })
        b = makePeer(stack, room, { signaler: adapter.make((servers[1] as { url: string }).url, room) })
        // Nothing twice: no description arrives more often than it was sent. (The peers do send
        // some twice on purpose: the polite side answers the offer that came with a hello, and
        // again when the same offer arrives as a description.)
        const count = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1)
        const sent = new Map<string, number>()
        const received = new Map<string, number>()
        for (const p of [a, b])
          p.on('signal', ({ direction, message }) => {
            if (message.kind !== 'description') return
            count(direction === 'in' ? received : sent, `${message.from}:${message.description.sdp}`)
          })
        await Promise.all([a.start(), b.start()])
        await Promise.all([opened(a), opened(b)])
        await redis.stop()
        await roundTrip(a, b, 'redis is down')
        await new Promise((resolve) => setTimeout(resolve, 300))
        again = await startRedis(redis.port)
        await roundTrip(b, a, 'redis is back')
        const [pa, pb] = [a, b]
        pa.connection?.addTransceiver('audio')
        await until(
          () => [pa, pb].every((p) => p.connection?.signalingState === 'stable' && p.connection.getTransceivers().length === 1),
          'renegotiation after the Redis restart',
        )
        await roundTrip(a, b, 'renegotiated')
        expect(received.size).toBeGreaterThan(0)
        for (const [key, times] of received) expect(times, key.slice(0, 40)).toBeLessThanOrEqual(sent.get(key) ?? 0)
        expect([...a.errors, ...b.errors]).toEqual([])
      } finally {
        a?.close()
        b?.close()
        for (const server of servers) await server.close()
        await redis.stop()
        await again?.stop()
      }
    },
  )
})

describeRequiring(redisServer, 'a peer id whose binding Redis lost', () => {
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined
  const servers: Array<Awaited<ReturnType<typeof startSignalingServer>>> = []
  afterAll(async () => {
    for (const server of servers) await server.close()
    await redis?.stop()
  })
  /** A process whose own refresh is 20 s away: what happens sooner is not its timer's doing. */
  const startSlow = async (url: string) => {
    const hub = new RedisHub({ ...limits, releaseMs: 60_000, redis: url, onError: () => {} })
    await hub.connect()
    const server = await startSignalingServer({ port: 0, hub, ...limits, releaseMs: 60_000 })
    servers.push(server)
    return { hub, url: server.url }
  }

  test('Redis restarted empty: a live peer’s binding is back as soon as its process reconnects, before another token can claim the id', async () => {
    redis = await startRedis()
    const [one, two] = [await startSlow(redis.url), await startSlow(redis.url)]
    const room = uniqueRoom()
    const a = await stream(`${one.url}/${room}?peer=a&token=${token('a')}`)
    await until(() => a.events.length === 1, 'welcome')
    await redis.stop()
    redis = await startRedis(redis.port)
    await until(() => one.hub.ready(), 'process one back on Redis')
    const thief = await stream(`${two.url}/${room}?peer=a&token=${token('t')}`)
    expect(thief.response.status).toBe(409)
    expect(a.events.some((e) => e.event === 'replaced')).toBe(false)
    a.close()
  })

  test('…and a token that claimed the id in between holds it alone: the first holder’s connection ends, its POSTs are refused', async () => {
    redis ??= await startRedis()
    const [one, two] = [await startSlow(redis.url), await startSlow(redis.url)]
    const room = uniqueRoom()
    const a = await stream(`${one.url}/${room}?peer=a&token=${token('a')}`)
    const b = await stream(`${two.url}/${room}?peer=b&token=${token('b')}`)
    await until(() => a.events.length === 1 && b.events.length === 1, 'welcomes')
    const client = new Redis(redis.url)
    try {
      // Redis loses every binding; before process one puts a's back, another token claims it.
      await client.flushall()
      const thief = await stream(`${two.url}/${room}?peer=a&token=${token('t')}`)
      expect(thief.response.status).toBe(200)
      // Process one's connection to Redis drops and comes back: it puts its bindings back, and finds a's taken.
      await client.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
      await until(() => a.events.some((e) => e.event === 'replaced'), 'the first holder’s connection ended')
      expect((await publish(one.url, room, 'a', 1)).status).toBe(403)
      const asThief = await fetch(`${one.url}/${room}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token('t')}` },
        body: JSON.stringify({ kind: 'hello', from: 'a', to: 'b', session: 2 }),
      })
      expect(asThief.status).toBe(202)
      await until(() => b.events.some((e) => !e.event && JSON.parse(e.data as string).session === 2), 'the holder’s message at b')
      expect(b.events.filter((e) => !e.event).map((e) => JSON.parse(e.data as string).session)).toEqual([2])
      thief.close()
    } finally {
      client.disconnect()
      a.close()
      b.close()
    }
  })
})

describeRequiring(redisServer, 'a publish that failed during a Redis outage', () => {
  test.each(ADAPTERS)('$name: is sent again when Redis is back, once, with no rebuild', async (adapter) => {
    const redis = await startRedis()
    const servers: Array<Awaited<ReturnType<typeof startSignalingServer>>> = []
    const stack = await wrtcStack()
    const room = uniqueRoom()
    let a: ReturnType<typeof makePeer> | undefined
    let b: ReturnType<typeof makePeer> | undefined
    let again: Awaited<ReturnType<typeof startRedis>> | undefined
    try {
      let outages = 0
      // No offline queue: while Redis is down a publish fails at once instead of waiting for it.
      const redisOptions = { host: '127.0.0.1', port: redis.port, enableOfflineQueue: false }
      for (let i = 0; i < 2; i++) servers.push(await startOnRedis({ redis: redisOptions, onError: () => outages++ }, 600))
      // A watchdog slower than the outage: the renegotiation must get through by the resend alone.
      const slow = { stallTimeout: 60_000 }
      a = makePeer(stack, room, { ...slow, signaler: adapter.make((servers[0] as { url: string }).url, room) })
      b = makePeer(stack, room, { ...slow, signaler: adapter.make((servers[1] as { url: string }).url, room) })
      // The renegotiation's offers: those with the audio section. (A copy of the first offer may
      // still land after both opened — the offerer repeats an offer not answered within 0.5 s, and
      // under load the answer can cross that repeat — and is answered again, harmlessly.)
      const offers: string[] = []
      b.on('signal', ({ direction, message }) => {
        if (direction === 'in' && message.kind === 'description' && message.description.type === 'offer')
          if (message.description.sdp.includes('m=audio')) offers.push(message.description.sdp)
      })
      await Promise.all([a.start(), b.start()])
      await Promise.all([opened(a), opened(b)])
      const [pa, pb] = [a, b]
      const connections = [pa.connection, pb.connection]
      await redis.stop()
      await until(() => outages === 2, 'both hubs noticed the outage')
      // The renegotiation's offer is published while Redis is down: the hub refuses it.
      pa.connection?.addTransceiver('audio')
      await new Promise((resolve) => setTimeout(resolve, 1000))
      expect(offers).toEqual([])
      again = await startRedis(redis.port)
      await until(
        () => [pa, pb].every((p) => p.connection?.signalingState === 'stable' && p.connection.getTransceivers().length === 1),
        'the renegotiation, once Redis is back',
      )
      expect([pa.connection, pb.connection]).toEqual(connections)
      // One offer, though it may arrive more than once: the offerer repeats an unanswered offer
      // (the same SDP, which the answerer takes once).
      expect(new Set(offers).size).toBe(1)
      await roundTrip(a, b, 'renegotiated')
      expect([...a.errors, ...b.errors]).toEqual([])
    } finally {
      a?.close()
      b?.close()
      for (const server of servers) await server.close()
      await redis.stop()
      await again?.stop()
    }
  })
})

describeRequiring(redisServer, 'RedisHub: every event once, in order, whatever the links between it and Redis do', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>
  const hubs: RedisHub[] = []
  const proxies: Array<Awaited<ReturnType<typeof redisProxy>>> = []
  /** A hub of its own process: straight to Redis, or through a proxy the test can slow down. */
  const hubOn = async (url: string, options: Partial<RedisHubOptions> = {}) => {
    const hub = new RedisHub({ ...limits, redis: url, ...options })
    await hub.connect()
    hubs.push(hub)
    return hub
  }
  /** A hub through a proxy; with `commandTimeout`, a command unanswered that long fails (ioredis). */
  const proxied = async (options: Partial<RedisHubOptions> = {}, commandTimeout?: number) => {
    const proxy = await redisProxy(redis.port)
    proxies.push(proxy)
    const { port } = new URL(proxy.url)
    const at = commandTimeout ? { redis: { host: '127.0.0.1', port: Number(port), commandTimeout } } : {}
    return { proxy, hub: await hubOn(proxy.url, { ...options, ...at }) }
  }
  const data = (events: RoomEvent[]) => events.map((event) => event.data)
  // Time for a hub to act on what it was sent, where the fixed hub does nothing and the test
  // must wait to see that (so that it fails on the hub it was written against); never asserted.
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300))
  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    for (const hub of hubs) await hub.close()
    for (const proxy of proxies) proxy.close()
    await redis?.stop()
  })

  test('a resume position with more events after it than replayMessages: all of them, up to the newest', async () => {
    // The stream is trimmed approximately (whole nodes of ~100 entries): it holds more than replayMessages.
    const hub = await hubOn(redis.url, { replayMessages: 4 })
    const room = uniqueRoom()
    const position = (await hub.publish(room, { from: 'a', data: '0' })).id
    for (let n = 1; n <= 10; n++) await hub.publish(room, { from: 'a', data: String(n) })
    const missed = await hub.since(room, position)
    expect(missed === 'gap' ? 'gap' : data(missed)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'])
  })

  test('a resume position aged out of the stream while the event after it is still there: resumes from that event', async () => {
    const hub = await hubOn(redis.url)
    const room = uniqueRoom()
    const ids: string[] = []
    for (const n of [0, 1, 2]) ids.push((await hub.publish(room, { from: 'a', data: String(n) })).id)
    const [position, next, third] = ids as [string, string, string]
    // The hub's own trims remove whole nodes of ~100 entries; this one ends exactly at the position.
    const client = new Redis(redis.url)
    try {
      const stream = `politely:{${room}}:log`
      await client.xtrim(stream, 'MINID', next)
      expect(await hub.since(room, position)).toEqual([
        expect.objectContaining({ id: next, data: '1' }),
        expect.objectContaining({ id: third, data: '2' }),
      ])
      // …and the event after it trimmed too: what followed the position is not all there.
      await client.xtrim(stream, 'MINID', third)
      expect(await hub.since(room, position)).toBe('gap')
    } finally {
      client.disconnect()
    }
  })

  test("a process whose clock is ahead by more than replayAgeMs keeps the room's events (ages are Redis's)", async () => {
    const hub = await hubOn(redis.url, { replayAgeMs: 1000 })
    const room = uniqueRoom()
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.now() + 60_000)
      for (const n of [0, 1]) await hub.publish(room, { from: 'a', data: String(n) })
    } finally {
      vi.useRealTimers()
    }
    expect(data((await hub.since(room, undefined)) as RoomEvent[])).toEqual(['0', '1'])
  })

  test('a process whose clock is behind by more than releaseMs: its peers are present on every process, and hold their seats', async () => {
    const [one, two] = [await hubOn(redis.url), await hubOn(redis.url)]
    const room = uniqueRoom()
    vi.useFakeTimers({ toFake: ['Date'] })
    try {
      vi.setSystemTime(Date.now() - 60_000)
      expect(await one.claim(room, 'a', token('a'), 2)).toBe('created')
    } finally {
      vi.useRealTimers()
    }
    expect(await two.present(room)).toEqual(['a'])
    expect(await two.claim(room, 'b', token('b'), 1)).toBe('room-full')
  })

  test("a room whose name goes on with ':' shares no key with another room's peers (room `r:peer`, peer `live` of room `r`)", async () => {
    const hub = await hubOn(redis.url)
    const room = uniqueRoom()
    const other = `${room}:peer`
    expect(await hub.claim(other, 'x', token('x'), 16)).toBe('created')
    await hub.publish(other, { from: 'x', data: 'theirs' })
    expect(await hub.claim(room, 'live', token('l'), 16)).toBe('created')
    expect(await hub.claim(room, 'log', token('g'), 16)).toBe('claimed')
    await hub.publish(room, { from: 'live', data: 'ours' })
    expect(data((await hub.since(other, undefined)) as RoomEvent[])).toEqual(['theirs'])
    expect(data((await hub.since(room, undefined)) as RoomEvent[])).toEqual(['ours'])
    expect((await hub.present(room)).sort()).toEqual(['live', 'log'])
    expect(await hub.present(other)).toEqual(['x'])
  })

  test("a room's first subscription on a process: an event published while its SUBSCRIBE is on its way is in the replay or live", async () => {
    const one = await hubOn(redis.url)
    const { proxy, hub: two } = await proxied()
    const room = uniqueRoom()
    proxy.holdCommand(/\r\nsubscribe\r\n/i)
    const live: RoomEvent[] = []
    const unsubscribe = two.subscribe(room, (event) => live.push(event))
    await until(() => proxy.connections.some((connection) => connection.subscriber), 'the SUBSCRIBE held')
    proxy.holdCommand()
    // As the relay does: the replay read right after subscribing. A hub that reads the stream now
    // reads it before the event below, which its late subscription then misses too.
    let replay: RoomEvent[] | 'gap' | undefined
    const replayed = two.since(room, undefined).then((events) => {
      replay = events
    })
    await Promise.race([replayed, settle()])
    expect(replay).toBeUndefined()
    expect(proxy.connections.some((connection) => /\r\nxrange\r\n/i.test(connection.sent))).toBe(false)
    await one.publish(room, { from: 'a', data: 'while subscribing' })
    for (const connection of proxy.connections) connection.release()
    await replayed
    await one.publish(room, { from: 'a', data: 'after' })
    await until(() => data(live).includes('after'), 'a live event')
    expect(replay).not.toBe('gap')
    expect([...data(replay as RoomEvent[]), ...data(live)].filter((text) => text === 'while subscribing')).toHaveLength(1)
    unsubscribe()
  })

  /**
   * `two`'s subscriber connection drops while an event is published ('during': in the stream, its
   * pub/sub message lost); its catch-up read of the stream is held on its way back for `readHeldMs`
   * after a live event ('after') overtook it. What `two`'s listener got, in order.
   */
  const dropWhilePublishing = async (two: RedisHub, proxy: Awaited<ReturnType<typeof redisProxy>>, readHeldMs: number) => {
    const one = await hubOn(redis.url)
    const room = uniqueRoom()
    const live: RoomEvent[] = []
    const unsubscribe = two.subscribe(
      room,
      (event) => live.push(event),
      () => live.push({ id: '', from: '', data: '(lost)' }),
    )
    await two.since(room, undefined)
    await one.publish(room, { from: 'a', data: 'before' })
    await until(() => data(live).includes('before'), 'a live event')
    const subscriber = proxy.connections.find((connection) => connection.subscriber) as ProxiedConnection
    const commands = proxy.connections.find((connection) => !connection.subscriber) as ProxiedConnection
    subscriber.holdReplies()
    await one.publish(room, { from: 'a', data: 'during' })
    await until(() => subscriber.held > 0, 'its pub/sub message held')
    commands.holdReplies()
    const sentBefore = commands.sent.length
    subscriber.drop()
    await until(() => /\r\nxrange\r\n/i.test(commands.sent.slice(sentBefore)), 'the catch-up read of the stream')
    await one.publish(room, { from: 'a', data: 'after' })
    const again = () => proxy.connections.filter((connection) => connection.subscriber).at(-1)
    await until(() => again() !== subscriber && !!again()?.received.includes('after'), 'the live event, at the hub')
    await new Promise((resolve) => setTimeout(resolve, readHeldMs))
    commands.release()
    await until(() => data(live).includes('after'), 'the live event, at the listener')
    unsubscribe()
    return data(live)
  }

  test('the subscriber connection dropped: what was published meanwhile comes before what comes live, none lost', async () => {
    const { proxy, hub } = await proxied()
    // Time for the hub to take the live event (the old hub handed it over then, and dropped 'during').
    expect(await dropWhilePublishing(hub, proxy, 300)).toEqual(['before', 'during', 'after'])
  })

  test('…and some of what was published meanwhile was trimmed away: the listener is told, then gets what is there', async () => {
    const one = await hubOn(redis.url)
    const { proxy, hub: two } = await proxied()
    const room = uniqueRoom()
    const live: string[] = []
    const unsubscribe = two.subscribe(
      room,
      (event) => live.push(event.data),
      () => live.push('(lost)'),
    )
    await two.since(room, undefined)
    await one.publish(room, { from: 'a', data: 'before' })
    await until(() => live.includes('before'), 'a live event')
    const subscriber = proxy.connections.find((connection) => connection.subscriber) as ProxiedConnection
    subscriber.holdReplies()
    const ids: string[] = []
    for (const n of [1, 2, 3]) ids.push((await one.publish(room, { from: 'a', data: `during ${n}` })).id)
    await until(() => subscriber.held > 0, 'their pub/sub messages held')
    // The room's buffer lets go of what the listener had and of the first it missed (as the
    // hub's own trims would, in whole nodes of ~100 entries).
    const client = new Redis(redis.url)
    await client.xtrim(`politely:{${room}}:log`, 'MINID', ids[1] as string)
    client.disconnect()
    subscriber.drop()
    await until(() => live.includes('during 3'), 'the catch-up')
    expect(live).toEqual(['before', '(lost)', 'during 2', 'during 3'])
    unsubscribe()
  })

  test('…and a room first subscribed while it was down gets its live events, and no word of a loss', async () => {
    const one = await hubOn(redis.url)
    const { proxy, hub: two } = await proxied()
    const [held, fresh] = [uniqueRoom(), uniqueRoom()]
    const unsubscribeHeld = two.subscribe(held, () => {})
    await two.since(held, undefined)
    const subscriber = proxy.connections.find((connection) => connection.subscriber) as ProxiedConnection
    const commands = proxy.connections.find((connection) => !connection.subscriber) as ProxiedConnection
    // The subscriber connection comes back but is not ready yet (its ready check held).
    proxy.holdCommand(/\r\ninfo\r\n/i)
    subscriber.drop()
    await until(() => proxy.connections.some((connection) => connection.held > 0), 'the ready check held')
    proxy.holdCommand()
    // The new room has an event from before: its catch-up read (from the start) finds it first.
    await one.publish(fresh, { from: 'a', data: 'earlier' })
    const live: string[] = []
    const unsubscribe = two.subscribe(
      fresh,
      (event) => live.push(event.data),
      () => live.push('(lost)'),
    )
    // The catch-up reads both rooms' streams; a live event of the new room overtakes that read.
    commands.holdReplies()
    const sentBefore = commands.sent.length
    for (const connection of proxy.connections) if (connection !== commands) connection.release()
    await until(() => /\r\nxrange\r\n/i.test(commands.sent.slice(sentBefore)), 'the catch-up read')
    await one.publish(fresh, { from: 'a', data: 'live' })
    await until(() => live.includes('live'), 'the live event')
    commands.release()
    // A read on the same connection after it: once it is answered, the catch-up's was handled.
    await two.since(fresh, undefined)
    expect(live).toEqual(['live'])
    unsubscribe()
    unsubscribeHeld()
  })

  test('…and its catch-up read failed (a command timeout): the stream is read again, none lost', async () => {
    const { proxy, hub } = await proxied({}, 200)
    expect(await dropWhilePublishing(hub, proxy, 600)).toEqual(['before', 'during', 'after'])
  })

  test("a resume position trimmed away, even while the replay's read is on its way: a gap, never a part of the missed events", async () => {
    const one = await hubOn(redis.url, { replayMessages: 4 })
    const { proxy, hub: two } = await proxied({ replayMessages: 4 })
    const room = uniqueRoom()
    const position = (await one.publish(room, { from: 'a', data: '0' })).id
    await one.publish(room, { from: 'a', data: '1' })
    proxy.holdCommand(/\r\nxrange\r\n/i)
    const replay = two.since(room, position)
    await until(() => proxy.connections.some((connection) => connection.held > 0), 'the read held on its way')
    proxy.holdCommand()
    // Another process publishes meanwhile: the stream is trimmed (in whole nodes of 100 entries).
    for (let n = 2; n < 300; n++) await one.publish(room, { from: 'a', data: String(n) })
    for (const connection of proxy.connections) connection.release()
    expect(await replay).toBe('gap')
  })

  test('a publish whose answer was lost with its connection runs once, though ioredis sends it again', async () => {
    const { proxy, hub } = await proxied()
    const room = uniqueRoom()
    // Redis has the script by now (a first call may be answered NOSCRIPT and sent again, as EVAL).
    await hub.publish(room, { from: 'a', data: 'first' })
    for (const connection of proxy.connections) connection.holdReplies()
    const published = hub.publish(room, { from: 'a', data: 'once' })
    await until(() => proxy.connections.some((connection) => connection.held > 0), 'its answer held')
    // The script ran; its answer is lost with the connection, and ioredis sends it again on a new one.
    proxy.connections.find((connection) => connection.held > 0)?.drop()
    const { id } = await published
    const client = new Redis(redis.url)
    try {
      const entries = await client.xrange(`politely:{${room}}:log`, '-', '+')
      expect(entries.map(([, fields]) => fields[5])).toEqual(['first', 'once'])
      expect(entries[1]?.[0]).toBe(id)
    } finally {
      client.disconnect()
    }
    // …and the publishes after it run as before.
    await hub.publish(room, { from: 'a', data: 'then' })
    expect(data((await hub.since(room, id)) as RoomEvent[])).toEqual(['then'])
  })

  test("a room's subscription cannot be made (a command timeout): the replay fails rather than miss live events, and works once it can", async () => {
    const one = await hubOn(redis.url)
    const { proxy, hub: two } = await proxied({}, 200)
    const room = uniqueRoom()
    proxy.holdCommand(/\r\nsubscribe\r\n/i)
    const live: RoomEvent[] = []
    const unsubscribe = two.subscribe(room, (event) => live.push(event))
    await expect(two.since(room, undefined)).rejects.toThrow(/timed out/i)
    proxy.holdCommand()
    for (const connection of proxy.connections) connection.release()
    expect(await two.since(room, undefined)).toEqual([])
    await one.publish(room, { from: 'a', data: 'live' })
    await until(() => data(live).includes('live'), 'a live event')
    unsubscribe()
  })
})
