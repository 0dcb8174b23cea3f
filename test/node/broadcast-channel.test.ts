// BroadcastChannelSignaler over Node's real BroadcastChannel: broadcasts reach every peer of the
// room, a message addressed to one peer reaches that peer only (the others of the room never
// see it, nor does a peer of another room whose name and id could spell the same channel).
import { afterEach, expect, test } from 'vitest'
import { BroadcastChannelSignaler } from '../../src/index'
import type { SignalMessage } from '../../src/protocol'
import { uniqueRoom } from '../support/stacks'
import { until } from '../support/until'

const open: BroadcastChannelSignaler[] = []
afterEach(() => {
  for (const signaler of open.splice(0)) signaler.close()
})

/** A connected signaler for `id` in `room`, and what it hears. */
async function peer(room: string, id: string) {
  const signaler = new BroadcastChannelSignaler({ room })
  open.push(signaler)
  const heard: SignalMessage[] = []
  signaler.subscribe((raw) => heard.push(JSON.parse(raw as string)))
  await signaler.connect(id)
  return { signaler, heard }
}

const bye = (from: string, to?: string): SignalMessage => ({ kind: 'bye', from, session: 1, ...(to ? { to } : {}) })

test('a broadcast reaches every other peer of the room; an addressed message only its peer', async () => {
  const room = uniqueRoom()
  const [a, b, c] = [await peer(room, 'a'), await peer(room, 'b'), await peer(room, 'c')]
  a.signaler.send(bye('a'))
  a.signaler.send(bye('a', 'b'))
  c.signaler.send(bye('c', 'b'))
  await until(() => b.heard.length === 3 && c.heard.length === 1, 'deliveries')
  // Sent last, so once it is in, everything sent before it was delivered too.
  a.signaler.send(bye('a', 'c'))
  await until(() => c.heard.length === 2, 'the last one')
  expect(b.heard).toEqual([bye('a'), bye('a', 'b'), bye('c', 'b')])
  expect(c.heard).toEqual([bye('a'), bye('a', 'c')])
  expect(a.heard).toEqual([])
})

test('a room and an id that spell another room and id with ":" do not share a channel', async () => {
  const base = uniqueRoom()
  // Room "<base>:x" with peer "y", room "<base>" with peer "x:y".
  const first = await peer(`${base}:x`, 'y')
  const second = await peer(base, 'x:y')
  const sender = await peer(base, 's')
  sender.signaler.send(bye('s', 'x:y'))
  await until(() => second.heard.length === 1, 'delivery')
  sender.signaler.send(bye('s'))
  await until(() => second.heard.length === 2, 'the broadcast after it')
  expect(first.heard).toEqual([])
})

test('send before connect() or after close() throws (the peer reports signaling-failed); close() is final', async () => {
  const signaler = new BroadcastChannelSignaler({ room: uniqueRoom() })
  expect(() => signaler.send(bye('a', 'b'))).toThrow()
  await signaler.connect('a')
  signaler.close()
  expect(() => signaler.send(bye('a'))).toThrow()
  expect(() => signaler.send(bye('a', 'b'))).toThrow()
})
