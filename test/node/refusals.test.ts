import { createServer } from 'node:http'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import type { PolitelyError } from '../../src/errors'
import { PerfectNegotiationPeer } from '../../src/index'
import type { ReconnectPolicy } from '../../src/reconnect'
import { listen } from '../../src/server/listen'
import type { ServerOptions } from '../../src/server/options'
import type { ServerSignaler, SignalerTrouble } from '../../src/signalers/server-signaler'
import { SseSignaler } from '../../src/signalers/sse'
import { WebSocketSignaler } from '../../src/signalers/websocket'
import { freePort } from '../support/ports'
import { startServer } from '../support/server'
import { wrtcStack } from '../support/stacks'
import { until } from '../support/until'

type Server = Awaited<ReturnType<typeof startServer>>
const quick = () => 50
let rooms = 0
const uniqueRoom = () => `refusal-${process.pid}-${rooms++}`

/** What a test may ask of an adapter: to pose as a page of another origin, a room cap, a policy. */
type Extra = { origin?: string; maxPeers?: number; reconnectDelay?: ReconnectPolicy<SignalerTrouble> }

/** Both adapters, each able to pose as a page of another origin. */
const ADAPTERS = [
  {
    name: 'sse',
    make: (url: string, room: string, extra: Extra = {}) =>
      new SseSignaler({
        url,
        room,
        maxPeers: extra.maxPeers,
        reconnectDelay: extra.reconnectDelay ?? quick,
        fetch: (input, init) =>
          fetch(input, extra.origin ? { ...init, headers: { ...(init?.headers as object), origin: extra.origin } } : init),
      }),
  },
  {
    name: 'websocket',
    make: (url: string, room: string, extra: Extra = {}) =>
      new WebSocketSignaler({
        url,
        room,
        maxPeers: extra.maxPeers,
        reconnectDelay: extra.reconnectDelay ?? quick,
        WebSocket: class extends WebSocket {
          constructor(address: string) {
            super(address, extra.origin ? { origin: extra.origin } : {})
          }
        } as unknown as typeof globalThis.WebSocket,
      }),
  },
]

/** Connects a signaler as `peer`; records its error events and how connect() settled. */
function connect(signaler: ServerSignaler, peer: string) {
  const errors: PolitelyError[] = []
  const state: { settled?: 'resolved' | 'rejected'; error?: PolitelyError } = {}
  signaler
    .connect(peer, { error: (error) => errors.push(error), reset: () => {} })
    .then(() => {
      state.settled = 'resolved'
    })
    .catch((error: PolitelyError) => {
      state.settled = 'rejected'
      state.error = error
    })
  return { errors, state }
}

