import { describe, expect, test } from 'vitest'
import { type PairingState, type RemoteRecord, routeSignal } from '../../src/pairing'
import type { SignalMessage } from '../../src/protocol'
import { prng } from '../support/chaos'

const base = (over: Partial<PairingState> = {}): PairingState => ({ id: 'me', session: 1, open: false, retired: [], ...over })
const hello = (over: Partial<SignalMessage> = {}) => ({ kind: 'hello', from: 'you', session: 1, ...over }) as SignalMessage
const offer = (over: Record<string, unknown> = {}) =>
  ({
    kind: 'description',
    from: 'you',
    to: 'me',
    session: 1,
    toSession: 1,
    description: { type: 'offer', sdp: 'x' },
    ...over,
  }) as SignalMessage

describe('routeSignal rules', () => {
  test('ignores our own messages and messages for someone else', () => {
    expect(routeSignal(base(), hello({ from: 'me' }))).toEqual({ drop: 'not-for-me' })
    expect(routeSignal(base(), hello({ to: 'other' }))).toEqual({ drop: 'not-for-me' })
  })

  test('first hello from a stranger: pair and reply', () => {
    expect(routeSignal(base(), hello())).toMatchObject({ pair: 1, reply: true, deliver: false })
  })

  test('a hello that already names our session pairs without a reply', () => {
    expect(routeSignal(base(), hello({ to: 'me', toSession: 1 } as never))).toMatchObject({ pair: 1, reply: false })
  })

  test('an offer that outran its hello pairs and is delivered', () => {
    expect(routeSignal(base(), offer())).toMatchObject({ pair: 1, deliver: true })
  })

  test('a description that outran its hello: the hello that follows is the same instance, not a new one', () => {
    const first = routeSignal(base(), offer())
    expect(first).toMatchObject({ pair: 1, deliver: true, remote: { id: 'you', since: 0 } })
    const state = base({ paired: 1, remote: (first as { remote: RemoteRecord }).remote })
    const late = routeSignal(state, hello({ since: 500, to: 'me', toSession: 1 } as never))
    expect(late).toMatchObject({ remote: { id: 'you', since: 500 } })
    expect(late).not.toHaveProperty('rebuild', 'remote-replaced')
    // …but a hello whose session went back is a restarted instance under the same id.
    const restarted = routeSignal(
      { ...state, remote: { id: 'you', since: 0, latest: 3, used: 0 }, paired: 3 },
      hello({ since: 900 } as never),
    )
    expect(restarted).toMatchObject({ rebuild: 'remote-replaced', remote: { since: 900 } })
  })

  test('an offer for an older session of ours is stale', () => {
    const state = base({ session: 2, paired: 1, remote: { id: 'you', since: 0, latest: 1, used: 0 } })
    expect(routeSignal(state, offer({ toSession: 1 }))).toEqual({ drop: 'stale-session' })
  })

  test('a message from an older remote session is stale', () => {
    const state = base({ paired: 3, remote: { id: 'you', since: 0, latest: 3, used: 2 } })
    expect(routeSignal(state, hello({ session: 2 }))).toEqual({ drop: 'stale-session' })
    expect(routeSignal(state, offer({ session: 2 }))).toEqual({ drop: 'stale-session' })
  })

  test('a newer remote session means the remote rebuilt: rebuild too, pair, reply', () => {
    const state = base({ paired: 1, remote: { id: 'you', since: 0, latest: 1, used: 0 } })
    expect(routeSignal(state, hello({ session: 2 }))).toMatchObject({
      rebuild: 'remote-restarted',
      remote: { id: 'you', since: 0, latest: 2, used: 1 },
      pair: 2,
      deliver: false,
      reply: true,
    })
  })

  test('a new remote id takes the seat once our connection is unpaired (the old one was lost or rebuilt)', () => {
    const state = base({ remote: { id: 'you', since: 10, latest: 1, used: 1 } })
    expect(routeSignal(state, hello({ from: 'you2', since: 20 } as never))).toMatchObject({
      pair: 1,
      remote: { id: 'you2', since: 20 },
    })
    // …while paired, even before it opens, the pair holds: a room is for two.
    expect(routeSignal({ ...state, paired: 1 }, hello({ from: 'you2', since: 20 } as never))).toEqual({ drop: 'other-peer' })
  })

  test('an instance that said bye is dropped; the same id started later is a new instance', () => {
    const state = base({ retired: [{ id: 'you', since: 100 }] })
    expect(routeSignal(state, hello({ since: 100 } as never))).toEqual({ drop: 'retired-peer' })
    expect(routeSignal(state, offer())).toEqual({ drop: 'retired-peer' })
    expect(routeSignal(state, hello({ since: 200 } as never))).toMatchObject({ pair: 1, remote: { id: 'you', since: 200 } })
    // Once that new instance is known, what it sends without a start time (descriptions, candidates) is taken too.
    const rejoined = { ...state, paired: 3, remote: { id: 'you', since: 200, latest: 3, used: 0 } }
    expect(routeSignal(rejoined, offer({ session: 3 }))).toMatchObject({ deliver: true })
    // While the remote we know is the retired instance itself (a bye not yet applied), nothing is.
    const stale = { ...state, paired: 3, remote: { id: 'you', since: 100, latest: 3, used: 0 } }
    expect(routeSignal(stale, offer({ session: 3 }))).toEqual({ drop: 'retired-peer' })
  })

  test('a live pair is not broken by another id, older or newer (a third peer waits for a seat)', () => {
    const state = base({ paired: 1, open: true, remote: { id: 'you', since: 100, latest: 1, used: 0 } })
    expect(routeSignal(state, hello({ from: 'ghost', since: 50 } as never))).toEqual({ drop: 'other-peer' })
    expect(routeSignal(state, hello({ from: 'ghost', to: 'me' } as never))).toEqual({ drop: 'other-peer' })
    expect(routeSignal(state, hello({ from: 'you2', since: 150 } as never))).toEqual({ drop: 'other-peer' })
    expect(routeSignal(state, offer({ from: 'you2' }))).toEqual({ drop: 'other-peer' })
    // Unpaired (the old connection went and was rebuilt): a later instance takes the free seat, an older one does not.
    const free = { ...state, open: false, paired: undefined }
    expect(routeSignal(free, hello({ from: 'you2', since: 150 } as never))).toMatchObject({ pair: 1, remote: { id: 'you2' } })
    expect(routeSignal(free, hello({ from: 'ghost', since: 50 } as never))).toEqual({ drop: 'other-peer' })
    // …unless it answers our current session: it is alive now, whatever its age (our remote may be the dead one).
    expect(routeSignal(free, hello({ from: 'ghost', since: 50, to: 'me', toSession: 1 } as never))).toMatchObject({
      pair: 1,
      remote: { id: 'ghost' },
    })
  })

  test('the same id started again (an app that reuses ids) is a new instance: its session 1 is not stale', () => {
    const state = base({ paired: 7, open: true, remote: { id: 'you', since: 100, latest: 7, used: 6 } })
    expect(routeSignal(state, hello({ session: 1, since: 300 } as never))).toMatchObject({
      rebuild: 'remote-replaced',
      remote: { id: 'you', since: 300, latest: 1, used: 0 },
      pair: 1,
    })
  })

  test('bye from the remote retires it and rebuilds; from a stranger it is ignored', () => {
    const state = base({ paired: 1, remote: { id: 'you', since: 0, latest: 1, used: 0 } })
    expect(routeSignal(state, { kind: 'bye', from: 'you', session: 1 })).toMatchObject({
      retire: { id: 'you' },
      rebuild: 'remote-left',
    })
    expect(routeSignal(state, { kind: 'bye', from: 'x', session: 1 })).toEqual({ drop: 'not-for-me' })
  })

  test('a fresh connection does not pair with a remote session an earlier one used', () => {
    const state = base({ session: 2, remote: { id: 'you', since: 0, latest: 1, used: 1 } })
    expect(routeSignal(state, hello())).toMatchObject({ deliver: false, reply: true })
    expect((routeSignal(state, hello()) as { pair?: number }).pair).toBeUndefined()
  })

  test('a session that names an older session of ours belongs to it: remembered as used, not paired', () => {
    const route = routeSignal(base({ session: 2 }), hello({ to: 'me', toSession: 1 } as never))
    expect(route).toMatchObject({ remote: { id: 'you', since: 0, latest: 1, used: 1 }, reply: true })
    expect((route as { pair?: number }).pair).toBeUndefined()
    // …so its delayed broadcast hello does not pair either.
    const later = routeSignal(base({ session: 2, remote: { id: 'you', since: 0, latest: 1, used: 1 } }), hello())
    expect((later as { pair?: number }).pair).toBeUndefined()
  })

  test('a broadcast hello from the paired session is answered; an addressed one is not', () => {
    const state = base({ paired: 1, remote: { id: 'you', since: 0, latest: 1, used: 0 } })
    expect(routeSignal(state, hello())).toMatchObject({ deliver: false, reply: true })
    expect(routeSignal(state, hello({ to: 'me', toSession: 1 } as never))).toMatchObject({ deliver: false, reply: false })
  })
})

