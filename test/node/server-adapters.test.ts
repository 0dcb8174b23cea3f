import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { PerfectNegotiationPeer } from '../../src/index'
import { counting } from '../support/recording'
import { ADAPTERS, startServer } from '../support/server'
import { afterRemoteCloses, makePeer, opened, roundTrip, STACKS, type Stack, uniqueRoom } from '../support/stacks'
import { until } from '../support/until'

const combos = STACKS.flatMap((stack) => ADAPTERS.map((adapter) => ({ name: `${adapter.name} × ${stack.name}`, stack, adapter })))

describe.each(combos)('$name', ({ stack: stackKind, adapter }) => {
  let stack: Stack
  let server: Awaited<ReturnType<typeof startServer>>
  const peers: PerfectNegotiationPeer[] = []
  const peer = (room: string) => {
    const created = makePeer(stack, room, { signaler: adapter.make(server.url, room) })
    peers.push(created)
    return created
  }
  beforeAll(async () => {
    stack = await stackKind.make()
    server = await startServer()
  })
  afterAll(async () => {
    for (const p of peers) p.close()
    await server.close()
    await stack.close()
  })

  test('two peers connect through the server and exchange data both ways', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b = peer(room)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    await roundTrip(a, b, 'over the server')
    await roundTrip(b, a, 'and back')
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('a first connection that waits for its ICE servers (the server’s, from its welcome; werift: a function) has the stack started meanwhile: one connection made and closed in start()', async () => {
    const room = uniqueRoom()
    const { Counting, made, closed } = counting(stack.options().RTCPeerConnection as typeof RTCPeerConnection)
    // werift's own STUN server (nothing may leave the machine), given by a function: the build waits for it too.
    const list = stack.options().rtcConfig?.iceServers
    const a = makePeer(stack, room, {
      signaler: adapter.make(server.url, room),
      RTCPeerConnection: Counting,
      rtcConfig: Array.isArray(list) ? { iceServers: () => list } : undefined,
    })
    peers.push(a)
    const b = peer(room)
    const starting = a.start()
    // Made in start() itself, before anything was heard from the server.
    expect([made.length, closed.length]).toEqual([1, 0])
    await Promise.all([starting, b.start()])
    await Promise.all([opened(a), opened(b)])
    await roundTrip(a, b, 'after the warm-up')
    // Closed a second after signaling was up, once the real connection was there (a stack that stops with its last connection keeps running).
    await until(() => closed.length === 1, 'the warm-up connection closed', 5000)
    expect([closed[0] === made[0], made.includes(a.connection as RTCPeerConnection), a.connection === made[0]]).toEqual([
      true,
      true,
      false,
    ])
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('with ICE servers of its own (a list) the first connection is made at once, and nothing else', async () => {
    const room = uniqueRoom()
    const { Counting, made, closed } = counting(stack.options().RTCPeerConnection as typeof RTCPeerConnection)
    const a = makePeer(stack, room, {
      signaler: adapter.make(server.url, room),
      RTCPeerConnection: Counting,
      rtcConfig: { iceServers: stack.options().rtcConfig?.iceServers ?? [] },
    })
    peers.push(a)
    const starting = a.start()
    expect([made.length, a.connection === made[0]]).toEqual([1, true])
    await starting
    expect([made.length, closed.length, a.connection === made[0]]).toEqual([1, 0, true])
  })

  test('close() says bye through the server: the remote reports remote-left, once, and recovers nothing', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b = peer(room)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    // The bye leaves before the signaler shuts (a POST under way finishes what is queued), and
    // wins over the channels' closing, which usually reaches `a` first.
    expect(await afterRemoteCloses(a, b)).toEqual({ rebuild: 'remote-left', closes: ['remote-left'], recoveries: [] })
  })

  test('the lost-offer case: the other peer subscribes seconds after everything was sent', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    await a.start()
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const b = peer(room)
    await b.start()
    await Promise.all([opened(a), opened(b)])
    await roundTrip(b, a, 'found you')
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('server killed and restarted on the same port: data keeps flowing, signaling comes back, renegotiation works', async () => {
    const own = await startServer()
    const room = uniqueRoom()
    const make = (r: string) => {
      const created = makePeer(stack, r, { signaler: adapter.make(own.url, r) })
      peers.push(created)
      return created
    }
    const a = make(room)
    const b = make(room)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    const port = own.port
    await own.close()
    // Peer to peer, nothing depends on the server.
    await roundTrip(a, b, 'server is down')
    const again = await startServer({ port })
    try {
      await roundTrip(b, a, 'server is back')
      // A renegotiation needs signaling: it must go through the restarted server.
      a.connection?.addTransceiver('audio', { direction: 'sendrecv' })
      await until(
        () =>
          [a, b].every((p) => p.connection?.signalingState === 'stable' && p.connection.getTransceivers().length === 1) &&
          !!a.connection?.getTransceivers()[0]?.mid,
        'renegotiation through the restarted server',
      )
      expect(a.state).toBe('connected')
      await roundTrip(a, b, 'after renegotiation')
      expect([...a.errors, ...b.errors]).toEqual([])
    } finally {
      await again.close()
    }
  })
})
