// politely/stats on both Node stacks, on connections politely made: the selected pair's local
// candidate and round-trip time once open, bitrates from a real transfer (bits per second, over
// the time between two calls), nothing at all before a connection exists or once it is closed.
import { describe, expect, test } from 'vitest'
import type { PerfectNegotiationPeer } from '../../src/index'
import { stats } from '../../src/stats'
import { next, opened, STACKS, uniqueRoom, useStack } from '../support/stacks'

const SIZE = 100_000
const CHUNK = 10_000

/** Sends SIZE bytes from `a` and resolves when `b` has all of them. */
async function transfer(a: PerfectNegotiationPeer, b: PerfectNegotiationPeer): Promise<void> {
  let received = 0
  const all = next<{ data: unknown }>(
    (h) => b.on('message', h),
    ({ data }) => (received += (data as ArrayBuffer).byteLength) >= SIZE,
  )
  for (let sent = 0; sent < SIZE; sent += CHUNK) a.send(new Uint8Array(CHUNK))
  await all
}

describe.each(STACKS)('$name', ({ make }) => {
  const { peer } = useStack(make)

  test('open: a host pair with a round-trip time; no media, no loss; no bitrate on the first call', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b = peer(room)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    for (const side of [a, b]) {
      const first = await stats(side.connection)
      expect(first).toMatchObject({ candidateType: 'host', packetsLost: 0, bitrateIn: undefined, bitrateOut: undefined })
      expect(first.rtt).toBeGreaterThanOrEqual(0)
    }
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('after 100 KB over the data channel, the next call has the bitrate both ways, in bits per second', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b = peer(room)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    const pcs = [a.connection, b.connection]
    const before = performance.now()
    await Promise.all(pcs.map((pc) => stats(pc)))
    const between = performance.now()
    await transfer(a, b)
    // libwebrtc hands out the same report for 50 ms (a bitrate of undefined, as nothing moved in it).
    await new Promise((resolve) => setTimeout(resolve, 60))
    const last = performance.now()
    const [sender, receiver] = await Promise.all(pcs.map((pc) => stats(pc)))
    const after = performance.now()
    // bitrate × (time between the two calls' samples) / 8 is what the counters moved, and that time
    // is at least last - between, at most after - before.
    for (const [bitrate, name] of [
      [sender?.bitrateOut, 'sent'],
      [receiver?.bitrateIn, 'received'],
    ] as const) {
      expect(bitrate, name).toBeGreaterThan(0)
      const bytes = [((bitrate as number) * (last - between)) / 8000, ((bitrate as number) * (after - before)) / 8000]
      // The 100 KB and no more than their packets' overhead (SCTP, DTLS, acknowledgements).
      expect(bytes[1], name).toBeGreaterThanOrEqual(SIZE)
      expect(bytes[0], name).toBeLessThan(SIZE * 1.5)
    }
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('no connection yet, or a closed one: every field undefined, never a rejection', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b = peer(room)
    expect(await stats(a.connection)).toEqual({})
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    const pc = a.connection as RTCPeerConnection
    a.close()
    expect(pc.signalingState).toBe('closed')
    expect(await stats(pc)).toEqual({})
  })
})
