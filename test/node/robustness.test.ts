import { describe, expect, test } from 'vitest'
import { BroadcastChannelSignaler, type Signaler } from '../../src/index'
import { makePeer, opened, roundTrip, STACKS, uniqueRoom, useStack, wrtcStack } from '../support/stacks'
import { until } from '../support/until'

/** Wraps a signaler; `filter` decides, per incoming raw message, whether (and after how long) it is delivered. */
function filtered(inner: Signaler, filter: (raw: string) => number | false): Signaler {
  return {
    connect: (id, events) => inner.connect(id, events),
    send: (message) => inner.send(message),
    close: () => inner.close(),
    subscribe: (handler) =>
      inner.subscribe((raw) => {
        const delay = filter(String(raw))
        if (delay === false) return
        if (delay) setTimeout(() => handler(raw), delay)
        else handler(raw)
      }),
  }
}

describe.each(STACKS)('$name', ({ make: makeStack }) => {
  const { peer } = useStack(makeStack)

  test('a third peer waits for a seat: the pair is not disturbed; when one of the pair leaves, it takes the seat', async () => {
    const room = uniqueRoom()
    const fast = { stallTimeout: 500, helloInterval: 300 }
    const a = peer(room, fast)
    const b = peer(room, fast)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    const disturbed: string[] = []
    for (const p of [a, b]) {
      p.on('rebuild', ({ reason }) => disturbed.push(`rebuild ${reason}`))
      p.on('close', ({ reason }) => disturbed.push(`close ${reason}`))
    }
    const dropped: string[] = []
    a.on('dropped', ({ code }) => dropped.push(code))
    const c = peer(room, fast)
    await c.start()
    // c's hellos (repeated every 300 ms) are turned away; the pair keeps talking.
    await until(() => dropped.filter((code) => code === 'other-peer').length >= 3, 'c to be turned away a few times')
    await roundTrip(a, b, 'still us')
    expect(disturbed).toEqual([])
    expect(c.state).toBe('waiting')
    b.close()
    await until(() => a.remoteId === c.id && a.state === 'connected' && c.state === 'connected', 'c to take the free seat')
    await roundTrip(c, a, 'my turn')
    expect([...a.errors, ...c.errors]).toEqual([])
  })

  test('a late hello from a dead, older instance does not break a live pair', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b = peer(room)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    const dropped: string[] = []
    a.on('dropped', ({ code }) => dropped.push(code))
    const ghost = new BroadcastChannel(`politely:${room}`)
    ghost.postMessage(JSON.stringify({ kind: 'hello', from: 'deadbeef', session: 1, to: a.id, since: 1 }))
    ghost.postMessage(JSON.stringify({ kind: 'hello', from: 'deadbee2', session: 1 }))
    await until(() => dropped.length === 2, 'both ghost hellos to be dropped')
    ghost.close()
    expect(dropped).toEqual(['other-peer', 'other-peer'])
    expect(a.remoteId).toBe(b.id)
    await roundTrip(b, a, 'still here')
  })

  test('a lost renegotiation offer after open: the offer goes again, no rebuild, and later renegotiation works', async () => {
    const room = uniqueRoom()
    let dropNextOffer = false
    const lossy = () =>
      filtered(new BroadcastChannelSignaler({ room }), (raw) => {
        if (dropNextOffer && raw.includes('"type":"offer"')) {
          dropNextOffer = false
          return false
        }
        return 0
      })
    // The default stall timeout (2.5 s): the repeat of the offer (after 0.5 s) must do it alone.
    const a = peer(room, { signaler: lossy() })
    const b = peer(room, { signaler: lossy() })
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    const rebuilt: string[] = []
    for (const p of [a, b]) p.on('rebuild', ({ reason }) => rebuilt.push(reason))
    dropNextOffer = true
    a.connection?.addTransceiver('audio')
    await until(
      () => [a, b].every((p) => p.connection?.signalingState === 'stable' && p.connection.getTransceivers().length === 1),
      'the renegotiation, by the repeated offer',
    )
    expect(dropNextOffer).toBe(false)
    expect(rebuilt).toEqual([])
    a.connection?.addTransceiver('audio')
    await until(
      () => [a, b].every((p) => p.connection?.signalingState === 'stable' && p.connection.getTransceivers().length === 2),
      'the next renegotiation',
    )
    await roundTrip(a, b, 'renegotiated')
  })

  test('signaling slower than the stall timeout still connects (the timeout backs off)', async () => {
    const room = uniqueRoom()
    const slow = () => filtered(new BroadcastChannelSignaler({ room }), () => 300)
    const a = peer(room, { signaler: slow(), stallTimeout: 500 })
    const b = peer(room, { signaler: slow(), stallTimeout: 500 })
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    await roundTrip(a, b, 'slowly')
  })

  test('a buffer reused after send() does not change what was queued', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b = peer(room)
    const got: number[] = []
    b.on('message', ({ data }) => got.push(new Uint8Array(data as ArrayBuffer)[0] as number))
    const buffer = new Uint8Array(1)
    for (const value of [1, 2, 3]) {
      buffer[0] = value
      a.send(buffer)
    }
    await Promise.all([a.start(), b.start()])
    await until(() => got.length === 3, 'three messages')
    expect(got).toEqual([1, 2, 3])
  })

  test('a burst larger than the transport buffer: what send() accepts arrives whole and in order; the rest is refused loudly', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b = peer(room)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    const received: number[] = []
    b.on('message', ({ data }) => received.push(new Uint32Array(data as ArrayBuffer)[0] as number))
    const chunk = new Uint32Array(16 * 1024) // 64 KiB
    let accepted = 0
    let refusal: unknown
    // 24 MiB in one go: more than the stack buffers, more than the 16 MiB queue.
    for (let i = 0; i < 384 && !refusal; i++) {
      chunk[0] = i
      try {
        a.send(chunk)
        accepted++
      } catch (error) {
        refusal = error
      }
    }
    if (refusal) expect(refusal).toMatchObject({ name: 'PolitelyError', code: 'queue-full' })
    await until(() => received.length === accepted, `${accepted} messages of 64 KiB`, 60_000)
    expect(received).toEqual(Array.from({ length: accepted }, (_, i) => i))
    expect(a.errors).toEqual([])
  })
})

test('a peer whose rtcConfig the stack refuses (libwebrtc: a malformed ICE server URL) reports invalid-options on each attempt, never an uncaught throw', async () => {
  const peer = makePeer(await wrtcStack(), uniqueRoom(), {
    rtcConfig: { iceServers: [{ urls: 'bogus:x' }] },
    stallTimeout: 200,
    reconnectDelay: () => 50,
  })
  try {
    await peer.start()
    await until(() => peer.errors.length >= 2, 'an error for the first build and one for its rebuild', 5000)
    expect(new Set(peer.errors.map((error) => (error as { code?: string }).code))).toEqual(new Set(['invalid-options']))
  } finally {
    peer.close()
  }
})
