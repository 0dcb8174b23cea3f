// TURN end to end on real parts: a real coturn on 127.0.0.1 (shared-secret mode), the real
// politely server minting its credentials, real WebRTC stacks (libwebrtc through politely/legacy,
// werift) with iceTransportPolicy 'relay', so the only path there is goes through coturn.
import wrtc from '@roamhq/wrtc'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { RTCPeerConnection as WeriftPeerConnection } from 'werift'
import { WebSocket } from 'ws'
import { BroadcastChannelSignaler, type PeerOptions } from '../../src/index'
import { legacyPeerConnection, weriftPeerConnection } from '../../src/legacy'
import { Room } from '../../src/room'
import { mintTurnCredentials } from '../../src/server/index'
import { SseSignaler } from '../../src/signalers/sse'
import { WebSocketSignaler } from '../../src/signalers/websocket'
import { stats } from '../../src/stats'
import { startCli } from '../support/cli-server'
import { allocate, type Coturn, coturnServer, startCoturn } from '../support/coturn'
import { describeRequiring } from '../support/requires'
import { startServer } from '../support/server'
import { readEvents } from '../support/sse-reader'
import { makePeer, next, opened, roundTrip, type Stack, uniqueRoom } from '../support/stacks'
import { until } from '../support/until'

/** Relay only: a candidate pair that does not go through coturn is never even tried. */
const RELAY = { iceTransportPolicy: 'relay' } as const

// No STUN server here (werift would fall back to a public one): with relay only and TURN
// credentials, werift gathers from the TURN server alone, and libwebrtc never needs one.
const STACKS: Stack[] = [
  {
    name: 'wrtc',
    options: () => ({ RTCPeerConnection: legacyPeerConnection(wrtc.RTCPeerConnection as unknown as typeof RTCPeerConnection) }),
    close: async () => {},
  },
  {
    name: 'werift',
    options: () => ({
      RTCPeerConnection: weriftPeerConnection(WeriftPeerConnection as unknown as typeof RTCPeerConnection),
    }),
    close: async () => {},
  },
]

/** Counts the requests for fresh credentials that go through it (a real fetch). */
function countingFetch() {
  const counted = Object.assign(
    (input: RequestInfo | URL, init?: RequestInit) => {
      if (String(input).includes('/ice-servers?')) counted.iceRequests++
      return fetch(input, init)
    },
    { iceRequests: 0 },
  )
  return counted
}

const quick = () => 50
const ADAPTERS = {
  sse: (url: string, room: string, fetcher = countingFetch()) =>
    new SseSignaler({ url, room, reconnectDelay: quick, fetch: fetcher }),
  websocket: (url: string, room: string, fetcher = countingFetch()) =>
    new WebSocketSignaler({
      url,
      room,
      reconnectDelay: quick,
      fetch: fetcher,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    }),
}

/**
 * The selected candidate pair from the connection's getStats(): the type of its local and remote
 * candidate (the pair the transport names; else, werift, the nominated one that succeeded).
 */
async function selectedPair(pc: RTCPeerConnection | undefined): Promise<{ local?: string; remote?: string }> {
  if (!pc) return {}
  const report = await pc.getStats()
  type Stat = Record<string, string | boolean | undefined>
  let pair: Stat | undefined
  report.forEach((stat: Stat) => {
    if (stat.type === 'transport' && stat.selectedCandidatePairId) pair ??= report.get(stat.selectedCandidatePairId as string)
  })
  report.forEach((stat: Stat) => {
    if (stat.type === 'candidate-pair' && (stat.selected ?? (stat.nominated && stat.state === 'succeeded'))) pair ??= stat
  })
  return {
    local: report.get(pair?.localCandidateId as string)?.candidateType,
    remote: report.get(pair?.remoteCandidateId as string)?.candidateType,
  }
}

/** The TURN credentials a connection was built with. */
function turnOf(pc: RTCPeerConnection | undefined): RTCIceServer | undefined {
  return pc?.getConfiguration().iceServers?.find((server) => String(server.urls).includes('turn:'))
}

