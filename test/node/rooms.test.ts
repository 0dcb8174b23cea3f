// Rooms on the two Node stacks (and a room mixing them), over Node's real BroadcastChannel:
// N members starting in the same tick form the full mesh; a member that restarts, leaves,
// rejoins or joins late touches only its own links. Every link is proved by a message over it.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { BroadcastChannelSignaler, type PolitelyError, type Signaler } from '../../src/index'
import { type ChaosOptions, chaos, cuttable } from '../support/chaos'
import { counting as countingConnections } from '../support/recording'
import { fullMesh, isFullMesh, leftWith, type Member, makeMember } from '../support/rooms'
import { ADAPTERS, startServer } from '../support/server'
import { type Stack, uniqueRoom, weriftStack, wrtcStack } from '../support/stacks'
import { until } from '../support/until'

/** The stacks of a room: member i runs on `stacks[i % stacks.length]`. */
const SETS: Array<[string, string[]]> = [
  ['werift', ['werift']],
  ['wrtc', ['wrtc']],
  ['wrtc and werift mixed', ['wrtc', 'werift']],
]

let werift: Stack
let wrtc: Stack
beforeAll(async () => {
  werift = await weriftStack()
  wrtc = await wrtcStack()
})
afterAll(async () => {
  await werift?.close()
  await wrtc?.close()
})

