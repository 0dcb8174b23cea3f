// Operating the server: /metrics counts exactly what a scripted run did (parsed by a Prometheus
// text parser, not grepped), /healthz and /readyz (unready while Redis is away, ready again when
// it is back), and drain() for a restart (WebSocket: every processed frame acknowledged, then a
// `restart` frame and close 1012; SSE: a `restart` event with a retry hint, then the end).
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import parsePrometheus from 'parse-prometheus-text-format'
import { afterEach, describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import { createSignalingServer, healthRoutes, metricsRoute, type SignalingServer } from '../../src/server/index'
import type { ServerOptions } from '../../src/server/options'
import { RedisHub } from '../../src/server/redis-hub'
import { startCli } from '../support/cli-server'
import { redisServer, startRedis } from '../support/redis'
import { describeRequiring } from '../support/requires'
import { readEvents } from '../support/sse-reader'
import { until } from '../support/until'

const token = (peer: string) => `token-of-${peer}-0123456789`

interface Running {
  url: string
  origin: string
  signaling: SignalingServer
  server: Server
  close(): Promise<void>
}

/** The signaling routes with /metrics and the probes, as the CLI mounts them. */
async function start(options: ServerOptions = {}): Promise<Running> {
  const signaling = createSignalingServer(options)
  const metrics = metricsRoute(signaling)
  const health = healthRoutes(signaling)
  const server = createServer((request, response) => {
    if (signaling.handle(request, response) || metrics.handle(request, response) || health.handle(request, response)) return
    response.writeHead(404).end()
  })
  server.on('upgrade', (request, socket, head) => signaling.upgrade(request, socket, head) || socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url: `${origin}/signal`,
    origin,
    signaling,
    server,
    async close() {
      metrics.close()
      await signaling.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/** Scrapes /metrics and reads one sample: by family name and labels. */
async function scrape(origin: string) {
  const response = await fetch(`${origin}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  const families = parsePrometheus(await response.text())
  const find = (name: string) => families.find((family) => family.name === name)
  return {
    families,
    value(name: string, labels: Record<string, string> = {}): number | undefined {
      const sample = find(name)?.metrics.find((metric) =>
        Object.entries(labels).every(([key, value]) => metric.labels?.[key] === value),
      )
      return sample === undefined ? undefined : Number(sample.value ?? sample.count)
    },
    /** Every labelled sample of a counter, as `label=value,…` → value. */
    samples(name: string): Record<string, number> {
      const out: Record<string, number> = {}
      for (const metric of find(name)?.metrics ?? []) {
        const key = Object.entries(metric.labels ?? {})
          .map(([k, v]) => `${k}=${v}`)
          .join(',')
        out[key] = Number(metric.value)
      }
      return out
    },
  }
}

/** A raw WebSocket client of a room: every frame the server sent, parsed. */
async function socket(url: string, room: string, peer: string) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/${room}?peer=${peer}&token=${token(peer)}`)
  const frames: Array<Record<string, unknown>> = []
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  )
  ws.on('message', (data) => frames.push(JSON.parse(String(data))))
  await until(() => frames.some((frame) => frame.type === 'welcome'), `${peer} welcomed`)
  return { ws, frames, closed }
}

const servers: Running[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

describe('/metrics', () => {
  test('counts exactly what a scripted run did: connections, messages and bytes relayed, refusals by code and route', async () => {
    const running = await start()
    servers.push(running)
    const { url, origin } = running
    const room = 'metrics-room'

    const before = await scrape(origin)
    expect(before.value('politely_connections', { transport: 'websocket' })).toBe(0)
    expect(before.value('politely_messages_relayed_total')).toBe(0)
    // Node's own, for event-loop lag.
    expect(before.value('nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0)

    const a = await socket(url, room, 'a')
    const b = await socket(url, room, 'b')
    const c = await readEvents(`${url}/${room}?peer=c&token=${token('c')}`)
    await until(() => c.events.some((event) => event.event === 'welcome'), 'c welcomed')

    const during = await scrape(origin)
    expect(during.value('politely_connections', { transport: 'websocket' })).toBe(2)
    expect(during.value('politely_connections', { transport: 'sse' })).toBe(1)
    expect(during.value('politely_peers')).toBe(3)
    expect(during.value('politely_rooms')).toBe(1)

    // Relayed: a's hello (broadcast), a description and a candidate for b in one frame, c's hello by POST.
    a.ws.send(JSON.stringify({ kind: 'hello', from: 'a', session: 1, since: 1 }))
    a.ws.send(
      JSON.stringify([
        { kind: 'description', from: 'a', session: 1, to: 'b', toSession: 1, description: { type: 'offer', sdp: 'v=0 ünïcode' } },
        { kind: 'candidate', from: 'a', session: 1, to: 'b', toSession: 1, candidate: null },
      ]),
    )
    const post = (body: unknown, headers: Record<string, string>) =>
      fetch(`${url}/${room}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      })
    expect((await post({ kind: 'hello', from: 'c', session: 1 }, { authorization: `Bearer ${token('c')}` })).status).toBe(202)

    // Refused: a binary frame (bad-request, websocket); an upgrade with a bad peer id (bad-request,
    // websocket); c posting as a (spoofed-sender, post); a POST without a token (unauthorized,
    // post); a stream without a token (unauthorized, sse); a frame of invalid JSON (invalid-signal, websocket).
    a.ws.send(Buffer.from([1, 2, 3]))
    a.ws.send('{not json')
    const bad = new WebSocket(`${url.replace(/^http/, 'ws')}/${room}?peer=${'x'.repeat(65)}&token=${token('x')}`)
    await new Promise((resolve) => bad.on('close', resolve).on('error', () => {}))
    expect((await post({ kind: 'hello', from: 'a', session: 1 }, { authorization: `Bearer ${token('c')}` })).status).toBe(403)
    expect((await post({ kind: 'hello', from: 'c', session: 1 }, {})).status).toBe(401)
    expect((await fetch(`${url}/${room}?peer=d`)).status).toBe(401)

    // What the subscribers got, by event id: the relayed bytes are those of the server's JSON.
    const relayed = new Map<string, string>()
    await until(
      () => b.frames.filter((frame) => frame.type === 'message').length === 4,
      'b got a hello, a description, a candidate and c hello',
    )
    for (const frame of [...a.frames, ...b.frames]) {
      if (frame.type === 'message') relayed.set(frame.id as string, JSON.stringify(frame.message))
    }
    await until(() => a.frames.filter((frame) => frame.type === 'error').length === 2, 'a told of its two bad frames')
    const bytes = [...relayed.values()].reduce((sum, data) => sum + Buffer.byteLength(data), 0)
    expect(relayed.size).toBe(4)

    const after = await scrape(origin)
    expect(after.value('politely_messages_relayed_total')).toBe(4)
    expect(after.value('politely_bytes_relayed_total')).toBe(bytes)
    expect(after.value('politely_hub_publish_seconds')).toBe(4) // the histogram's count
    expect(after.samples('politely_refusals_total')).toEqual({
      'code=bad-request,route=websocket': 2,
      'code=invalid-signal,route=websocket': 1,
      'code=spoofed-sender,route=post': 1,
      'code=unauthorized,route=post': 1,
      'code=unauthorized,route=sse': 1,
    })
    expect(after.value('politely_hub_errors_total')).toBeUndefined()

    a.ws.close()
    b.ws.close()
    c.close()
    await until(async () => (await scrape(origin)).value('politely_peers') === 0, 'every subscription ended')
    const end = await scrape(origin)
    expect(end.value('politely_connections', { transport: 'websocket' })).toBe(0)
    expect(end.value('politely_connections', { transport: 'sse' })).toBe(0)
  })

  test('answers GET and HEAD only, at its own path; other paths fall through', async () => {
    const running = await start()
    servers.push(running)
    expect((await fetch(`${running.origin}/metrics`, { method: 'HEAD' })).status).toBe(200)
    expect((await fetch(`${running.origin}/metrics`, { method: 'POST' })).status).toBe(405)
    expect((await fetch(`${running.origin}/metrics/x`)).status).toBe(404)
  })
})

describe('/healthz and /readyz', () => {
  test('alive and ready with the in-memory hub; unready once draining', async () => {
    const running = await start()
    servers.push(running)
    const get = async (path: string) => {
      const response = await fetch(`${running.origin}${path}`)
      return { status: response.status, body: await response.json() }
    }
    expect(await get('/healthz')).toEqual({ status: 200, body: { status: 'ok' } })
    expect(await get('/readyz')).toEqual({ status: 200, body: { status: 'ready' } })
    await running.signaling.drain()
    expect(await get('/readyz')).toEqual({ status: 503, body: { status: 'unready' } })
    expect(await get('/healthz')).toEqual({ status: 200, body: { status: 'ok' } })
  })

  describeRequiring(redisServer, 'with Redis', () => {
    test('/readyz goes unready when Redis stops and ready again when it is back; failed publishes count as hub errors', async () => {
      let redis = await startRedis()
      const warnings: string[] = []
      const hub = new RedisHub({
        redis: redis.url,
        maxRooms: 100,
        replayMessages: 64,
        replayAgeMs: 60_000,
        releaseMs: 15_000,
        onError: (error) => warnings.push(error.message),
      })
      await hub.connect()
      const running = await start({ hub })
      servers.push(running)
      const ready = async () => (await fetch(`${running.origin}/readyz`)).status
      try {
        const a = await socket(running.url, 'ready-room', 'a')
        expect(await ready()).toBe(200)

        await redis.stop()
        await until(async () => (await ready()) === 503, '/readyz unready with Redis stopped')
        // A publish now fails in the hub: the frame is answered with 1013 (send again) and counted.
        a.ws.send(JSON.stringify({ kind: 'hello', from: 'a', session: 1 }))
        expect((await a.closed).code).toBe(1013)
        const during = await scrape(running.origin)
        expect(during.value('politely_hub_errors_total', { operation: 'publish' })).toBe(1)
        expect(during.value('politely_messages_relayed_total')).toBe(0)

        redis = await startRedis(redis.port)
        await until(async () => (await ready()) === 200, '/readyz ready again with Redis back')
        expect(warnings.length).toBeGreaterThan(0)
      } finally {
        await redis.stop()
      }
    })
  })
})

describe('drain() for a restart', () => {
  test('WebSocket: frames under way are published and acknowledged, then a restart frame and close 1012; new subscriptions get 503', async () => {
    const running = await start()
    servers.push(running)
    const { url } = running
    const room = 'drain-ws'
    const a = await socket(url, room, 'a')
    const b = await socket(url, room, 'b')
    // Frames sent just before the drain: all of them published, all acknowledged (none to resend).
    const count = 20
    for (let i = 0; i < count; i++) {
      a.ws.send(JSON.stringify({ kind: 'candidate', from: 'a', session: 1, to: 'b', toSession: i + 1, candidate: null }))
    }
    await until(() => b.frames.some((frame) => frame.type === 'message'), 'the first frame relayed')
    const drained = running.signaling.drain()
    const [closeA, closeB] = await Promise.all([a.closed, b.closed])
    await drained
    expect(closeA.code).toBe(1012)
    expect(closeB.code).toBe(1012)
    const received = b.frames
      .filter((frame) => frame.type === 'message')
      .map((frame) => (frame.message as { toSession: number }).toSession)
    const acked = Math.max(...a.frames.filter((frame) => frame.type === 'ack').map((frame) => frame.n as number))
    // Whatever a's last ack covers reached b, in order; what it does not cover a sends again elsewhere.
    expect(received).toEqual([...Array(acked).keys()].map((i) => i + 1))
    expect(acked).toBeGreaterThan(0)
    expect(a.frames.at(-1)).toEqual({ type: 'restart', retry: 1000 })
    expect(running.signaling.stats().connections).toEqual({ sse: 0, websocket: 0 })

    const late = new WebSocket(`${url.replace(/^http/, 'ws')}/${room}?peer=c&token=${token('c')}`)
    const refused = await new Promise<number>((resolve) => late.on('close', resolve).on('error', () => {}))
    expect(refused).toBe(4503)
    // Publishing still works while draining (a client's last POSTs).
    const posted = await fetch(`${url}/${room}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token('a')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'bye', from: 'a', session: 1 }),
    })
    expect(posted.status).toBe(202)
  })

  test('SSE: a restart event with its retry hint, then the stream ends; a new stream gets 503 with Retry-After', async () => {
    const running = await start({ retryMs: 750 })
    servers.push(running)
    const { url } = running
    const stream = await readEvents(`${url}/drain-sse?peer=a&token=${token('a')}`)
    await until(() => stream.events.some((event) => event.event === 'welcome'), 'welcomed')
    await running.signaling.drain()
    await until(() => stream.raw.text.includes('event: restart'), 'the restart event')
    expect(stream.events.at(-1)).toEqual({ retry: '750', event: 'restart', data: '{"retry":750}' })
    const late = await fetch(`${url}/drain-sse?peer=b&token=${token('b')}`)
    expect(late.status).toBe(503)
    expect(late.headers.get('retry-after')).toBe('1')
    expect((await late.json()).error).toBe('unavailable')
  })
})

describe('the politely-server CLI', () => {
  test('logs one JSON line per refusal (code, route, address), never a token or SDP; SIGTERM drains its clients and exits 0', async () => {
    const cli = await startCli(['--log-level', 'info'])
    try {
      const room = 'cli-logs'
      const a = await socket(cli.url, room, 'a')
      const marker = 'SDP-MARKER-7f3a'
      a.ws.send(
        JSON.stringify({
          kind: 'description',
          from: 'a',
          session: 1,
          to: 'b',
          toSession: 1,
          description: { type: 'offer', sdp: marker },
        }),
      )
      await until(() => a.frames.some((frame) => frame.type === 'ack'), 'the description acknowledged')
      // Three refusals: a stream without a token, a POST under another's token, a frame of bad JSON.
      expect((await fetch(`${cli.url}/${room}?peer=d`)).status).toBe(401)
      const spoofed = await fetch(`${cli.url}/${room}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token('z')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'hello', from: 'a', session: 1 }),
      })
      expect(spoofed.status).toBe(403)
      a.ws.send(`{"kind":"description","sdp":"${marker}"`)
      await until(() => a.frames.some((frame) => frame.type === 'error'), 'the bad frame refused')
      // Served beside the signaling routes by default.
      expect((await fetch(`${cli.url.replace('/signal', '')}/readyz`)).status).toBe(200)
      expect(await (await fetch(`${cli.url.replace('/signal', '')}/metrics`)).text()).toMatch(
        /^politely_messages_relayed_total 1$/m,
      )

      cli.child.kill('SIGTERM')
      expect((await a.closed).code).toBe(1012)
      await cli.exited
      expect(cli.child.exitCode).toBe(0)

      const lines = cli
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
      const refusals = lines
        .filter((line) => line.msg === 'refused')
        .map(({ code, route, address }) => ({ code, route, address }))
      expect(refusals).toEqual([
        { code: 'unauthorized', route: 'sse', address: '127.0.0.1' },
        { code: 'spoofed-sender', route: 'post', address: '127.0.0.1' },
        { code: 'invalid-signal', route: 'websocket', address: '127.0.0.1' },
      ])
      expect(lines.map((line) => line.msg)).toEqual(['listening', 'refused', 'refused', 'refused', 'draining', 'drained'])
      expect(lines.find((line) => line.msg === 'draining')).toMatchObject({ signal: 'SIGTERM', websocket: 1, sse: 0 })
      expect(cli.output()).not.toContain(marker)
      expect(cli.output()).not.toContain(token('a'))
      expect(cli.output()).not.toContain(token('z'))
    } finally {
      await cli.stop()
    }
  })

  test('--no-metrics and --no-health leave those paths to the rest (404); a bad --log-level, --drain-ms or an unknown flag stops it at start (exit 2)', async () => {
    const cli = await startCli(['--no-metrics', '--no-health'])
    try {
      const origin = cli.url.replace('/signal', '')
      for (const path of ['/metrics', '/healthz', '/readyz']) expect((await fetch(`${origin}${path}`)).status).toBe(404)
    } finally {
      await cli.stop()
    }
    await expect(startCli(['--log-level', 'loud'])).rejects.toThrow(/--log-level must be one of fatal, error, warn, info/)
    await expect(startCli(['--drain-ms=-1'])).rejects.toThrow(/--drain-ms must be a number/)
    // An unknown flag: one line and exit 2, no stack trace.
    await expect(startCli(['--metrics-off'])).rejects.toThrow(/exited \(code 2[\s\S]*Unknown option '--metrics-off'/)
  })
})