describeRequiring(coturnServer, 'TURN through a real coturn', () => {
  let coturn: Coturn
  let server: Awaited<ReturnType<typeof startServer>>
  const closers: Array<{ close(): unknown }> = []
  const track = <T extends { close(): unknown }>(created: T): T => {
    closers.push(created)
    return created
  }

  beforeAll(async () => {
    coturn = await startCoturn()
    server = await startServer({ turn: { urls: coturn.url, secret: coturn.secret } })
  })
  afterAll(async () => {
    for (const closer of closers) closer.close()
    await server?.close()
    await coturn?.stop()
  })

  for (const stack of STACKS)
    for (const adapter of ['sse', 'websocket'] as const)
      test(`${stack.name} × ${adapter}: relay only, with the credentials the server minted; the selected pair is relay on both sides; data both ways`, async () => {
        const room = uniqueRoom()
        const make = () => track(makePeer(stack, room, { signaler: ADAPTERS[adapter](server.url, room), rtcConfig: RELAY }))
        const a = make()
        const b = make()
        await Promise.all([a.start(), b.start()])
        await Promise.all([opened(a), opened(b)])
        await roundTrip(a, b, 'through coturn')
        await roundTrip(b, a, 'and back through coturn')
        for (const p of [a, b]) {
          expect(await selectedPair(p.connection)).toEqual({ local: 'relay', remote: 'relay' })
          expect((await stats(p.connection)).candidateType).toBe('relay')
          // Minted for this peer by the server: <expiry>:<peer id>.
          expect(turnOf(p.connection)?.username).toMatch(new RegExp(`^\\d+:${p.id}$`))
        }
        expect([...a.errors, ...b.errors]).toEqual([])
      })

  test('a room of three (wrtc, WebSocket): every link is built with the server’s credentials and relays', async () => {
    const room = uniqueRoom()
    const members = [0, 1, 2].map(() =>
      track(new Room({ signaler: ADAPTERS.websocket(server.url, room), rtcConfig: RELAY, ...STACKS[0]!.options() })),
    )
    const errors: Error[] = []
    for (const member of members) member.on('error', (error) => errors.push(error))
    await Promise.all(members.map((member) => member.start()))
    await until(
      () => members.every((member) => member.peers.length === 2 && member.peers.every(({ state }) => state === 'connected')),
      'every link of the room open',
    )
    for (const member of members)
      for (const { id } of member.peers)
        expect(await selectedPair(member.connection(id))).toEqual({ local: 'relay', remote: 'relay' })
    expect(errors).toEqual([])
  })

  for (const adapter of ['sse', 'websocket'] as const)
    test(`${adapter}: credentials expire (coturn refuses them), the open connection keeps working, and a rebuild fetches fresh ones and relays`, async () => {
      // Credentials valid for 3 s: the signaler takes fresh ones once half of that has passed.
      const short = track(await startServer({ turn: { urls: coturn.url, secret: coturn.secret, ttl: 3 } }))
      const room = uniqueRoom()
      const fetcher = countingFetch()
      const a = track(makePeer(STACKS[0]!, room, { signaler: ADAPTERS[adapter](short.url, room, fetcher), rtcConfig: RELAY }))
      const b = track(makePeer(STACKS[0]!, room, { signaler: ADAPTERS[adapter](short.url, room), rtcConfig: RELAY }))
      await Promise.all([a.start(), b.start()])
      await Promise.all([opened(a), opened(b)])
      const first = turnOf(a.connection)!
      expect(await allocate(coturn.port, first.username, first.credential as string)).toBe('allocated')
      // Waiting for the expiry itself: coturn refuses an allocation with them (401).
      await until(
        async () => (await allocate(coturn.port, first.username, first.credential as string)) === 401,
        'coturn refusing',
        10_000,
      )
      // Credentials are checked when a relay is allocated, not afterwards: the call goes on.
      await roundTrip(a, b, 'after the credentials expired')
      await roundTrip(b, a, 'both ways')
      expect(fetcher.iceRequests).toBe(0)

      // b leaves and a newcomer joins: a rebuilds (remote-left), asks its signaler, which fetches.
      const rebuilt = next<{ reason: string }>((h) => a.on('rebuild', h))
      b.close()
      expect((await rebuilt).reason).toBe('remote-left')
      const c = track(makePeer(STACKS[0]!, room, { signaler: ADAPTERS[adapter](short.url, room), rtcConfig: RELAY }))
      await c.start()
      await Promise.all([opened(a), opened(c)])
      await roundTrip(a, c, 'with fresh credentials')
      expect(fetcher.iceRequests).toBeGreaterThanOrEqual(1)
      const fresh = turnOf(a.connection)!
      expect(Number(fresh.username?.split(':')[0])).toBeGreaterThan(Number(first.username?.split(':')[0]))
      expect(await selectedPair(a.connection)).toEqual({ local: 'relay', remote: 'relay' })
      expect([...a.errors, ...c.errors]).toEqual([])
    })

  describe('rtcConfig.iceServers as a function (werift, BroadcastChannel)', () => {
    const mint = (user: string): RTCIceServer[] => [
      { urls: coturn.url, ...mintTurnCredentials({ secret: coturn.secret, user, ttl: 60 }) },
    ]
    const peer = (room: string, options: Partial<PeerOptions>) =>
      track(makePeer(STACKS[1]!, room, { signaler: new BroadcastChannelSignaler({ room }), ...options }))

    test('asked before every connection is built (the first, then each rebuild): each one relays with what it gave', async () => {
      const room = uniqueRoom()
      const calls = { a: 0, b: 0 }
      const a = peer(room, { rtcConfig: { ...RELAY, iceServers: async () => mint(`a${++calls.a}`) } })
      const b = peer(room, { rtcConfig: { ...RELAY, iceServers: () => mint(`b${++calls.b}`) } })
      await Promise.all([a.start(), b.start()])
      await Promise.all([opened(a), opened(b)])
      await roundTrip(a, b, 'first')
      // The open connection was built with what the latest call gave (a1, unless a load-slowed start rebuilt it).
      expect(turnOf(a.connection)?.username).toMatch(new RegExp(`:a${calls.a}$`))
      expect(await selectedPair(a.connection)).toEqual({ local: 'relay', remote: 'relay' })
      const before = { ...calls }

      // b leaves; a newcomer takes its place: a builds again, and asks again.
      const rebuilt = next<{ reason: string }>((h) => a.on('rebuild', h))
      b.close()
      await rebuilt
      const c = peer(room, { rtcConfig: { ...RELAY, iceServers: async () => mint('c') } })
      await c.start()
      await Promise.all([opened(a), opened(c)])
      await roundTrip(c, a, 'second')
      expect(calls.a).toBeGreaterThan(before.a)
      expect(turnOf(a.connection)?.username).toMatch(new RegExp(`:a${calls.a}$`))
      expect(await selectedPair(a.connection)).toEqual({ local: 'relay', remote: 'relay' })
      expect([...a.errors, ...c.errors]).toEqual([])
    })

    test('one that throws, then rejects: an ice-servers-failed error each time, retried as a failed build, then connects', async () => {
      const room = uniqueRoom()
      let calls = 0
      const failing = () => {
        calls++
        if (calls === 1) throw new Error('credential service down')
        if (calls === 2) return Promise.reject(new Error('credential service still down'))
        return Promise.resolve(mint('a'))
      }
      const a = peer(room, { rtcConfig: { ...RELAY, iceServers: failing } })
      const b = peer(room, { rtcConfig: { ...RELAY, iceServers: async () => mint('b') } })
      const reconnecting: string[] = []
      a.on('reconnecting', ({ reason }) => reconnecting.push(reason))
      await Promise.all([a.start(), b.start()])
      await Promise.all([opened(a), opened(b)])
      await roundTrip(a, b, 'after two failures')
      // Asked once per build: the two that failed, then each one after (at least the one that opened).
      expect(calls).toBeGreaterThanOrEqual(3)
      expect(a.errors.map((error) => [(error as { code?: string }).code, ((error as Error).cause as Error).message])).toEqual([
        ['ice-servers-failed', 'credential service down'],
        ['ice-servers-failed', 'credential service still down'],
      ])
      expect(reconnecting.slice(0, 2)).toEqual(['failed', 'failed'])
      expect(await selectedPair(a.connection)).toEqual({ local: 'relay', remote: 'relay' })
    })

    test('the app’s list wins over the server’s: iceServers [] means none, even where the server offers TURN', async () => {
      const room = uniqueRoom()
      const a = track(
        makePeer(STACKS[0]!, room, { signaler: ADAPTERS.websocket(server.url, room), rtcConfig: { iceServers: [] } }),
      )
      const b = track(makePeer(STACKS[0]!, room, { signaler: ADAPTERS.websocket(server.url, room) }))
      await Promise.all([a.start(), b.start()])
      await Promise.all([opened(a), opened(b)])
      expect(a.connection?.getConfiguration().iceServers).toEqual([])
      expect(turnOf(b.connection)?.username).toMatch(new RegExp(`:${b.id}$`))
      // Neither side relays: b's relay candidates are tried, but a host pair wins.
      expect((await selectedPair(a.connection)).local).toBe('host')
    })
  })

  describe('the ice-servers route', () => {
    const route = (url: string, room: string, query: string, token?: string) =>
      fetch(`${url}/${room}/ice-servers?${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })

    test('the welcome carries credentials for the peer; the route gives fresh ones to the token that holds the id; 401 otherwise; 404 without TURN', async () => {
      const room = uniqueRoom()
      const token = 'holders-own-token-0123456789'
      const stream = track(await readEvents(`${server.url}/${room}?peer=holder&token=${token}`))
      await until(() => stream.events.some(({ event }) => event === 'welcome'), 'the welcome')
      const welcome = JSON.parse(stream.events.find(({ event }) => event === 'welcome')?.data ?? '{}')
      expect(welcome).toMatchObject({ peer: 'holder', ttl: 3600, iceServers: [{ urls: [coturn.url] }] })
      expect(welcome.iceServers[0].username).toMatch(/^\d+:holder$/)

      const fresh = await route(server.url, room, 'peer=holder', token)
      expect(fresh.status).toBe(200)
      const body = await fresh.json()
      expect(body).toMatchObject({ ttl: 3600, iceServers: [{ urls: [coturn.url] }] })
      expect(body.iceServers[0].username).toMatch(/^\d+:holder$/)
      expect(await allocate(coturn.port, body.iceServers[0].username, body.iceServers[0].credential)).toBe('allocated')
      expect(JSON.stringify([welcome, body])).not.toContain(coturn.secret)

      expect((await route(server.url, room, 'peer=holder')).status).toBe(401)
      expect((await route(server.url, room, 'peer=holder', 'someone-elses-token-0123456')).status).toBe(401)
      expect((await route(server.url, room, 'peer=someone-else', token)).status).toBe(401)
      // Not a second way to publish.
      const posted = await fetch(`${server.url}/${room}/ice-servers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'bye', from: 'holder', session: 1 }),
      })
      expect([posted.status, (await posted.json()).error]).toEqual([405, 'method-not-allowed'])
      const plain = track(await startServer())
      const refused = await route(plain.url, room, 'peer=holder', token)
      expect([refused.status, (await refused.json()).error]).toEqual([404, 'not-found'])
    })
  })

  describe('politely-server --turn-url, --turn-secret, --turn-ttl and TURN_URL, TURN_SECRET, TURN_TTL', () => {
    test('from the flags: peers get the credentials, and the secret is printed nowhere', async () => {
      const cli = await startCli(['--turn-url', coturn.url, '--turn-secret', coturn.secret, '--turn-ttl', '120'])
      try {
        const room = uniqueRoom()
        const a = track(makePeer(STACKS[0]!, room, { signaler: ADAPTERS.websocket(cli.url, room), rtcConfig: RELAY }))
        const b = track(makePeer(STACKS[0]!, room, { signaler: ADAPTERS.sse(cli.url, room), rtcConfig: RELAY }))
        await Promise.all([a.start(), b.start()])
        await Promise.all([opened(a), opened(b)])
        await roundTrip(a, b, 'via the CLI')
        const expiry = Number(turnOf(a.connection)?.username?.split(':')[0])
        expect(expiry - Date.now() / 1000).toBeGreaterThan(100)
        expect(expiry - Date.now() / 1000).toBeLessThanOrEqual(120)
        expect(cli.report()).toContain(`politely TURN credentials: ${coturn.url} (valid 120 s)`)
        expect(cli.report()).not.toContain(coturn.secret)
      } finally {
        await cli.stop()
      }
    })

    test('from the environment', async () => {
      const cli = await startCli([], {
        TURN_URL: `${coturn.url},turn:127.0.0.1:${coturn.port}?transport=tcp`,
        TURN_SECRET: coturn.secret,
      })
      try {
        expect(cli.report()).toContain(
          `politely TURN credentials: ${coturn.url},turn:127.0.0.1:${coturn.port}?transport=tcp (valid 3600 s)`,
        )
        expect(cli.report()).not.toContain(coturn.secret)
      } finally {
        await cli.stop()
      }
    })

    test.each([
      [['--turn-url', 'turn:127.0.0.1:3478'], {}, '--turn-url and --turn-secret (or TURN_URL and TURN_SECRET) go together'],
      [['--turn-url', 'turn:127.0.0.1:3478', '--turn-ttl', 'soon'], { TURN_SECRET: 'hunter2' }, '--turn-ttl (TURN_TTL): "soon"'],
      [
        [],
        { TURN_URL: 'udp://127.0.0.1:3478', TURN_SECRET: 'hunter2' },
        '--turn-url (TURN_URL): "udp://127.0.0.1:3478" is not a URL',
      ],
    ])('%j %j: exits 2 with "%s", never showing the secret', async (args, env, message) => {
      const failed = await startCli(args, env).then(
        (cli) => cli.stop().then(() => 'started'),
        (error: Error) => error.message,
      )
      expect(failed).toContain('exited (code 2')
      expect(failed).toContain(message)
      expect(failed).not.toContain('hunter2')
    })
  })
})