describe.each(SETS)('rooms on %s', (_, stacks) => {
  const members: Member[] = []
  const stackOf = (i: number) => (stacks[i % stacks.length] === 'werift' ? werift : wrtc)
  /** A member of `room` (closed after the test). */
  const member = (room: string, i: number, extra: Parameters<typeof makeMember>[2] = {}) => {
    const made = makeMember(stackOf(i), room, extra)
    members.push(made)
    return made
  }
  const closeAll = () => {
    for (const m of members.splice(0)) m.close()
  }
  afterEach(closeAll)

  test.each([2, 3, 4, 5, 6, 7, 8])('%i members starting in the same tick: every link opens, no error', async (n) => {
    const room = uniqueRoom()
    const all = Array.from({ length: n }, (_, i) => member(room, i))
    await Promise.all(all.map((m) => m.start()))
    await fullMesh(all, `${n} members`)
    expect(all.flatMap((m) => m.errors)).toEqual([])
    // Every member joined every other once, and nobody left.
    expect(all.flatMap((m) => m.leaves)).toEqual([])
  })

  test('a member restarts (a new instance under its id, no bye): its links come back, no other link closes or rebuilds', async () => {
    const room = uniqueRoom()
    const crashing = cuttable(new BroadcastChannelSignaler({ room }))
    const [a, b, c] = [
      member(room, 0, { id: 'm-a', signaler: crashing }),
      member(room, 1, { id: 'm-b' }),
      member(room, 2, { id: 'm-c' }),
    ]
    const drops: string[] = []
    for (const m of [b, c])
      m.on('state', ({ id, state, previous }) => id !== 'm-a' && previous === 'connected' && drops.push(`${m.id}>${id}:${state}`))
    await Promise.all([a, b, c].map((m) => m.start()))
    await fullMesh([a, b, c], 'before the restart')
    // A crash: nothing more leaves it (no bye), its connections die.
    crashing.cut()
    a.close()
    await new Promise((resolve) => setTimeout(resolve, 20))
    const again = member(room, 0, { id: 'm-a' })
    await again.start()
    await fullMesh([again, b, c], 'after the restart')
    // The old instance left as replaced; the new one joined.
    for (const m of [b, c]) expect(m.leaves).toEqual(['m-a:replaced'])
    expect(drops).toEqual([])
    expect([...b.rebuilds, ...c.rebuilds].filter((r) => !r.startsWith('m-a:'))).toEqual([])
    expect([...b.recoveries, ...c.recoveries].filter((r) => !r.startsWith('m-a:'))).toEqual([])
    expect([again, b, c].flatMap((m) => m.errors)).toEqual([])
  })

  test('a member leaves: peer-leave (left) on every other, no recovery towards it, the rest of the mesh untouched', async () => {
    const room = uniqueRoom()
    const all = [0, 1, 2, 3].map((i) => member(room, i))
    await Promise.all(all.map((m) => m.start()))
    await fullMesh(all, 'before the leave')
    const [leaver, ...rest] = all as [Member, ...Member[]]
    leaver.close()
    await until(() => rest.every((m) => leftWith(m, leaver.id, 'left')), 'peer-leave on all')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    for (const m of rest) {
      expect(m.peers.map((p) => p.id)).not.toContain(leaver.id)
      expect(m.recoveries).toEqual([])
      expect(m.rebuilds).toEqual([])
      expect(m.leaves).toEqual([`${leaver.id}:left`])
    }
    await fullMesh(rest, 'after the leave')
    expect(all.flatMap((m) => m.errors)).toEqual([])
  })

  test('a late joiner is polite to every member (whatever the ids): each member offers with its answer to the presence', async () => {
    const room = uniqueRoom()
    // By the ids the joiner ("z…") would be impolite to all: the members' start times decide.
    const first = [0, 1, 2].map((i) => member(room, i, { id: `a${i}-${Math.random().toString(36).slice(2, 8)}` }))
    await Promise.all(first.map((m) => m.start()))
    await fullMesh(first, 'the first three')
    const late = member(room, 3, { id: `z-${Math.random().toString(36).slice(2, 8)}` })
    const offersIn = new Set<string>()
    /** The type of the first description the joiner sent to each member. */
    const firstOut = new Map<string, string>()
    late.on('signal', ({ direction, message }) => {
      if (direction === 'in' && message.kind === 'hello' && message.offer) offersIn.add(message.from)
      if (direction === 'out' && message.kind === 'description' && !firstOut.has(message.to))
        firstOut.set(message.to, message.description.type)
    })
    await late.start()
    await fullMesh([...first, late], 'the late joiner')
    expect([...offersIn].sort()).toEqual(first.map((m) => m.id).sort())
    // It answered each of them (werift's polite side renegotiates after its answer: later, and harmless).
    expect([...firstOut.values()]).toEqual(['answer', 'answer', 'answer'])
    expect(members.flatMap((m) => m.errors)).toEqual([])
  })

  test('joins while the mesh is live, two at the same instant, and a member leaving and rejoining', async () => {
    const room = uniqueRoom()
    const first = [0, 1, 2].map((i) => member(room, i))
    await Promise.all(first.map((m) => m.start()))
    await fullMesh(first, 'the first three')
    const late = member(room, 3)
    await late.start()
    await fullMesh([...first, late], 'a late joiner')
    const [d, e] = [member(room, 4), member(room, 5)]
    await Promise.all([d.start(), e.start()])
    await fullMesh([...first, late, d, e], 'two joining at once')
    // Leaves, and comes back as a new instance under the same id.
    const leaver = first[1] as Member
    leaver.close()
    const stayed = [first[0], first[2], late, d, e] as Member[]
    await until(() => stayed.every((m) => leftWith(m, leaver.id, 'left')), 'the leave')
    const back = member(room, 1, { id: leaver.id })
    await back.start()
    await fullMesh([...stayed, back], 'the rejoin')
    for (const m of stayed) expect(m.rebuilds.filter((r) => !r.startsWith(`${leaver.id}:`))).toEqual([])
    expect(members.flatMap((m) => m.errors)).toEqual([])
  })
})

