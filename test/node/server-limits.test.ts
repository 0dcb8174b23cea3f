import { connect } from 'node:net'
import { describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import { prefix64 } from '../../src/server/admission'
import { MemoryHub } from '../../src/server/memory-hub'
import { SERVER_DEFAULTS, type ServerOptions } from '../../src/server/options'
import { startCli } from '../support/cli-server'
import { startServer } from '../support/server'
import { readEvents } from '../support/sse-reader'
import { until } from '../support/until'
import { wsAnswer } from '../support/ws-refusal'

type Server = Awaited<ReturnType<typeof startServer>>
/** A secret of 24 copies of `c` (each test peer its own letter). */
const token = (c: string) => c.repeat(24)

/** Runs `body` against a server of its own with `options`, closing it afterwards. */
async function withServer(options: ServerOptions, body: (server: Server) => Promise<void>) {
  const server = await startServer(options)
  try {
    await body(server)
  } finally {
    await server.close()
  }
}

const subscribe = (server: { url: string }, room: string, peer: string, secret: string, query = '', headers = {}) =>
  readEvents(`${server.url}/${room}?peer=${peer}&token=${secret}${query}`, headers)

const publish = (server: { url: string }, room: string, from: string, body: object) =>
  fetch(`${server.url}/${room}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token(from)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from, session: 1, ...body }),
  })

/** The JSON body of a refused subscription (the reader has it as raw text). */
async function refusalOf(stream: Awaited<ReturnType<typeof readEvents>>) {
  await until(() => stream.raw.text.endsWith('}'), 'the refusal body')
  return JSON.parse(stream.raw.text)
}

const messages = (stream: Awaited<ReturnType<typeof readEvents>>) => stream.events.filter((e) => !e.event)

describe('a fresh claim of an id gets nothing published before it', () => {
  test('after the release grace, the new holder of an id gets neither the old SDP nor a forged resume position', () =>
    withServer({ releaseMs: 100 }, async (server) => {
      const a = await subscribe(server, 'reclaim', 'a', token('a'))
      const old = await subscribe(server, 'reclaim', 'b', token('b'))
      await until(() => old.events.some((e) => e.event === 'welcome'), 'the first holder')
      const description = { type: 'offer', sdp: 'v=0 a=ice-pwd:secret-of-the-first-holder' }
      await publish(server, 'reclaim', 'a', { kind: 'description', to: 'b', toSession: 1, description })
      await until(() => messages(old).length === 1, 'the offer to the first holder')
      const position = messages(old)[0]?.id as string
      old.close()
      // The grace passes: the id is free, and someone else claims it, with and without a position.
      await new Promise((resolve) => setTimeout(resolve, 400))
      const fresh = await subscribe(server, 'reclaim', 'b', token('x'))
      const forged = await subscribe(server, 'reclaim', 'c', token('c'), '&lastEventId=0-0')
      await until(() => fresh.events.some((e) => e.event === 'welcome'), 'the new holder')
      await until(() => forged.events.some((e) => e.event === 'welcome'), 'the forger')
      expect(position).toMatch(/-/)
      // What arrives after the claim arrives.
      await publish(server, 'reclaim', 'a', { kind: 'hello', to: 'b' })
      await until(() => messages(fresh).length === 1, 'the message after the claim')
      expect(fresh.raw.text).not.toContain('ice-pwd')
      expect(forged.raw.text).not.toContain('ice-pwd')
      // A forged position on a fresh claim is answered with `reset`, never with the buffer.
      expect(forged.events.some((e) => e.event === 'reset')).toBe(true)
      for (const s of [a, fresh, forged]) s.close()
    }))

  test('over WebSocket too', () =>
    withServer({ releaseMs: 100 }, async (server) => {
      const a = await subscribe(server, 'reclaim-ws', 'a', token('a'))
      const old = await subscribe(server, 'reclaim-ws', 'b', token('b'))
      await until(() => old.events.some((e) => e.event === 'welcome'), 'the first holder')
      await publish(server, 'reclaim-ws', 'a', { kind: 'hello', to: 'b', toSession: 99 })
      await until(() => messages(old).length === 1, 'the message to the first holder')
      old.close()
      await new Promise((resolve) => setTimeout(resolve, 400))
      const frames: string[] = []
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/reclaim-ws?peer=b&token=${token('y')}&lastEventId=0-0`)
      ws.on('message', (data) => frames.push(String(data)))
      await until(() => frames.some((f) => f.includes('welcome')), 'welcome')
      await publish(server, 'reclaim-ws', 'a', { kind: 'hello', to: 'b', toSession: 5 })
      await until(() => frames.some((f) => f.includes('"toSession":5')), 'the message after the claim')
      expect(frames.join('\n')).not.toContain('"toSession":99')
      ws.close()
      a.close()
    }))
})

