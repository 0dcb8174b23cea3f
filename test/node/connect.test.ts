import { describe, expect, test } from 'vitest'
import { BroadcastChannelSignaler, type Signaler } from '../../src/index'
import { cuttable } from '../support/chaos'
import { afterRemoteCloses, next, opened, roundTrip, STACKS, uniqueRoom, useStack } from '../support/stacks'
import { until } from '../support/until'

describe.each(STACKS)('$name', ({ make: makeStack }) => {
  const { peer } = useStack(makeStack)

  test('two peers connect and exchange text and binary both ways', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b = peer(room)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    expect(a.remoteId).toBe(b.id)
    expect(b.remoteId).toBe(a.id)
    await roundTrip(a, b, 'hello from a')
    await roundTrip(b, a, 'hello from b')
    const binary = next<{ data: unknown }>((h) => a.on('message', h))
    b.send(new Uint8Array([1, 2, 3, 250]))
    expect(new Uint8Array((await binary).data as ArrayBuffer)).toEqual(new Uint8Array([1, 2, 3, 250]))
    // A view into a larger buffer: only its own bytes go.
    const view = next<{ data: unknown }>((h) => b.on('message', h))
    a.send(new Uint8Array([1, 2, 3, 4, 5]).subarray(1, 3))
    expect(new Uint8Array((await view).data as ArrayBuffer)).toEqual(new Uint8Array([2, 3]))
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('messages sent before the channel opens arrive, in order', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b = peer(room)
    const texts = Array.from({ length: 50 }, (_, i) => `early ${i}`)
    for (const text of texts) a.send(text)
    const received: unknown[] = []
    const all = new Promise<void>((resolve) =>
      b.on('message', ({ data }) => {
        received.push(data)
        if (received.length === texts.length) resolve()
      }),
    )
    await Promise.all([a.start(), b.start()])
    await all
    expect(received).toEqual(texts)
  })

  test('simultaneous start connects every time (20 runs)', async () => {
    for (let run = 0; run < 20; run++) {
      const room = uniqueRoom()
      const a = peer(room)
      const b = peer(room)
      await Promise.all([a.start(), b.start()])
      await Promise.all([opened(a), opened(b)])
      await roundTrip(a, b, `run ${run}`)
      expect([...a.errors, ...b.errors]).toEqual([])
      a.close()
      b.close()
    }
  })

  test('the first offer travels with the hello: the polite side answers it without any description from the impolite side', async () => {
    const room = uniqueRoom()
    // The polite side (lower id) never hears a description: only the offer in the hello can open the pair.
    const inner = new BroadcastChannelSignaler({ room })
    const deaf: Signaler = {
      connect: (id) => inner.connect(id),
      send: (message) => inner.send(message),
      subscribe: (handler) => inner.subscribe((raw) => String(raw).includes('"kind":"description"') || handler(raw)),
      close: () => inner.close(),
    }
    const polite = peer(room, { id: 'early-a', signaler: deaf })
    const impolite = peer(room, { id: 'early-b' })
    const hello: string[] = []
    const offers: string[] = []
    impolite.on('signal', ({ direction, message }) => {
      if (direction !== 'out') return
      if (message.kind === 'hello' && message.offer) hello.push(message.offer)
      if (message.kind === 'description' && message.description.type === 'offer') offers.push(message.description.sdp)
    })
    // The impolite side first, until its offer made in advance is out: started together on a busy
    // machine, it could hear the polite side's hello before its createOffer() finished, pair, and
    // then offer by description only (its later hellos, paired, carry no offer): the deaf side
    // would never hear it.
    await impolite.start()
    await until(() => hello.length > 0, 'the hello with the offer made in advance')
    await polite.start()
    await Promise.all([opened(polite), opened(impolite)])
    await roundTrip(impolite, polite, 'answered from the hello')
    // The offer it set is the one it made in advance.
    expect(hello.length).toBeGreaterThan(0)
    expect(offers[0]).toBe(hello[0])
    expect([...polite.errors, ...impolite.errors]).toEqual([])
  })

  test('a late joiner, seconds later, connects (no offer is sent to nobody)', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const sent: string[] = []
    a.on('signal', ({ direction, message }) => direction === 'out' && sent.push(message.kind))
    await a.start()
    await new Promise((resolve) => setTimeout(resolve, 2000))
    // Its hello, repeated while nobody answers (after 0.5 and 1.5 s), and nothing else.
    expect(sent).toEqual(['hello', 'hello', 'hello'])
    const b = peer(room)
    await b.start()
    await Promise.all([opened(a), opened(b)])
    await roundTrip(b, a, 'late but here')
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('a remote that restarts without bye: once its old connection is gone, the new instance takes the seat', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const crashing = cuttable(new BroadcastChannelSignaler({ room }))
    const b1 = peer(room, { signaler: crashing })
    await Promise.all([a.start(), b1.start()])
    await Promise.all([opened(a), opened(b1)])
    // b1 dies without a word: its bye never leaves, its connection is not closed by a.
    crashing.cut()
    b1.close()
    const b2 = peer(room)
    await b2.start()
    await Promise.all([opened(a), opened(b2)])
    expect(a.remoteId).toBe(b2.id)
    await roundTrip(a, b2, 'welcome back')
    await roundTrip(b2, a, 'thanks')
    expect([...a.errors, ...b2.errors]).toEqual([])
  })

  test('bye on close tears down at once; the peer waits for the next remote', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b1 = peer(room)
    await Promise.all([a.start(), b1.start()])
    await Promise.all([opened(a), opened(b1)])
    // The channels may close from the transport (b1's connection closed) before the bye arrives:
    // the bye still wins, reported once, and nothing is recovered.
    expect(await afterRemoteCloses(a, b1)).toEqual({ rebuild: 'remote-left', closes: ['remote-left'], recoveries: [] })
    expect(a.state).toBe('waiting')
    const b2 = peer(room)
    await b2.start()
    await opened(a)
    await roundTrip(b2, a, 'next one')
  })
})