describe.each(ADAPTERS)('refusals reach the app: $name', ({ make }) => {
  let server: Server
  const signalers: ServerSignaler[] = []
  const signaler = (url: string, room: string, extra: Parameters<typeof make>[2] = {}) => {
    const created = make(url, room, extra)
    signalers.push(created)
    return created
  }
  const own = async (options: ServerOptions) => {
    const started = await startServer(options)
    cleanups.push(() => started.close())
    return started
  }
  const cleanups: Array<() => Promise<void>> = []
  beforeAll(async () => {
    server = await startServer({ authorize: (_request, { room }) => !room.startsWith('private') })
  })
  afterAll(async () => {
    for (const s of signalers) s.close()
    for (const cleanup of cleanups) await cleanup()
    await server.close()
  })

  test('authorize says no: start() rejects with forbidden (403), one error event, no retry', async () => {
    const room = `private-${uniqueRoom()}`
    const peer = new PerfectNegotiationPeer({ signaler: signaler(server.url, room), ...(await wrtcStack()).options() })
    const errors: PolitelyError[] = []
    peer.on('error', (error) => errors.push(error))
    const failure = await peer.start().catch((error: PolitelyError) => error)
    expect(failure).toMatchObject({ code: 'forbidden', status: 403, serverCode: 'forbidden' })
    expect(errors.map((e) => e.code)).toEqual(['forbidden'])
    expect(peer.state).toBe('idle')
    peer.close()
  })

  test('a third peer in a room capped at two: room-full for the newcomer, the pair keeps its seats', async () => {
    const room = uniqueRoom()
    const a = connect(signaler(server.url, room, { maxPeers: 2 }), 'a')
    const b = connect(signaler(server.url, room, { maxPeers: 2 }), 'b')
    await until(() => a.state.settled === 'resolved' && b.state.settled === 'resolved', 'the pair')
    const c = connect(signaler(server.url, room, { maxPeers: 2 }), 'c')
    await until(() => c.state.settled !== undefined, 'the newcomer refused')
    expect(c.state).toMatchObject({ settled: 'rejected', error: { code: 'room-full', status: 403 } })
    expect(c.errors.map((e) => e.code)).toEqual(['room-full'])
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('an id held by another secret: id-taken (409)', async () => {
    const room = uniqueRoom()
    const owner = connect(signaler(server.url, room), 'same')
    await until(() => owner.state.settled === 'resolved', 'the owner')
    const thief = connect(signaler(server.url, room), 'same')
    await until(() => thief.state.settled !== undefined, 'the thief refused')
    expect(thief.state.error).toMatchObject({ code: 'id-taken', status: 409, serverCode: 'id-taken' })
    expect(owner.errors).toEqual([])
  })

  test('a page of another origin: origin-not-allowed (403), unless allowed', async () => {
    const strict = await own({ allowedOrigins: ['http://friend.test'] })
    const foe = connect(signaler(strict.url, uniqueRoom(), { origin: 'http://foe.test' }), 'p')
    await until(() => foe.state.settled !== undefined, 'the refusal')
    expect(foe.state.error).toMatchObject({ code: 'origin-not-allowed', status: 403 })
    const friend = connect(signaler(strict.url, uniqueRoom(), { origin: 'http://friend.test' }), 'p')
    await until(() => friend.state.settled !== undefined, 'the welcome')
    expect(friend.state.settled).toBe('resolved')
    expect(friend.errors).toEqual([])
  })

  test('too many connections from one address: reported once, retried, admitted when a seat frees', async () => {
    const tight = await own({ maxConnectionsPerAddress: 1 })
    const first = signaler(tight.url, uniqueRoom())
    const holder = connect(first, 'holder')
    await until(() => holder.state.settled === 'resolved', 'the first connection')
    const second = connect(signaler(tight.url, uniqueRoom()), 'second')
    await until(() => second.errors.length > 0, 'the refusal')
    // Retried while refused (quick policy: every 50 ms), still reported once.
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(second.errors.map((e) => [e.code, e.status])).toEqual([['too-many-connections', 429]])
    expect(second.state.settled).toBeUndefined()
    first.close()
    await until(() => second.state.settled === 'resolved', 'admission once the first left')
  })

  test('a policy that gives up on a retryable refusal: start() rejects with that refusal', async () => {
    const tight = await own({ maxConnectionsPerAddress: 1 })
    const holder = connect(signaler(tight.url, uniqueRoom()), 'holder')
    await until(() => holder.state.settled === 'resolved', 'the first connection')
    const attempts: Array<string | undefined> = []
    const numbers: number[] = []
    const elapsed: number[] = []
    const giveUp: ReconnectPolicy<SignalerTrouble> = (attempt, reason, since) => {
      attempts.push(reason)
      numbers.push(attempt)
      elapsed.push(since)
      return attempt < 3 ? 20 : undefined
    }
    const refused = connect(signaler(tight.url, uniqueRoom(), { reconnectDelay: giveUp }), 'late')
    await until(() => refused.state.settled !== undefined, 'giving up')
    expect(refused.state.error).toMatchObject({ code: 'too-many-connections' })
    expect(attempts).toEqual(['too-many-connections', 'too-many-connections', 'too-many-connections'])
    // One policy shape: attempts count from 1, and `elapsed` grows from 0 over the streak.
    expect(numbers).toEqual([1, 2, 3])
    expect(elapsed[0]).toBe(0)
    expect(elapsed[2]).toBeGreaterThanOrEqual(40)
  })

  test('no server at the URL: unavailable is reported before any welcome, and connect() goes on trying', async () => {
    const port = await freePort()
    const lost = connect(signaler(`http://127.0.0.1:${port}/signal`, uniqueRoom()), 'lost')
    await until(() => lost.errors.length > 0, 'the report')
    expect(lost.errors[0]).toMatchObject({ code: 'unavailable' })
    expect(lost.state.settled).toBeUndefined()
    // The server appears: the same signaler gets through.
    const late = await startServer({ port })
    cleanups.push(() => late.close())
    await until(() => lost.state.settled === 'resolved', 'the late welcome')
    expect(lost.errors).toHaveLength(1)
  })

  test('closed before any welcome: connect() settles instead of hanging', async () => {
    const port = await freePort()
    const lost = signaler(`http://127.0.0.1:${port}/signal`, uniqueRoom())
    const { state } = connect(lost, 'p')
    await new Promise((resolve) => setTimeout(resolve, 100))
    lost.close()
    await until(() => state.settled !== undefined, 'connect() to settle')
    expect(state.settled).toBe('resolved')
  })

  test('two connections sharing one secret stop replacing each other: one ends with replaced', async () => {
    const room = uniqueRoom()
    const one = signaler(server.url, room)
    const two = signaler(server.url, room)
    // The same secret in two places (copied from a URL, say): the server cannot tell them apart.
    Object.defineProperty(two, 'token', { value: (one as unknown as { token: string }).token })
    const first = connect(one, 'twin')
    const second = connect(two, 'twin')
    await until(() => [...first.errors, ...second.errors].some((e) => e.code === 'replaced'), 'one side to stop', 30_000)
    const stopped = first.errors.some((e) => e.code === 'replaced') ? first : second
    const kept = stopped === first ? second : first
    expect(stopped.errors.map((e) => e.code)).toEqual(['replaced'])
    expect(kept.errors).toEqual([])
    // Settled: the one left keeps its connection (no more replacements).
    const keptSignaler = kept === first ? one : two
    const url = `${server.url}/${room}?peer=listener&token=${'l'.repeat(24)}`
    const listener = new WebSocket(url.replace(/^http/, 'ws'))
    const heard: string[] = []
    listener.on('message', (data) => heard.push(String(data)))
    await until(() => heard.length > 0, 'the listener welcome')
    keptSignaler.send({ kind: 'hello', from: 'twin', session: 7 })
    await until(() => heard.some((frame) => frame.includes('"session":7')), 'a message from the one left')
    listener.close()
  })
})

describe('a 204 on the SSE route stops reconnection (SSE spec)', () => {
  test('start() rejects with the status, and no second request is made', async () => {
    let requests = 0
    const server = createServer((_request, response) => {
      requests++
      response.writeHead(204).end()
    })
    const port = await listen(server, 0, '127.0.0.1')
    try {
      const sse = new SseSignaler({ url: `http://127.0.0.1:${port}/signal`, room: 'r', reconnectDelay: quick })
      const { state, errors } = connect(sse, 'p')
      await until(() => state.settled !== undefined, 'the refusal')
      expect(state.error).toMatchObject({ code: 'signaling-failed', status: 204 })
      expect(errors).toHaveLength(1)
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(requests).toBe(1)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

describe('Retry-After is honoured', () => {
  test('a 429 with Retry-After: 1 is not retried before a second, though the policy says 50 ms', async () => {
    const times: number[] = []
    const server = createServer((_request, response) => {
      times.push(Date.now())
      response
        .writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' })
        .end('{"error":"rate-limited","message":"slow down"}')
    })
    const port = await listen(server, 0, '127.0.0.1')
    try {
      const sse = new SseSignaler({ url: `http://127.0.0.1:${port}/signal`, room: 'r', reconnectDelay: quick })
      const { errors } = connect(sse, 'p')
      await until(() => times.length >= 2, 'the retry')
      sse.close()
      expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(1000)
      expect(errors.map((e) => [e.code, e.status])).toEqual([['rate-limited', 429]])
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