describe('client addresses', () => {
  test('IPv6 clients are counted by /64; IPv4 and IPv4-mapped addresses as they are', () => {
    expect(prefix64('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64')
    expect(prefix64('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64')
    expect(prefix64('2001:DB8::1')).toBe('2001:db8:0:0::/64')
    expect(prefix64('::1')).toBe('0:0:0:0::/64')
    expect(prefix64('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(prefix64('::ffff:192.0.2.7')).toBe('192.0.2.7')
    expect(prefix64('192.0.2.7')).toBe('192.0.2.7')
  })
})

describe('seats', () => {
  test('maxPeers asked by the client caps the room; a peer in its release grace holds no seat', () =>
    withServer({ releaseMs: 5000 }, async (server) => {
      const a = await subscribe(server, 'pair', 'a', token('a'), '&maxPeers=2')
      const b = await subscribe(server, 'pair', 'b', token('b'), '&maxPeers=2')
      await until(() => b.events.some((e) => e.event === 'welcome'), 'b')
      const c = await subscribe(server, 'pair', 'c', token('c'), '&maxPeers=2')
      expect(c.response.status).toBe(403)
      expect(await refusalOf(c)).toMatchObject({ error: 'room-full' })
      expect(await wsAnswer(`${server.url}/pair?peer=c&token=${token('c')}&maxPeers=2`)).toMatchObject({
        code: 4403,
        reason: 'room-full',
      })
      // b reloads (its old stream ends, its id stays bound for the grace): the new instance gets the seat.
      b.close()
      await new Promise((resolve) => setTimeout(resolve, 100))
      const b2 = await subscribe(server, 'pair', 'b2', token('d'), '&maxPeers=2')
      expect(b2.response.status).toBe(200)
      // The old b can still resume its own id (its binding lives), over the cap for a moment.
      const back = await subscribe(server, 'pair', 'b', token('b'), '&maxPeers=2')
      expect(back.response.status).toBe(200)
      for (const s of [a, b2, back]) s.close()
    }))

  test('a bad maxPeers is a 400', () =>
    withServer({}, async (server) => {
      for (const bad of ['0', '-1', '1.5', 'x', '1e400']) {
        const answer = await subscribe(server, 'bad', 'a', token('a'), `&maxPeers=${bad}`)
        expect(answer.response.status, bad).toBe(400)
      }
    }))
})

describe('per-address and total limits', () => {
  test('connections per address: 429 too-many-connections with Retry-After; WebSocket 4429; freed on close', () =>
    withServer({ maxConnectionsPerAddress: 3 }, async (server) => {
      const held = await Promise.all([1, 2, 3].map((n) => subscribe(server, `r${n}`, 'p', token(String(n)))))
      const over = await subscribe(server, 'r4', 'p', token('4'))
      expect(over.response.status).toBe(429)
      expect(over.response.headers.get('retry-after')).toBe('1')
      expect(await refusalOf(over)).toMatchObject({ error: 'too-many-connections' })
      expect(await wsAnswer(`${server.url}/r5?peer=p&token=${token('5')}`)).toMatchObject({
        code: 4429,
        reason: 'too-many-connections',
      })
      // Publishing counts while in flight, too: refused while three streams are held.
      expect((await publish(server, 'r1', 'p', { kind: 'hello' })).status).toBe(429)
      held[0]?.close()
      let again = await subscribe(server, 'r6', 'p', token('6'))
      for (let i = 0; again.response.status !== 200 && i < 50; i++) {
        // The server counts the closed stream out when its socket closes: wait for that, not a fixed time.
        await new Promise((resolve) => setTimeout(resolve, 20))
        again = await subscribe(server, 'r6', 'p', token('6'))
      }
      expect(again.response.status).toBe(200)
      for (const s of [...held, again]) s.close()
    }))

  test('refused WebSockets that never answer the close frame: dropped within seconds (not ws’s 30 s)', () =>
    withServer({ maxConnectionsPerAddress: 2 }, async (server) => {
      const { port } = new URL(server.url)
      const raw = (n: number) => {
        const socket = connect(Number(port), '127.0.0.1')
        socket.on('error', () => {})
        socket.write(
          `GET /signal/linger${n}?peer=p&token=${token(String(n % 10))} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
            'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        )
        // Reads (so the close frame arrives) but never answers it.
        return socket
      }
      const sockets = Array.from({ length: 12 }, (_, n) => raw(n))
      const open = () => new Promise<number>((resolve) => server.server.getConnections((_e, n) => resolve(n)))
      let count = await open()
      for (let i = 0; i < 50 && count < 12; i++) count = await new Promise((r) => setTimeout(() => r(open()), 20))
      expect(count).toBe(12)
      // Two admitted, ten refused with 4429 and left hanging: the ten go within the close timeout.
      for (let i = 0; i < 400 && count > 2; i++) count = await new Promise((r) => setTimeout(() => r(open()), 25))
      expect(count).toBe(2)
      for (const socket of sockets) socket.destroy()
    }))

  test('behind a proxy (trustProxy), each client address has its own count; without it the header is ignored', async () => {
    await withServer({ maxConnectionsPerAddress: 1, trustProxy: true }, async (server) => {
      const one = await subscribe(server, 'x1', 'p', token('1'), '', { 'x-forwarded-for': '198.51.100.1' })
      const two = await subscribe(server, 'x2', 'p', token('2'), '', { 'x-forwarded-for': '203.0.113.9, 198.51.100.2' })
      const same = await subscribe(server, 'x3', 'p', token('3'), '', { 'x-forwarded-for': '198.51.100.1' })
      expect([one.response.status, two.response.status, same.response.status]).toEqual([200, 200, 429])
      for (const s of [one, two]) s.close()
    })
    await withServer({ maxConnectionsPerAddress: 1 }, async (server) => {
      const one = await subscribe(server, 'x1', 'p', token('1'), '', { 'x-forwarded-for': '198.51.100.1' })
      const spoof = await subscribe(server, 'x2', 'p', token('2'), '', { 'x-forwarded-for': '198.51.100.2' })
      expect([one.response.status, spoof.response.status]).toEqual([200, 429])
      one.close()
    })
  })

  test('all connections together: 503 unavailable past maxConnections', () =>
    withServer({ maxConnections: 2, trustProxy: true }, async (server) => {
      const held = await Promise.all(
        [1, 2].map((n) => subscribe(server, `t${n}`, 'p', token(String(n)), '', { 'x-forwarded-for': `192.0.2.${n}` })),
      )
      const over = await subscribe(server, 't3', 'p', token('3'), '', { 'x-forwarded-for': '192.0.2.3' })
      expect(over.response.status).toBe(503)
      expect(await refusalOf(over)).toMatchObject({ error: 'unavailable' })
      for (const s of held) s.close()
    }))

  test('rooms created per address: 429 rate-limited past newRoomsPerMinute; joining an existing room still works', () =>
    withServer({ newRoomsPerMinute: 3, trustProxy: true }, async (server) => {
      const me = { 'x-forwarded-for': '192.0.2.7' }
      const made = []
      for (const n of [1, 2, 3]) made.push(await subscribe(server, `new${n}`, 'p', token(String(n)), '', me))
      expect(made.map((s) => s.response.status)).toEqual([200, 200, 200])
      const fourth = await subscribe(server, 'new4', 'p', token('4'), '', me)
      expect(fourth.response.status).toBe(429)
      expect(await refusalOf(fourth)).toMatchObject({ error: 'rate-limited' })
      const join = await subscribe(server, 'new1', 'q', token('q'), '', me)
      expect(join.response.status).toBe(200)
      // Another address is not affected.
      const other = await subscribe(server, 'new5', 'p', token('5'), '', { 'x-forwarded-for': '192.0.2.8' })
      expect(other.response.status).toBe(200)
      for (const s of [...made, join, other]) s.close()
    }))
})

describe('replay memory', () => {
  test('the total budget holds across rooms: the largest buffers shed first, a quiet room keeps its event', async () => {
    const hub = new MemoryHub({ ...SERVER_DEFAULTS, replayBytesTotal: 200_000 })
    try {
      const filler = 'x'.repeat(1000)
      await hub.claim('quiet', 'q', token('q'), 16)
      await hub.publish('quiet', { from: 'q', data: '{"small":1}' })
      for (let room = 0; room < 50; room++) {
        await hub.claim(`flood${room}`, 'f', token('f'), 16)
        for (let i = 0; i < 60; i++) await hub.publish(`flood${room}`, { from: 'f', data: filler })
        expect(hub.replayBytes()).toBeLessThanOrEqual(200_000)
      }
      expect(await hub.since('quiet', undefined)).toHaveLength(1)
    } finally {
      await hub.close()
    }
  })

  test("a room's buffer is freed when its last binding is released, not when its events expire", async () => {
    const hub = new MemoryHub({ ...SERVER_DEFAULTS, releaseMs: 50 })
    try {
      await hub.claim('gone', 'a', token('a'), 16)
      await hub.publish('gone', { from: 'a', data: 'y'.repeat(10_000) })
      expect(hub.replayBytes()).toBe(10_000)
      hub.release('gone', 'a', token('a'))
      await until(() => hub.rooms() === 0, 'the room to go')
      expect(hub.replayBytes()).toBe(0)
    } finally {
      await hub.close()
    }
  })
})

describe('replacement and slow readers', () => {
  test('a stream replaced while its reader sleeps is never written after its end (the process survives)', async () => {
    // In a process of its own: a write after the end is an uncaught error that ends it. A large
    // maxBufferedBytes: the sleeping stream is ended (replaced) before it is ever cut for slowness.
    const server = await startCli([
      '--heartbeat-ms',
      '50',
      '--rate-per-second',
      '1e6',
      '--rate-burst',
      '1e6',
      '--max-buffered-bytes',
      String(64 << 20),
    ])
    const abort = new AbortController()
    try {
      // x's first stream: a raw request whose reader never reads again.
      const sleeper = connect(server.port, '127.0.0.1')
      sleeper.on('error', () => {})
      sleeper.write(`GET /signal/zombie?peer=x&token=${token('x')} HTTP/1.1\r\nHost: x\r\n\r\n`)
      await new Promise((resolve) => sleeper.once('data', resolve))
      sleeper.pause()
      await fetch(`${server.url}/zombie?peer=y&token=${token('y')}`, { signal: abort.signal })
      // More than loopback's kernel buffers take: the stream cannot finish while x sleeps.
      const description = { type: 'offer', sdp: 'v'.repeat(100_000) }
      for (let i = 0; i < 80; i++)
        await publish(server, 'zombie', 'y', { kind: 'description', to: 'x', toSession: 1, description })
      // x comes back with the same secret: the sleeping stream is ended, and heartbeats tick on.
      const again = await fetch(`${server.url}/zombie?peer=x&token=${token('x')}`, { signal: abort.signal })
      expect(again.status).toBe(200)
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(server.alive(), server.report()).toBe(true)
      sleeper.destroy()
    } finally {
      abort.abort()
      await server.stop()
    }
  })

  test('pipelined requests whose client leaves first: counted out, and their claims released', () =>
    withServer({ maxConnectionsPerAddress: 5, releaseMs: 100 }, async (server) => {
      const { port } = new URL(server.url)
      for (const n of [1, 2]) {
        const socket = connect(Number(port), '127.0.0.1')
        socket.on('error', () => {})
        const options = 'OPTIONS /signal/piped HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(30)
        socket.write(`GET /signal/piped?peer=p${n}&token=${token(String(n))} HTTP/1.1\r\nHost: x\r\n\r\n${options}`)
        await new Promise((resolve) => socket.once('data', resolve))
        socket.destroy()
      }
      // Every count went with its socket: a new stream from this address is admitted…
      let fresh = await subscribe(server, 'piped', 'q', token('q'))
      for (let i = 0; fresh.response.status !== 200 && i < 50; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20))
        fresh = await subscribe(server, 'piped', 'q', token('q'))
      }
      expect(fresh.response.status).toBe(200)
      // …and after the release grace, p1's id is free for another secret.
      await new Promise((resolve) => setTimeout(resolve, 300))
      const taker = await subscribe(server, 'piped', 'p1', token('z'))
      expect(taker.response.status).toBe(200)
      fresh.close()
      taker.close()
    }))

  test('a stream replaced by a newer one of the same peer is told so before it ends', () =>
    withServer({}, async (server) => {
      const older = await subscribe(server, 'twice', 'a', token('a'))
      await until(() => older.events.some((e) => e.event === 'welcome'), 'welcome')
      const newer = await subscribe(server, 'twice', 'a', token('a'))
      await until(() => older.events.some((e) => e.event === 'replaced'), 'the replaced event')
      // One subscription per peer id: the newer one is the only one that gets events.
      await publish(server, 'twice', 'a', { kind: 'hello' })
      const listener = await subscribe(server, 'twice', 'l', token('l'))
      await until(() => messages(listener).length === 1, 'the replayed hello')
      newer.close()
      listener.close()
    }))

  /**
   * A raw client of `room` as peer s sends `request`, reads its first answer and then never reads
   * again; peer w floods it with big messages until the server drops its socket. Resolves once the
   * sleeper, reading again, got what was in flight and then the end: it was cut, not just slowed.
   */
  async function cutWhenItStopsReading(server: Server, room: string, request: string) {
    const { port } = new URL(server.url)
    const sleeper = connect(Number(port), '127.0.0.1')
    sleeper.write(request)
    await new Promise((resolve) => sleeper.once('data', resolve))
    sleeper.pause()
    sleeper.on('error', () => {})
    const closed = new Promise((resolve) => sleeper.once('close', resolve))
    const sender = new WebSocket(`${server.url.replace('http', 'ws')}/${room}?peer=w&token=${token('w')}`)
    await new Promise((resolve) => sender.once('message', resolve))
    // Big messages: loopback's kernel buffers take megabytes before the server's own fill.
    const description = { type: 'offer', sdp: 'v'.repeat(100_000) }
    const frame = JSON.stringify(
      Array.from({ length: 4 }, () => ({ kind: 'description', from: 'w', to: 's', session: 1, toSession: 1, description })),
    )
    const sockets = () => new Promise<number>((resolve) => server.server.getConnections((_e, n) => resolve(n)))
    const before = await sockets()
    // Paced by the sender's own buffer: the server must get the frames, not this process hold them.
    const pump = setInterval(() => {
      if (sender.bufferedAmount < 1_000_000) sender.send(frame)
    }, 2)
    try {
      // The server drops its end (the paused client cannot see that until it reads).
      for (let n = before; n >= before; n = await sockets()) await new Promise((resolve) => setTimeout(resolve, 20))
      clearInterval(pump)
      sleeper.resume()
      await closed
      expect(sleeper.destroyed).toBe(true)
    } finally {
      clearInterval(pump)
      sender.close()
    }
  }

  const SLOW_READERS = { maxBufferedBytes: 64 * 1024, ratePerSecond: 1e6, rateBurst: 1e6 }

  test('a WebSocket client that stops reading is cut off once maxBufferedBytes is unread', () =>
    withServer(SLOW_READERS, (server) =>
      cutWhenItStopsReading(
        server,
        'slow',
        `GET /signal/slow?peer=s&token=${token('s')} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      ),
    ))

  // The event-stream sink checks what it still holds once each turn's events went out.
  test('an SSE client that stops reading is cut off once maxBufferedBytes is unread', () =>
    withServer(SLOW_READERS, (server) =>
      cutWhenItStopsReading(
        server,
        'slow-sse',
        `GET /signal/slow-sse?peer=s&token=${token('s')} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`,
      ),
    ))
})

describe('CORS', () => {
  test('an allowed origin gets CORS headers and a preflight answer; another is refused but can read why', () =>
    withServer({ allowedOrigins: ['http://friend.test'] }, async (server) => {
      const friend = await subscribe(server, 'cors', 'a', token('a'), '', { origin: 'http://friend.test' })
      expect(friend.response.status).toBe(200)
      expect(friend.response.headers.get('access-control-allow-origin')).toBe('http://friend.test')
      const preflight = await fetch(`${server.url}/cors`, {
        method: 'OPTIONS',
        headers: {
          origin: 'http://friend.test',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      })
      expect(preflight.status).toBe(204)
      expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization')
      expect(preflight.headers.get('access-control-allow-methods')).toContain('POST')
      const foe = await subscribe(server, 'cors', 'b', token('b'), '', { origin: 'http://foe.test' })
      expect(foe.response.status).toBe(403)
      expect(foe.response.headers.get('access-control-allow-origin')).toBe('http://foe.test')
      expect(await refusalOf(foe)).toMatchObject({ error: 'origin-not-allowed' })
      // The refused page claimed nothing: its peer id is still free for the real one.
      const real = await subscribe(server, 'cors', 'b', token('c'))
      expect(real.response.status).toBe(200)
      const host = new URL(server.url).host
      const same = await subscribe(server, 'cors', 'd', token('d'), '', { origin: `http://${host}` })
      expect(same.response.status).toBe(200)
      // Same host, other scheme: another origin.
      const https = await subscribe(server, 'cors', 'g', token('g'), '', { origin: `https://${host}` })
      expect(https.response.status).toBe(403)
      expect(await wsAnswer(`${server.url}/cors?peer=e&token=${token('e')}`, { origin: 'http://foe.test' })).toMatchObject({
        welcome: false,
        code: 4403,
        reason: 'origin-not-allowed',
      })
      expect(await wsAnswer(`${server.url}/cors?peer=f&token=${token('f')}`, { origin: 'http://friend.test' })).toEqual({
        welcome: true,
      })
      for (const s of [friend, real, same]) s.close()
    }))
})

describe('the WebSocket heartbeat', () => {
  test('a client that never answers a ping is cut within two heartbeats; one that only answers pings stays', async () => {
    const server = await startServer({ heartbeatMs: 150 })
    try {
      const { port } = new URL(server.url)
      // A raw socket reads (so pings arrive, and the end) but answers none: a pulled cable, as far as the server can tell.
      const mute = connect(Number(port), '127.0.0.1')
      mute.on('error', () => {})
      mute.resume()
      mute.write(
        `GET /signal/beat?peer=mute&token=${token('m')} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      )
      const muteClosed = new Promise<number>((resolve) => mute.once('close', () => resolve(Date.now())))
      // ws answers every ping with a pong by itself, and this client sends nothing else.
      const quiet = new WebSocket(`${server.url.replace(/^http/, 'ws')}/beat?peer=quiet&token=${token('q')}`)
      let pings = 0
      quiet.on('ping', () => pings++)
      const quietClosed = new Promise((resolve) => quiet.once('close', resolve))
      await new Promise((resolve) => quiet.once('message', resolve))
      const since = Date.now()
      const cutAfter = (await muteClosed) - since
      expect(cutAfter).toBeLessThan(150 * 2 + 1000)
      await until(() => pings >= 6, 'six heartbeats to the quiet client')
      expect(quiet.readyState).toBe(WebSocket.OPEN)
      quiet.close()
      await quietClosed
    } finally {
      await server.close()
    }
  })
})
