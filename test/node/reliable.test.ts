// politely/reliable on real WebRTC (both Node stacks): exactly-once in-order delivery across
// rebuilds, big messages with progress and backpressure, abort, a remote reload, bad frames.
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { BroadcastChannelSignaler, PerfectNegotiationPeer, type PolitelyError } from '../../src/index'
import { DATA, encode, LAST, STRING, SYNC, split } from '../../src/reliable/frames'
import { ReliablePeer, type ReliablePeerOptions, type TransferProgress } from '../../src/reliable/index'
import { recording } from '../support/recording'
import { next, opened, STACKS, type Stack, uniqueRoom } from '../support/stacks'

/** The core's high-water mark: a channel never holds more than this unsent. */
const HIGH_WATER_MARK = 1024 * 1024
const MiB = 1024 * 1024

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `message ${from + i}`)
const sha256 = (data: ArrayBuffer | Uint8Array) => createHash('sha256').update(new Uint8Array(data)).digest('hex')

describe.each(STACKS)('$name', ({ name, make }) => {
  let stack: Stack
  let record: ReturnType<typeof recording>
  let peers: ReliablePeer[] = []
  let errors: string[] = []

  beforeAll(async () => {
    stack = await make()
    record = recording(stack.options().RTCPeerConnection!)
  })
  afterEach(() => {
    for (const peer of peers) peer.close()
    peers = []
    // Nothing unexpected went wrong in any test (the one that expects errors takes its own).
    const seen = errors
    errors = []
    expect(seen).toEqual([])
  })
  afterAll(() => stack?.close())

  function peer(room: string, extra: Partial<ReliablePeerOptions> = {}): ReliablePeer {
    const created = new ReliablePeer({
      signaler: new BroadcastChannelSignaler({ room }),
      ...stack.options(),
      RTCPeerConnection: record.RTCPeerConnection,
      // A connection whose channels died is rebuilt soon.
      stallTimeout: 500,
      helloInterval: 300,
      ...extra,
    })
    created.on('error', (error) => errors.push(`${created.id}: ${error.code} ${error.message}`))
    peers.push(created)
    return created
  }

  async function pair(extra: Partial<ReliablePeerOptions> = {}): Promise<[ReliablePeer, ReliablePeer]> {
    const room = uniqueRoom()
    const a = peer(room, extra)
    const b = peer(room, extra)
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    return [a, b]
  }

  /**
   * Kills the connection between a sender and a receiver without a `bye`, so both peers rebuild.
   * libwebrtc: both RTCPeerConnections close in one synchronous step, so whatever was in flight
   * is lost (and each side notices its own connection closed: a `stalled` rebuild, not the
   * `connection-lost` of channels closed under it, which werift's cut below still takes). Not the
   * receiver's alone: the sender's channels would then close from the network,
   * on libwebrtc's thread, while the sender's JS writes to them, and node-webrtc can crash the
   * process there (the race the README's `RTCPeerConnection` option names). werift notices a
   * closed remote connection only when ICE consent fails (~30 s), so there the sender's channels
   * close instead (werift delivers most of what was in flight on a closing channel: little or
   * nothing is lost).
   */
  function cut(receiver: ReliablePeer, sender: ReliablePeer): void {
    if (name === 'wrtc') {
      receiver.connection?.close()
      sender.connection?.close()
    } else for (const channel of record.channels(sender.connection)) channel.close()
  }

  /** Collects `message` events of a peer as strings, resolving when `last` arrived. */
  function collect(target: ReliablePeer, last: string) {
    const received: string[] = []
    const done = new Promise<string[]>((resolve) =>
      target.on('message', ({ data }) => {
        received.push(data as string)
        if (data === last) resolve(received)
      }),
    )
    return { received, done }
  }

  test('10,000 messages arrive exactly once, in order, across a rebuild and a second one during the resend', async () => {
    // A small window keeps the sender close behind the receiver, so the rebuilds fall mid-stream
    // (and werift's SCTP crawls with hundreds of small messages in flight).
    const [a, b] = await pair({ windowSize: 4 * 1024 })
    const rebuilds: string[] = []
    for (const p of [a, b]) p.on('rebuild', ({ reason }) => rebuilds.push(reason))
    // Every DATA frame A's stack took: more than 10,000 means some were handed over again.
    let frames = 0
    const stopWatching = record.watchSends((pc, data) => {
      if (pc !== a.connection || typeof data === 'string') return
      const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, 1) : new Uint8Array(data)
      if (bytes[0] === DATA) frames++
    })
    let handed = 0
    const sent = range(0, 10_000).map((text) => a.send(text).then(() => handed++))
    let reopenedAt = -1
    b.on('open', () => {
      if (reopenedAt < 0) reopenedAt = received.length
    })
    const cuts: number[] = []
    const { received, done } = collect(b, 'message 9999')
    b.on('message', () => {
      // Cut while A has handed over frames B has not seen: they die with the connection (on
      // libwebrtc in A's stack, or in B's, which hands nothing of a closed connection up), and A
      // must hand them over again. The second cut falls on the first message after the reconnect.
      if (handed <= received.length) return
      if ((cuts.length === 0 && received.length >= 3000) || (cuts.length === 1 && reopenedAt >= 0)) {
        cuts.push(received.length)
        cut(b, a)
      }
    })
    expect(await done).toEqual(range(0, 10_000))
    await Promise.all(sent)
    stopWatching()
    expect(cuts).toHaveLength(2)
    // Frames were lost with the connections and handed over again (werift delivers most of
    // what was in flight on a closing channel: it may have nothing to send again).
    if (name === 'wrtc') expect(frames).toBeGreaterThan(10_000)
    expect(rebuilds.length).toBeGreaterThanOrEqual(4)
  })

  test('both directions at once across a rebuild: every message exactly once, in order', async () => {
    const [a, b] = await pair({ windowSize: 4 * 1024 })
    const toB = collect(b, 'message 4999')
    const toA = collect(a, 'message 4999')
    b.on('message', () => toB.received.length === 2000 && cut(b, a))
    const sent = [...range(0, 5000).map((text) => a.send(text)), ...range(0, 5000).map((text) => b.send(text))]
    expect(await toB.done).toEqual(range(0, 5000))
    expect(await toA.done).toEqual(range(0, 5000))
    await Promise.all(sent)
  })

  test('50 MB of random bytes arrive intact, with progress up to the total and the channel never over the high-water mark', async () => {
    const [a, b] = await pair()
    const payload = randomBytes(50 * MiB)
    const total = payload.length
    let buffered = 0
    const sample = () => {
      for (const channel of record.channels(a.connection)) buffered = Math.max(buffered, channel.bufferedAmount)
    }
    const progress: TransferProgress[] = []
    a.on('progress', (event) => {
      progress.push(event)
      sample()
    })
    const timer = setInterval(sample, 5)
    const arrived = next<{ data: string | ArrayBuffer }>((h) => b.on('message', h))
    await a.send(payload)
    const { data } = await arrived
    clearInterval(timer)
    expect(data).toBeInstanceOf(ArrayBuffer)
    expect((data as ArrayBuffer).byteLength).toBe(total)
    expect(sha256(data as ArrayBuffer)).toBe(sha256(payload))
    expect(progress.at(-1)).toEqual({ channel: 'default', sent: total, total })
    expect(progress.every((event, i) => i === 0 || event.sent > (progress[i - 1] as TransferProgress).sent)).toBe(true)
    expect(buffered).toBeGreaterThan(0)
    expect(buffered).toBeLessThanOrEqual(HIGH_WATER_MARK)
  })

  test('an AbortSignal aborting mid-transfer rejects with `aborted`, nothing of it arrives, the next message does', async () => {
    const [a, b] = await pair()
    const got: unknown[] = []
    b.on('message', ({ data }) => got.push(typeof data === 'string' ? data : data.byteLength))
    const controller = new AbortController()
    let sentBeforeAbort = 0
    a.on('progress', ({ sent }) => {
      if (sent >= MiB && !controller.signal.aborted) {
        sentBeforeAbort = sent
        controller.abort()
      }
    })
    const big = a.send(new Uint8Array(8 * MiB), { signal: controller.signal })
    await expect(big).rejects.toMatchObject({ name: 'PolitelyError', code: 'aborted' })
    expect(sentBeforeAbort).toBeGreaterThanOrEqual(MiB)
    expect(sentBeforeAbort).toBeLessThan(8 * MiB)
    // Aborted before it started: rejected at once, never sent.
    await expect(a.send('never', { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'aborted' })
    const after = next<{ data: unknown }>((h) => b.on('message', h))
    await a.send('the next message')
    expect((await after).data).toBe('the next message')
    expect(got).toEqual(['the next message'])
  })

  test('a remote reload resets the stream: the new instance gets what was not acknowledged, no partial message leaks', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    const b1 = peer(room)
    await Promise.all([a.start(), b1.start()])
    await Promise.all([opened(a), opened(b1)])
    const first = collect(b1, 'message 99')
    for (const text of range(0, 100)) void a.send(text)
    expect(await first.done).toEqual(range(0, 100))
    const atA: unknown[] = []
    a.on('message', ({ data }) => atA.push(data))

    // B1 starts a big message to A and goes away in the middle of it (its page reloads). On
    // libwebrtc A's connection to it closes in the same step: from the network, its channels
    // would close while A's JS acknowledges frames on them (see cut()).
    b1.on('progress', ({ sent }) => {
      if (sent < MiB || b1.state === 'closed') return
      b1.close()
      if (name === 'wrtc') a.connection?.close()
    })
    await expect(b1.send(new Uint8Array(4 * MiB))).rejects.toMatchObject({ code: 'closed' })
    // A goes on sending while nobody is there.
    const sent = range(100, 200).map((text) => a.send(text))

    const b2 = peer(room)
    const second = collect(b2, 'message 199')
    const fromB2 = next<{ data: unknown }>((h) => a.on('message', h))
    await b2.start()
    void b2.send('hello from the new instance')
    expect((await fromB2).data).toBe('hello from the new instance')
    // What B1 had acknowledged is not resent; what it might not have (its last ACK may not
    // have left) comes again: a contiguous run ending with everything sent since.
    const got = await second.done
    const start = Number(got[0]?.split(' ')[1])
    expect(start).toBeLessThanOrEqual(100)
    expect(got).toEqual(range(start, 200))
    await Promise.all(sent)
    // Nothing of B1's cut message reached A.
    expect(atA).toEqual(['hello from the new instance'])
  })

  test('malformed frames from a peer that is not a ReliablePeer: a typed error each, the peer keeps working', async () => {
    const room = uniqueRoom()
    const channels = { fast: { ordered: false } }
    const reliable = peer(room, { channels })
    const plain = new PerfectNegotiationPeer({ signaler: new BroadcastChannelSignaler({ room }), ...stack.options(), channels })
    try {
      const codes: string[] = []
      reliable.on('error', (error) => codes.push((error as PolitelyError).code))
      await Promise.all([reliable.start(), plain.start()])
      await Promise.all([opened(reliable), opened(plain)])
      const got: unknown[] = []
      reliable.on('message', (event) => got.push(event))
      const passThrough = next<{ channel: string }>(
        (h) => reliable.on('message', h),
        (event) => event.channel === 'fast',
      )
      const bad = [
        'a string',
        // werift carries nothing more on a channel after an empty message.
        ...(name === 'werift' ? [] : [new Uint8Array()]),
        new Uint8Array([9, 0, 0, 0, 0, 0]), // unknown type
        new Uint8Array([DATA, 0, 0, 0]), // truncated
        new Uint8Array([DATA, 64, 0, 0, 0, 0]), // unknown flags
        new Uint8Array([SYNC, 0, 1, 2, 3]), // truncated
        new Uint8Array(7).fill(2), // an ACK too long
      ]
      for (const frame of bad) void plain.send(frame)
      // Then a well-formed stream by hand, on the same (ordered) channel: it is delivered.
      void plain.send(encode(SYNC, [...split(12345), 0, 0, 7, 6]))
      void plain.send(encode(DATA, [7], STRING | LAST, new TextEncoder().encode('still working')))
      void plain.send('raw', 'fast')
      const delivered = next<{ data: unknown }>(
        (h) => reliable.on('message', h),
        (event) => event.data === 'still working',
      )
      await Promise.all([delivered, passThrough])
      expect(codes).toEqual(Array(bad.length).fill('invalid-frame'))
      errors = errors.filter((line) => !line.includes('invalid-frame'))
      expect(got).toContainEqual({ data: 'raw', channel: 'fast' })
      expect(got).toContainEqual({ data: 'still working', channel: 'default' })
      expect(got).toHaveLength(2)
      expect(reliable.state).toBe('connected')
    } finally {
      // Both in one step: a remote close racing the reliable peer's acknowledgements is
      // node-webrtc's crash (see cut()).
      plain.close()
      reliable.close()
    }
  })

  test('pass-through channels are untouched; a managed named channel carries messages over maxMessageSize', async () => {
    const channels = { fast: { ordered: false }, lossy: { maxRetransmits: 0 }, files: { ordered: true } }
    const [a, b] = await pair({ channels })
    const got: Array<{ data: unknown; channel: string }> = []
    const all = new Promise<void>((resolve) =>
      b.on('message', ({ data, channel }) => {
        got.push({ data: typeof data === 'string' ? data : sha256(data), channel })
        if (got.length === 3) resolve()
      }),
    )
    const file = randomBytes(300 * 1024)
    await Promise.all([a.send('unordered', 'fast'), a.send('lossy', { channel: 'lossy' }), a.send(file, 'files')])
    await all
    expect(got).toContainEqual({ data: 'unordered', channel: 'fast' })
    expect(got).toContainEqual({ data: 'lossy', channel: 'lossy' })
    expect(got).toContainEqual({ data: sha256(file), channel: 'files' })
    // A pass-through channel is the core's: its bound and its errors, thrown at once.
    expect(() => a.send(file, 'fast')).toThrow(expect.objectContaining({ code: 'message-too-large' }))
    expect(() => a.send('x', 'nope')).toThrow(expect.objectContaining({ code: 'unknown-channel' }))
  })
})