/**
 * A model of two peers applying routeSignal the way PerfectNegotiationPeer
 * does, over a network that reorders, duplicates and delays, with random
 * stalls (watchdog rebuilds). Whatever happens, they must end paired with
 * each other's current sessions, without rebuilding forever.
 */
describe('pairing converges under chaos (model)', () => {
  interface SimPeer {
    id: string
    session: number
    paired?: number
    remote?: RemoteRecord
    rebuilds: number
  }
  type Wire = { at: number; message: SignalMessage }

  function simulate(seed: number) {
    const random = prng(seed)
    const peers: SimPeer[] = [
      { id: 'a', session: 1, rebuilds: 0 },
      { id: 'b', session: 1, rebuilds: 0 },
    ]
    let wire: Wire[] = []
    let now = 0
    const send = (from: SimPeer, body: Record<string, unknown>, to?: string) => {
      const message = { ...body, from: from.id, session: from.session, ...(to ? { to } : {}) } as SignalMessage
      const copies = random() < 0.2 ? 2 : 1
      for (let i = 0; i < copies; i++) wire.push({ at: now + Math.floor(random() * 30), message })
    }
    const helloFrom = (peer: SimPeer, to?: string) =>
      send(peer, to && peer.paired !== undefined ? { kind: 'hello', toSession: peer.paired } : { kind: 'hello' }, to)
    const rebuild = (peer: SimPeer) => {
      if (peer.paired !== undefined && peer.remote) peer.remote.used = Math.max(peer.remote.used, peer.paired)
      peer.session++
      peer.paired = undefined
      peer.rebuilds++
    }
    const pair = (peer: SimPeer, id: string, session: number) => {
      peer.paired = session
      // A paired impolite side offers at once, as the real peer does.
      if (peer.id > id) send(peer, { kind: 'description', toSession: session, description: { type: 'offer', sdp: 's' } }, id)
    }
    const receive = (peer: SimPeer, message: SignalMessage) => {
      const before = `${peer.id}[s${peer.session} p${peer.paired} l${peer.remote?.latest} u${peer.remote?.used}]`
      const route = routeSignal(
        { id: peer.id, session: peer.session, paired: peer.paired, open: false, remote: peer.remote, retired: [] },
        message,
      )
      if (process.env.TRACE && peer.id !== message.from)
        console.log(now, before, JSON.stringify(message), '→', JSON.stringify(route))
      if (route.drop) return
      if (route.retire) peer.remote = undefined
      if (route.rebuild) rebuild(peer)
      if (route.remote) peer.remote = route.remote
      if (route.pair) pair(peer, message.from, route.pair)
      if (route.reply) helloFrom(peer, message.from)
    }
    // Staggered starts.
    helloFrom(peers[0] as SimPeer)
    now = Math.floor(random() * 40)
    helloFrom(peers[1] as SimPeer)
    let stalls = 6
    for (let step = 0; step < 5000 && (wire.length || stalls); step++) {
      if (!wire.length || (stalls && random() < 0.02)) {
        // The watchdog of one side fires.
        stalls--
        const peer = peers[Math.floor(random() * 2)] as SimPeer
        if (process.env.TRACE) console.log(now, 'STALL', peer.id)
        rebuild(peer)
        helloFrom(peer, peer.remote?.id)
        continue
      }
      wire.sort((x, y) => x.at - y.at)
      const [next, ...rest] = wire
      wire = rest
      now = (next as Wire).at
      for (const peer of peers) receive(peer, (next as Wire).message)
    }
    return { peers, wire }
  }

  test.each(Array.from({ length: 1000 }, (_, i) => i + 1))('seed %i', (seed) => {
    const { peers, wire } = simulate(seed)
    const [a, b] = peers as [SimPeer, SimPeer]
    expect(wire).toEqual([])
    expect(a.paired).toBe(b.session)
    expect(b.paired).toBe(a.session)
    expect(a.rebuilds + b.rebuilds).toBeLessThan(20)
  })
})