// 50 runs of 6 members, each member's signaling duplicating, reordering, dropping and delaying
// what it delivers (seeded: CHAOS_SEEDS=7,31 replays those). Every link, every run.
describe('rooms under chaos signaling (werift, 6 members)', () => {
  const seeds = process.env.CHAOS_SEEDS
    ? process.env.CHAOS_SEEDS.split(',').map(Number)
    : Array.from({ length: 50 }, (_, i) => i + 1)
  const mistreat: Omit<ChaosOptions, 'seed'> = { duplicate: 0.2, drop: 0.2, maxDelay: 1000 }

  test(`${seeds.length} runs: every link opens and carries a message, no error`, async () => {
    const failures: string[] = []
    const times: number[] = []
    const run = async (seed: number) => {
      const room = uniqueRoom()
      const all = Array.from({ length: 6 }, (_, i) =>
        makeMember(werift, room, {
          signaler: chaos(new BroadcastChannelSignaler({ room }), { ...mistreat, seed: seed * 16 + i }),
        }),
      )
      const started = Date.now()
      try {
        await Promise.all(all.map((m) => m.start()))
        await fullMesh(all, `seed ${seed}`, 60_000)
        times.push(Date.now() - started)
        const errors = all.flatMap((m) => m.errors.map(String))
        if (errors.length) failures.push(`seed ${seed}: ${errors.join('; ')}`)
      } catch (error) {
        const links = all.map((m) => `${m.id}: ${m.peers.map((p) => `${p.id}=${p.state}`).join(' ')}`).join(' | ')
        failures.push(`seed ${seed}: ${(error as Error).message} (${isFullMesh(all)}; ${links})`)
      } finally {
        for (const m of all) m.close()
      }
    }
    // Five rooms at a time: 75 links in flight.
    for (let i = 0; i < seeds.length; i += 5) await Promise.all(seeds.slice(i, i + 5).map(run))
    times.sort((x, y) => x - y)
    console.log(
      `rooms under chaos: ${times.length}/${seeds.length} full meshes; median ${times[times.length >> 1]} ms, max ${times.at(-1)} ms`,
    )
    expect(failures).toEqual([])
  }, 600_000)
})

