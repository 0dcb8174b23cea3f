// Network drops on a live connection: the peer-to-peer path is cut (UDP dropped by
// nftables) while signaling stays up, then restored. libwebrtc only: werift stops
// carrying data after an ICE restart (see resilience.test.ts).
import { afterEach, expect, test } from 'vitest'
import { BroadcastChannelSignaler, type PeerEvents } from '../../src/index'
import { canCutPaths, PathCut, udpOnly } from '../support/path-cut'
import { describeRequiring } from '../support/requires'
import { makePeer, opened, roundTrip, uniqueRoom, wrtcStack } from '../support/stacks'
import { until } from '../support/until'

const nft = {
  name: 'nft (as root)',
  present: canCutPaths(),
  install: 'sudo apt-get install nftables, and run the tests as root',
  override: 'PATH',
  looked: 'nft on the PATH, allowed to add a table',
}

type Recorded = Array<{ type: string; event: unknown }>
function record(peer: ReturnType<typeof makePeer>, types: Array<keyof PeerEvents>): Recorded {
  const seen: Recorded = []
  for (const type of types) peer.on(type, (event) => seen.push({ type, event }))
  return seen
}

describeRequiring(nft, 'the peer-to-peer path cut while signaling stays up', () => {
  const cuts: PathCut[] = []
  const peers: Array<ReturnType<typeof makePeer>> = []
  afterEach(() => {
    for (const cut of cuts.splice(0)) cut.restore()
    for (const peer of peers.splice(0)) peer.close()
  })

  /** `a` (whose path gets cut) and `b`; `onlyA` options apply to `a` alone. */
  async function pair(portBase: number, options: Parameters<typeof makePeer>[2] = {}, onlyA: typeof options = {}) {
    const stack = await wrtcStack()
    const room = uniqueRoom()
    const cut = new PathCut(portBase, portBase + 99)
    cuts.push(cut)
    const signaler = () => udpOnly(new BroadcastChannelSignaler({ room }))
    const a = makePeer(stack, room, { ...options, ...onlyA, rtcConfig: cut.rtcConfig, signaler: signaler() })
    const b = makePeer(stack, room, { ...options, signaler: signaler() })
    peers.push(a, b)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    return { a, b, cut }
  }

  test('a short cut: ICE restarts, the same connection comes back, messages sent meanwhile arrive in order', async () => {
    // A stall timeout longer than the test's cut: only the ICE restart can bring it back.
    const { a, b, cut } = await pair(20100, { stallTimeout: 15_000 })
    const connections = [a.connection, b.connection]
    const events = [
      record(a, ['reconnecting', 'reconnected', 'rebuild', 'close']),
      record(b, ['reconnecting', 'reconnected', 'rebuild', 'close']),
    ]
    const received: string[] = []
    b.on('message', ({ data }) => received.push(data as string))
    const offers: unknown[] = []
    for (const peer of [a, b])
      peer.on('signal', ({ direction, message }) => {
        if (direction === 'out' && message.kind === 'description' && message.description.type === 'offer') offers.push(message)
      })
    cut.cut()
    // Both lose consent at about the same time; either may act first (the other then answers its restart).
    await until(() => events.some((seen) => seen.some((e) => e.type === 'reconnecting')), 'ICE trouble noticed', 30_000)
    for (let i = 0; i < 20; i++) a.send(`during the cut ${i}`)
    // The restart's offer and answer go through signaling; its checks cannot pass the cut.
    await until(() => offers.length > 0, 'an ICE restart', 10_000)
    cut.restore()
    await until(() => received.length === 20, 'the messages sent during the cut', 20_000)
    expect(received).toEqual(Array.from({ length: 20 }, (_, i) => `during the cut ${i}`))
    expect([a.connection, b.connection]).toEqual(connections)
    for (const seen of events) {
      expect(seen.filter((e) => e.type === 'rebuild' || e.type === 'close')).toEqual([])
      if (!seen.some((e) => e.type === 'reconnecting')) continue
      expect(seen.find((e) => e.type === 'reconnecting')?.event).toMatchObject({ attempt: 1 })
      await until(() => seen.some((e) => e.type === 'reconnected'), 'reconnected')
    }
    await roundTrip(b, a, 'after the restart')
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('a long cut: the ICE restart does not bring it back, the connection is rebuilt, queued messages arrive once the path is back', async () => {
    const { a, b, cut } = await pair(20200, { stallTimeout: 1000 })
    const kinds: Array<keyof PeerEvents> = ['reconnecting', 'reconnected', 'rebuild', 'close']
    const events = [record(a, kinds), record(b, kinds)]
    const received: string[] = []
    b.on('message', ({ data }) => received.push(data as string))
    cut.cut()
    await until(() => events[0]?.some((e) => e.type === 'rebuild') ?? false, 'a rebuild', 40_000)
    // The channels are closed now: these wait in the queue for the next connection.
    for (let i = 0; i < 20; i++) a.send(`queued ${i}`)
    cut.restore()
    await until(() => received.length === 20, 'the queued messages, over a new connection', 40_000)
    expect(received).toEqual(Array.from({ length: 20 }, (_, i) => `queued ${i}`))
    // Whichever side noticed first rebuilt (the other may have followed its hello: remote-restarted);
    // every side that was recovering counted its attempts 1, 2, … and reported them when back.
    const recovering = events.filter((seen) => seen.some((e) => e.type === 'reconnecting'))
    expect(recovering.length).toBeGreaterThan(0)
    for (const seen of recovering) {
      await until(() => seen.some((e) => e.type === 'reconnected'), 'back')
      const attempts = seen.filter((e) => e.type === 'reconnecting').map((e) => (e.event as { attempt: number }).attempt)
      expect(attempts).toEqual(attempts.map((_, i) => i + 1))
      expect(seen.find((e) => e.type === 'reconnected')?.event).toEqual({ attempts: attempts.length })
    }
    await roundTrip(b, a, 'after the rebuild')
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('a long cut: what is sent once the trouble was noticed waits in the queue, and arrives over the rebuilt connection', async () => {
    const { a, b, cut } = await pair(20400, { stallTimeout: 1000 })
    const seen = record(a, ['reconnecting', 'rebuild'])
    const received: string[] = []
    b.on('message', ({ data }) => received.push(data as string))
    cut.cut()
    await until(() => seen.some((e) => e.type === 'reconnecting'), 'ICE trouble noticed', 40_000)
    // The channels are still open: without holding, these would go into a connection about to be thrown away.
    const rebuiltYet = seen.some((e) => e.type === 'rebuild')
    for (let i = 0; i < 20; i++) a.send(`after the trouble ${i}`)
    await until(() => seen.some((e) => e.type === 'rebuild'), 'a rebuild', 40_000)
    cut.restore()
    await until(() => received.length === 20, 'every message sent after the trouble was noticed', 40_000)
    expect(rebuiltYet).toBe(false)
    expect(received).toEqual(Array.from({ length: 20 }, (_, i) => `after the trouble ${i}`))
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('a policy that gives up closes the peer with `gave-up`', async () => {
    // Only `a` gives up: were `b` to give up first, its `bye` would make `a` rebuild instead.
    // Gives up on the second attempt: the policy sees attempts 1, 2 and the time since the trouble began.
    const calls: Array<[number, string, number]> = []
    const policy = (attempt: number, reason: string, elapsed: number) => {
      calls.push([attempt, reason, elapsed])
      return attempt < 2 ? 0 : undefined
    }
    const { a, cut } = await pair(20300, {}, { reconnectDelay: policy })
    const closes: unknown[] = []
    a.on('close', (event) => closes.push(event))
    cut.cut()
    await until(() => a.state === 'closed', 'the peer gives up', 30_000)
    expect(closes.at(-1)).toEqual({ reason: 'gave-up' })
    expect(calls.map(([attempt]) => attempt)).toEqual([1, 2])
    expect(calls[0]?.[2]).toBe(0)
    expect(calls[1]?.[2]).toBeGreaterThan(0)
    expect(() => a.send('too late')).toThrow(expect.objectContaining({ code: 'closed' }))
  })
})
