import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import { startServer } from '../support/server'
import { readEvents as stream } from '../support/sse-reader'
import { until } from '../support/until'

type Server = Awaited<ReturnType<typeof startServer>>
const token = (c: string) => c.repeat(24)

const publish = (server: Server, room: string, from: string, n: number, to = 'b') =>
  fetch(`${server.url}/${room}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token(from)}` },
    body: JSON.stringify({ kind: 'hello', from, to, session: n }),
  })

describe('replay and resume', () => {
  let server: Server
  beforeAll(async () => {
    server = await startServer({ heartbeatMs: 200, retryMs: 1500, replayMessages: 5 })
  })
  afterAll(() => server.close())

  test('an event stream announces itself properly: headers, retry, welcome, heartbeats', async () => {
    const b = await stream(`${server.url}/h?peer=b&token=${token('b')}`)
    expect(b.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(b.response.headers.get('x-accel-buffering')).toBe('no')
    expect(b.response.headers.get('cache-control')).toContain('no-cache')
    await until(() => b.events.some((e) => e.event === 'welcome' && e.retry === '1500'), 'welcome with retry')
    // heartbeatMs is 200 here: a comment line keeps proxies and the client from timing out an idle stream.
    await until(() => b.raw.text.includes('\n: ping\n'), 'a heartbeat comment')
    b.close()
  })

  test('Last-Event-ID resumes with exactly the missed messages, in order', async () => {
    const a = await stream(`${server.url}/r?peer=a&token=${token('a')}`)
    const b = await stream(`${server.url}/r?peer=b&token=${token('b')}`)
    await until(() => b.events.length === 1, 'welcome')
    for (const n of [1, 2]) await publish(server, 'r', 'a', n)
    await until(() => b.events.length === 3, 'two messages')
    const last = b.events.at(-1)?.id as string
    b.close()
    for (const n of [3, 4]) await publish(server, 'r', 'a', n)
    const resumed = await stream(`${server.url}/r?peer=b&token=${token('b')}`, { 'last-event-id': last })
    await until(() => resumed.events.filter((e) => !e.event).length === 2, 'the missed messages')
    await publish(server, 'r', 'a', 5)
    await until(() => resumed.events.filter((e) => !e.event).length === 3, 'the live message')
    const sessions = resumed.events.filter((e) => !e.event).map((e) => JSON.parse(e.data as string).session)
    expect(sessions).toEqual([3, 4, 5])
    a.close()
    resumed.close()
  })

  test('a WebSocket peer back within its release grace gets what was addressed to it while it was away', async () => {
    const a = await stream(`${server.url}/late?peer=a&token=${token('a')}`)
    await until(() => a.events.length === 1, 'welcome')
    // b claims its id, then drops without a resume position (a fresh page state, the same secret).
    const first = new WebSocket(`${server.url.replace('http', 'ws')}/late?peer=b&token=${token('b')}`)
    await new Promise((resolve) => first.once('message', resolve))
    first.close()
    await new Promise((resolve) => first.once('close', resolve))
    for (const n of [1, 2]) await publish(server, 'late', 'a', n)
    const frames: Array<{ type: string; message?: { session: number } }> = []
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/late?peer=b&token=${token('b')}`)
    ws.on('message', (data) => frames.push(JSON.parse(String(data))))
    await until(() => frames.filter((f) => f.type === 'message').length === 2, 'the replay')
    expect(frames.filter((f) => f.type === 'message').map((f) => f.message?.session)).toEqual([1, 2])
    ws.close()
    a.close()
  })

  test('a resume position that fell out of the buffer gets `reset`, then what is still there', async () => {
    const a = await stream(`${server.url}/gap?peer=a&token=${token('a')}`)
    const b = await stream(`${server.url}/gap?peer=b&token=${token('b')}`)
    await publish(server, 'gap', 'a', 1)
    await until(() => b.events.length === 2, 'one message')
    const last = b.events.at(-1)?.id as string
    b.close()
    // The buffer keeps 5: after 8 more, the event after `last` is gone.
    for (let n = 2; n <= 9; n++) await publish(server, 'gap', 'a', n)
    const resumed = await stream(`${server.url}/gap?peer=b&token=${token('b')}`, { 'last-event-id': last })
    await until(() => resumed.events.some((e) => e.event === 'reset'), 'reset')
    await until(() => resumed.events.filter((e) => !e.event).length === 5, 'the buffered five')
    a.close()
    resumed.close()
  })

  test('a new subscriber is not handed the broadcasts of a peer that has left', async () => {
    const x = await stream(`${server.url}/left?peer=x&token=${token('x')}`)
    await until(() => x.events.length === 1, 'welcome')
    await fetch(`${server.url}/left`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token('x')}` },
      body: JSON.stringify({ kind: 'hello', from: 'x', session: 1 }),
    })
    x.close()
    // x is gone (its id is still reserved for a resume, but it is not present): its hello would pair y with nobody.
    await new Promise((resolve) => setTimeout(resolve, 100))
    const y = await stream(`${server.url}/left?peer=y&token=${token('y')}`)
    const z = await stream(`${server.url}/left?peer=z&token=${token('z')}`)
    await until(() => y.events.length === 1 && z.events.length === 1, 'welcomes')
    await fetch(`${server.url}/left`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token('z')}` },
      body: JSON.stringify({ kind: 'hello', from: 'z', session: 1 }),
    })
    await until(() => y.events.length === 2, "z's hello")
    expect(y.events.filter((e) => !e.event).map((e) => JSON.parse(e.data as string).from)).toEqual(['z'])
    y.close()
    z.close()
  })

  test("a new subscriber gets each present peer's latest broadcast only (a superseded hello would pair it with a dead connection)", async () => {
    const x = await stream(`${server.url}/latest?peer=x&token=${token('x')}`)
    const w = await stream(`${server.url}/latest?peer=w&token=${token('w')}`)
    await until(() => x.events.length === 1 && w.events.length === 1, 'welcomes')
    const hello = (from: string, session: number, to?: string) =>
      fetch(`${server.url}/latest`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token(from)}` },
        body: JSON.stringify({ kind: 'hello', from, session, ...(to ? { to } : {}) }),
      })
    // x announces session 1, then (rebuilt) session 2; w announces once; x says something to y.
    await hello('x', 1)
    await hello('w', 1)
    await hello('x', 2)
    await hello('x', 3, 'y')
    const y = await stream(`${server.url}/latest?peer=y&token=${token('y')}`)
    await until(() => y.events.filter((e) => !e.event).length >= 2, 'the replay')
    await new Promise((resolve) => setTimeout(resolve, 100))
    const replayed = y.events.filter((e) => !e.event).map((e) => JSON.parse(e.data as string))
    // A fresh claim resumes nothing addressed to it (that was for an earlier holder of the id).
    expect(replayed.map(({ from, session }) => `${from}#${session}`)).toEqual(['w#1', 'x#2'])
    for (const s of [x, w, y]) s.close()
  })

  test('a position from another server process (or before a restart) is a gap', async () => {
    const other = await startServer()
    try {
      const b = await stream(`${other.url}/x?peer=b&token=${token('b')}`, { 'last-event-id': 'zzzz-3' })
      await until(() => b.events.some((e) => e.event === 'reset'), 'reset')
      b.close()
    } finally {
      await other.close()
    }
  })
})
