import { expect, test } from 'vitest'
import { WebSocket } from 'ws'
import type { RoomEvent } from '../../src/server/hub'
import { MemoryHub } from '../../src/server/memory-hub'
import { SERVER_DEFAULTS } from '../../src/server/options'
import { ADAPTERS, startServer } from '../support/server'
import { readEvents as stream } from '../support/sse-reader'
import { until } from '../support/until'

// A hub of the user's own may answer later with promise-likes that are not this realm's Promise
// (a library's, another realm's). `await` takes them; a check for `instanceof Promise` would not.

/** A promise-like that is no Promise: `then` settles later, as a store's client would. */
const later = <T>(value: T | Promise<T>): PromiseLike<T> => ({
  // biome-ignore lint/suspicious/noThenProperty: a thenable of another kind is the point of this test
  then: (resolve, reject) => Promise.resolve(value).then(resolve, reject) as never,
})

/** The in-memory hub answering verify and publish with such promise-likes; `verified` decides verify's answer. */
class ThenableHub extends MemoryHub {
  constructor(readonly verified: boolean) {
    super(SERVER_DEFAULTS)
  }
  override verify(room: string, peer: string, token: string): boolean {
    // Typed as the base's answer; at run time a promise-like, as a hub of the user's may give.
    return later(this.verified && super.verify(room, peer, token)) as unknown as boolean
  }
  override publish(room: string, event: Omit<RoomEvent, 'id'>): RoomEvent {
    return later(super.publish(room, event)) as unknown as RoomEvent
  }
}

const token = (peer: string) => peer.repeat(24)

/** POSTs `body` as peer a, with a's token. */
const post = (url: string, body: unknown) =>
  fetch(`${url}/room`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token('a')}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

test('a hub that answers verify with a promise-like of false: the POST is refused (403), nothing relayed', async () => {
  const server = await startServer({ hub: new ThenableHub(false) })
  const b = await stream(`${server.url}/room?peer=b&token=${token('b')}`)
  const a = await stream(`${server.url}/room?peer=a&token=${token('a')}`)
  try {
    const response = await post(server.url, { kind: 'hello', from: 'a', to: 'b', session: 1 })
    expect(response.status).toBe(403)
    expect((await response.json()).error).toBe('spoofed-sender')
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(b.events.filter((event) => !event.event)).toEqual([])
  } finally {
    a.close()
    b.close()
    await server.close()
  }
})

test('a hub that answers publish with a promise-like: the POST answers with the ids the hub gave', async () => {
  const server = await startServer({ hub: new ThenableHub(true) })
  const b = await stream(`${server.url}/room?peer=b&token=${token('b')}`)
  const a = await stream(`${server.url}/room?peer=a&token=${token('a')}`)
  try {
    const response = await post(
      server.url,
      [1, 2].map((session) => ({ kind: 'hello', from: 'a', to: 'b', session })),
    )
    expect(response.status).toBe(202)
    const { ids } = await response.json()
    await until(() => b.events.filter((event) => !event.event).length >= 2, 'two messages')
    expect(ids).toEqual(b.events.filter((event) => !event.event).map((event) => event.id))
  } finally {
    a.close()
    b.close()
    await server.close()
  }
})

test.each(ADAPTERS)(
  '$name: a hub that answers verify and publish with promise-likes relays every message, in order',
  async (adapter) => {
    const server = await startServer({ hub: new ThenableHub(true) })
    const b = await stream(`${server.url}/room?peer=b&token=${token('b')}`)
    const signaler = adapter.make(server.url, 'room')
    const errors: Error[] = []
    try {
      await signaler.connect('a', { error: (error) => errors.push(error), reset: () => {} })
      for (const session of [1, 2, 3]) signaler.send({ kind: 'hello', from: 'a', to: 'b', session })
      await until(() => b.events.filter((event) => !event.event).length >= 3, 'three messages')
      const relayed = b.events.filter((event) => !event.event)
      expect(relayed.map((event) => JSON.parse(event.data as string).session)).toEqual([1, 2, 3])
      expect(errors).toEqual([])
    } finally {
      signaler.close()
      b.close()
      await server.close()
    }
  },
)

test('an event id that is not ASCII (a hub breaking its contract) still reaches a WebSocket as valid JSON', async () => {
  class AccentedHub extends MemoryHub {
    override subscribe(room: string, listener: (event: RoomEvent) => void): () => void {
      return super.subscribe(room, (event) => listener({ ...event, id: `é日${event.id}` }))
    }
  }
  const server = await startServer({ hub: new AccentedHub(SERVER_DEFAULTS) })
  const frames: Array<{ type: string; id?: string; message?: { session: number } }> = []
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/signal/room?peer=b&token=${token('b')}`, { perMessageDeflate: false })
  ws.on('message', (data) => frames.push(JSON.parse(String(data))))
  const a = ADAPTERS[1]?.make(server.url, 'room')
  try {
    await until(() => frames.some((frame) => frame.type === 'welcome'), "b's welcome")
    await a?.connect('a', { error: () => {}, reset: () => {} })
    a?.send({ kind: 'hello', from: 'a', to: 'b', session: 7 })
    await until(() => frames.some((frame) => frame.type === 'message'), 'the message')
    const relayed = frames.find((frame) => frame.type === 'message')
    expect(relayed?.id).toMatch(/^é日/)
    expect(relayed?.message?.session).toBe(7)
  } finally {
    a?.close()
    ws.close()
    await server.close()
  }
})