describe('room edges (wrtc)', () => {
  const members: Member[] = []
  const member = (room: string, extra: Parameters<typeof makeMember>[2] = {}) => {
    const made = makeMember(wrtc, room, extra)
    members.push(made)
    return made
  }
  const closeAll = () => {
    for (const m of members.splice(0)) m.close()
  }
  afterEach(closeAll)

  test('a member that goes silent (a crash: no bye, never back) leaves with gave-up after leaveAfter, and nothing is tried towards it after', async () => {
    const room = uniqueRoom()
    // Presence every 200 ms: leaveAfter is 3 of them.
    const fast = { helloInterval: 200 }
    const crashing = cuttable(new BroadcastChannelSignaler({ room }))
    const gone = member(room, { ...fast, signaler: crashing })
    const rest = [member(room, fast), member(room, fast), member(room, fast)]
    await Promise.all([gone, ...rest].map((m) => m.start()))
    await fullMesh([gone, ...rest], 'before the crash')
    crashing.cut()
    gone.close()
    const cut = Date.now()
    await until(() => rest.every((m) => leftWith(m, gone.id, 'gave-up')), 'peer-leave gave-up on all')
    console.log(`silent member: peer-leave gave-up after ${Date.now() - cut} ms (leaveAfter 600 ms)`)
    const attempts = rest.map((m) => m.recoveries.length)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(rest.map((m) => m.recoveries.length)).toEqual(attempts)
    for (const m of rest) expect(m.peers.map((p) => p.id)).not.toContain(gone.id)
    await fullMesh(rest, 'the others')
    expect(rest.flatMap((m) => m.errors)).toEqual([])
  })

  test('maxPeers: a member beyond it is not linked to (dropped: room-full), and the mesh it would join is untouched', async () => {
    const room = uniqueRoom()
    const three = [member(room, { maxPeers: 3 }), member(room, { maxPeers: 3 }), member(room, { maxPeers: 3 })]
    await Promise.all(three.map((m) => m.start()))
    await fullMesh(three, 'three of three')
    const full: string[] = []
    for (const m of three) m.on('dropped', ({ code }) => code === 'room-full' && full.push(m.id))
    const fourth = member(room, { maxPeers: 3 })
    await fourth.start()
    await until(() => new Set(full).size === 3, 'room-full on every member')
    await new Promise((resolve) => setTimeout(resolve, 500))
    for (const m of three) expect(m.peers.map((p) => p.id)).not.toContain(fourth.id)
    expect(fourth.peers.filter((p) => p.state === 'connected')).toEqual([])
    expect(three.flatMap((m) => [...m.rebuilds, ...m.leaves])).toEqual([])
    await fullMesh(three, 'the three still')
  })

  test.each(ADAPTERS)(
    'the server caps a room ($name, maxPeersPerRoom 3): a fourth member is refused (room-full), the three keep their mesh',
    async (adapter) => {
      const server = await startServer({ maxPeersPerRoom: 3 })
      try {
        const room = uniqueRoom()
        const three = [0, 1, 2].map(() => member(room, { signaler: adapter.make(server.url, room) }))
        await Promise.all(three.map((m) => m.start()))
        await fullMesh(three, 'three')
        const fourth = member(room, { signaler: adapter.make(server.url, room) })
        await expect(fourth.start()).rejects.toMatchObject({ code: 'room-full' })
        await new Promise((resolve) => setTimeout(resolve, 300))
        await fullMesh(three, 'the three still')
        expect(three.flatMap((m) => [...m.rebuilds, ...m.leaves, ...m.errors.map(String)])).toEqual([])
      } finally {
        closeAll()
        await server.close()
      }
    },
  )

  const counting = () => countingConnections(wrtc.options().RTCPeerConnection as typeof RTCPeerConnection)

  test('a newcomer over BroadcastChannel links on connections made while it waited for the first offer, one per seat; those left over are closed at its next announcement', async () => {
    const room = uniqueRoom()
    const [a, b] = [member(room), member(room)]
    await Promise.all([a.start(), b.start()])
    await fullMesh([a, b], 'two')
    const { Counting, made, closed } = counting()
    // What reaches the newcomer comes 100 ms late: its spares are all made before the first offer.
    const late = new BroadcastChannelSignaler({ room })
    const signaler: Signaler = {
      connect: (id) => late.connect(id),
      send: (message) => late.send(message),
      subscribe: (handler) => late.subscribe((message) => setTimeout(() => handler(message), 100)),
      close: () => late.close(),
    }
    const c = member(room, { RTCPeerConnection: Counting, maxPeers: 4, signaler })
    const starting = c.start()
    // No warm-up connection here: it would only hold the hello back; the first spare starts the stack.
    expect(made).toHaveLength(0)
    await starting
    await fullMesh([a, b, c], 'three')
    const links = [a.id, b.id].map((id) => c.connection(id) as RTCPeerConnection)
    // Three seats besides its own: three spares, two of them the links. Links that ignored the spares would have made five.
    await until(() => closed.length === 1, 'the spare left over closed', 5000)
    expect(made).toHaveLength(3)
    expect(links.every((pc) => made.includes(pc) && !closed.includes(pc))).toBe(true)
    expect(c.rebuilds).toEqual([])
    await fullMesh([a, b, c], 'three, after')
  })

  test.each(ADAPTERS)(
    'over the server ($name: ICE servers of its own, the members known from its replay) no spare is made; the stack is started before the welcome',
    async (adapter) => {
      const server = await startServer()
      try {
        const room = uniqueRoom()
        const a = member(room, { signaler: adapter.make(server.url, room) })
        const b = member(room, { signaler: adapter.make(server.url, room) })
        await Promise.all([a.start(), b.start()])
        const { Counting, made, closed } = counting()
        const c = member(room, { RTCPeerConnection: Counting, maxPeers: 4, signaler: adapter.make(server.url, room) })
        const starting = c.start()
        // Made in start() itself, before anything was heard from the server: it starts the stack.
        expect([made.length, closed.length]).toEqual([1, 0])
        await starting
        await fullMesh([a, b, c], 'three')
        // Closed a second after signaling was up, the links' own connections made meanwhile (no spares).
        await until(() => closed.length === 1, 'the warm-up connection closed', 5000)
        await new Promise((resolve) => setTimeout(resolve, 700))
        expect([made.length, closed.length, closed[0] === made[0]]).toEqual([3, 1, true])
      } finally {
        closeAll()
        await server.close()
      }
    },
  )

  test('an rtcConfig the stack refuses (a malformed ICE server URL) is an error event (invalid-options) on each attempt, never an uncaught throw; the rest of the mesh is untouched', async () => {
    const room = uniqueRoom()
    const [a, b] = [member(room), member(room)]
    await Promise.all([a.start(), b.start()])
    await fullMesh([a, b], 'two')
    // Its spares and its links' connections alike: wrtc throws "ICE server parse failed".
    const bad = member(room, { rtcConfig: { iceServers: [{ urls: 'bogus:x' }] }, reconnectDelay: () => 100 })
    await bad.start()
    await until(() => bad.errors.length >= 4, 'an error for each attempt towards each member', 10_000)
    expect(new Set(bad.errors.map((error) => (error as PolitelyError).code))).toEqual(new Set(['invalid-options']))
    expect(bad.peers.filter(({ state }) => state === 'connected')).toEqual([])
    await fullMesh([a, b], 'the two still')
    expect([...a.rebuilds, ...b.rebuilds, ...a.errors, ...b.errors]).toEqual([])
  })

  test('bad input: unknown member, unknown channel, bad options, use after close: typed errors', async () => {
    const room = uniqueRoom()
    const a = member(room)
    expect(() => a.send('x', { to: 'nobody' })).toThrow(expect.objectContaining({ code: 'unknown-peer' }))
    expect(() => a.send('x', { channel: 'nope' })).toThrow(expect.objectContaining({ code: 'unknown-channel' }))
    expect(() => makeMember(wrtc, room, { maxPeers: 1 })).toThrow(expect.objectContaining({ code: 'invalid-options' }))
    expect(() => makeMember(wrtc, room, { id: 'bad id!' })).toThrow(expect.objectContaining({ code: 'invalid-options' }))
    expect(() => makeMember(wrtc, room, { channels: { default: {} } })).toThrow(
      expect.objectContaining({ code: 'invalid-options' }),
    )
    // Nobody linked yet: a broadcast reaches no one and resolves.
    await expect(a.send('to no one')).resolves.toBeUndefined()
    a.close()
    // Never started: no bye to send, nothing to report.
    expect(a.errors).toEqual([])
    expect(() => a.send('x')).toThrow(expect.objectContaining({ code: 'closed' }))
    await expect(a.start()).rejects.toMatchObject({ code: 'closed' })
  })

  test('hostile signaling: malformed, oversized, spoofed and unknown messages are errors or drops, never a broken mesh', async () => {
    const room = uniqueRoom()
    const [a, b] = [member(room), member(room)]
    await Promise.all([a.start(), b.start()])
    await fullMesh([a, b], 'before')
    const raw = new BroadcastChannel(`politely:${room}`)
    const hostile: unknown[] = [
      'not json',
      JSON.stringify({ kind: 'made-up', from: 'x', session: 1 }),
      JSON.stringify({ kind: 'hello', from: 'bad id!', session: 0 }),
      JSON.stringify({ kind: 'hello', from: 'x', session: -1 }),
      JSON.stringify({
        kind: 'description',
        from: b.id,
        to: a.id,
        session: 99,
        toSession: 1,
        description: { type: 'offer', sdp: 'x'.repeat(200_000) },
      }),
      // Spoofed: a description in b's name for a session of a's that does not exist.
      JSON.stringify({
        kind: 'description',
        from: b.id,
        to: a.id,
        session: 1,
        toSession: 12345,
        description: { type: 'offer', sdp: 'v=0' },
      }),
      // A description from someone a has no link to.
      JSON.stringify({ kind: 'candidate', from: 'stranger', to: a.id, session: 1, toSession: 1, candidate: null }),
    ]
    for (const message of hostile) raw.postMessage(message)
    await until(() => a.errors.length >= 5, 'the invalid ones reported')
    expect(a.errors.map((e) => (e as { code?: string }).code).sort()).toEqual(
      ['invalid-signal', 'invalid-signal', 'invalid-signal', 'signal-too-large', 'unknown-kind'].sort(),
    )
    raw.close()
    await new Promise((resolve) => setTimeout(resolve, 300))
    await fullMesh([a, b], 'after')
    expect(a.rebuilds).toEqual([])
    expect(b.rebuilds).toEqual([])
  })
})
