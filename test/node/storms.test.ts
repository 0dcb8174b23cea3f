// Renegotiation storms that do not wait for the last round: both sides add transceivers, open
// data channels and restart ICE at the same instant, round after round, at random gaps of
// 0–10 ms. Perfect negotiation must absorb all of it: no error event, no rebuild, no close,
// both sides stable with the same transceivers at the end, and a bounded number of offers.
import { describe, expect, test } from 'vitest'
import type { PerfectNegotiationPeer } from '../../src/index'
import { prng } from '../support/chaos'
import { next, opened, roundTrip, STACKS, uniqueRoom, useStack, wrtcStack } from '../support/stacks'
import { until } from '../support/until'

type Peer = PerfectNegotiationPeer & { errors: Error[] }
type Action = 'transceiver' | 'channel' | 'restart'
const ROUNDS = 12

/** What a storm did to a peer: events that must not happen, and the offers it sent. */
function watch(peer: Peer) {
  const seen = { rebuilds: 0, closes: 0, offers: 0, lastOffer: 0 }
  peer.on('rebuild', () => seen.rebuilds++)
  peer.on('close', () => seen.closes++)
  peer.on('signal', ({ direction, message }) => {
    if (direction === 'out' && message.kind === 'description' && message.description.type === 'offer') {
      seen.offers++
      seen.lastOffer = Date.now()
    }
  })
  return seen
}

/** One storm action on a peer's live connection: one of `actions`, chosen by `pick` (0…1). */
function act(peer: Peer, actions: readonly Action[], pick: number, name: string): void {
  const pc = peer.connection as RTCPeerConnection
  const action = actions[Math.floor(pick * actions.length)]
  if (action === 'transceiver') pc.addTransceiver(pick < 0.2 ? 'audio' : 'video', { direction: 'recvonly' })
  else if (action === 'channel') pc.createDataChannel(name)
  else pc.restartIce()
}

// What each stack is stormed with: everything, on both. werift's glare with new transceivers needs
// politely/legacy's weriftPeerConnection (see src/werift.ts), which the werift stack here uses.
// After any ICE restart werift 0.24 carries no more data (see resilience.test.ts), so a werift storm
// with restarts is checked for settling, errors, rebuilds and offers, and one without restarts for
// data as well.
const STORMS = {
  wrtc: [{ actions: ['transceiver', 'channel', 'restart'] as Action[], data: true }],
  werift: [
    { actions: ['transceiver', 'channel', 'restart'] as Action[], data: false },
    { actions: ['transceiver', 'channel'] as Action[], data: true },
  ],
}

describe.each(STACKS)('storms without settling: $name', ({ name, make }) => {
  const { peer } = useStack(make)

  for (const { actions, data } of STORMS[name as keyof typeof STORMS])
    for (const [seed, politeActsFirst] of [
      [1, true],
      [2, false],
      [3, true],
      [4, false],
    ] as const) {
      test(`seed ${seed}, ${politeActsFirst ? 'polite' : 'impolite'} side first: ${ROUNDS} rounds of simultaneous ${actions.join(', ')}`, async () => {
        const random = prng(seed)
        const room = uniqueRoom()
        // The lower id is polite.
        const a = peer(room, { id: `${politeActsFirst ? 'a' : 'b'}-${seed}` })
        const b = peer(room, { id: `${politeActsFirst ? 'b' : 'a'}-${seed}` })
        await Promise.all([a.start(), b.start()])
        await Promise.all([opened(a), opened(b)])
        const seenA = watch(a)
        const seenB = watch(b)
        for (let round = 0; round < ROUNDS; round++) {
          // Both at once, or one a few ms after the other: never waiting for the last round to settle.
          act(a, actions, random(), `a-${round}`)
          const gap = Math.floor(random() * 10)
          if (gap) await new Promise((resolve) => setTimeout(resolve, gap))
          act(b, actions, random(), `b-${round}`)
          await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 10)))
        }
        const pcA = a.connection as RTCPeerConnection
        const pcB = b.connection as RTCPeerConnection
        const settled = () =>
          pcA.signalingState === 'stable' &&
          pcB.signalingState === 'stable' &&
          pcA.getTransceivers().length === pcB.getTransceivers().length &&
          pcA.getTransceivers().every((t) => t.mid !== null) &&
          pcB.getTransceivers().every((t) => t.mid !== null)
        // Settled for good: stable, and no offer for a while (a ping-pong would go on).
        const quiet = () => Date.now() - Math.max(seenA.lastOffer, seenB.lastOffer) > 1500
        await until(() => settled() && quiet(), 'both sides stable with the same, negotiated transceivers, and quiet', 30_000)
        if (data) {
          await roundTrip(a, b, `after storm ${seed}`)
          await roundTrip(b, a, `and back ${seed}`)
        }
        console.log(`${name} storm (${actions.join(', ')}) seed ${seed}: offers a=${seenA.offers} b=${seenB.offers}`)
        expect([...a.errors, ...b.errors]).toEqual([])
        expect([seenA, seenB].map(({ rebuilds, closes }) => ({ rebuilds, closes }))).toEqual([
          { rebuilds: 0, closes: 0 },
          { rebuilds: 0, closes: 0 },
        ])
        // Each action needs at most one round, and bursts coalesce; past a few offers in a burst
        // they are paced (werift asks again after every remote ICE restart: without the pace the
        // two sides ping-pong hundreds of offers a second, for ever).
        expect(seenA.offers + seenB.offers).toBeLessThanOrEqual(2 * ROUNDS + 4)
        a.close()
        b.close()
      })
    }
})

describe('a stack that never stops asking', () => {
  const { peer, stack } = useStack(wrtcStack)

  test('offers are paced, and a connection that never settles is rebuilt as stalled', { timeout: 90_000 }, async () => {
    // A real libwebrtc connection that wants an ICE restart after every answer it gets: left
    // alone, it would renegotiate for as long as it lives, every round counting as progress.
    const Base = stack().options().RTCPeerConnection as typeof RTCPeerConnection
    let restless = false
    class Restless extends Base {
      override async setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void> {
        await super.setRemoteDescription(description)
        if (description.type === 'answer' && restless) setTimeout(() => this.signalingState !== 'closed' && this.restartIce())
      }
    }
    const room = uniqueRoom()
    const a = peer(room, { RTCPeerConnection: Restless })
    const b = peer(room)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    const seen = watch(a)
    const rebuilt = next<{ reason: string }>((h) => a.on('rebuild', h))
    const started = Date.now()
    restless = true
    a.connection?.restartIce()
    let offersIn10s = 0
    setTimeout(() => {
      offersIn10s = seen.offers
    }, 10_000)
    const { reason } = await rebuilt
    restless = false
    console.log(
      `restless stack: ${offersIn10s} offers in the first 10 s, rebuilt (${reason}) after ${Date.now() - started} ms and ${seen.offers} offers`,
    )
    expect(reason).toBe('stalled')
    // Unpaced, this is hundreds of offers a second. Paced: 8 at once, then 4 a second.
    expect(offersIn10s).toBeLessThanOrEqual(8 + 4 * 10 + 1)
    await Promise.all([opened(a), opened(b)])
    await roundTrip(a, b, 'after the rebuild')
    expect([...a.errors, ...b.errors]).toEqual([])
  })
})
