import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import express from 'express'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import { createSignalingServer } from '../../src/server/index'
import { startServer } from '../support/server'
import { until } from '../support/until'
import { wsAnswer } from '../support/ws-refusal'

type Server = Awaited<ReturnType<typeof startServer>>
const token = (c: string) => c.repeat(24)

/** Opens an SSE subscription and collects its raw text; resolves once `welcome` arrived. */
async function subscribe(base: string, room: string, peer: string, secret: string) {
  const controller = new AbortController()
  const response = await fetch(`${base}/${room}?peer=${encodeURIComponent(peer)}&token=${secret}`, { signal: controller.signal })
  let text = ''
  if (response.status !== 200) return { status: response.status, body: await response.text(), text: () => text, close() {} }
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        text += decoder.decode(value)
      }
    } catch {}
  })()
  while (!text.includes('event: welcome')) await new Promise((resolve) => setTimeout(resolve, 5))
  return {
    status: 200,
    body: '',
    text: () => text,
    close() {
      controller.abort()
      void pump
    },
  }
}

function post(base: string, room: string, secret: string | undefined, body: string, headers: Record<string, string> = {}) {
  return fetch(`${base}/${room}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(secret ? { authorization: `Bearer ${secret}` } : {}), ...headers },
    body,
  })
}

const hello = (from: string, extra = {}) => JSON.stringify({ kind: 'hello', from, session: 1, ...extra })

describe('reference server under hostile input', () => {
  let server: Server
  let witness: Awaited<ReturnType<typeof subscribe>>
  let witnessPeer: Awaited<ReturnType<typeof subscribe>>
  beforeAll(async () => {
    server = await startServer({
      ratePerSecond: 20,
      rateBurst: 40,
      maxPeersPerRoom: 3,
      maxMessageBytes: 4096,
      maxBodyBytes: 16384,
    })
    // A quiet room next door: whatever happens in the tests, it must keep working.
    witness = await subscribe(server.url, 'calm', 'w1', token('w'))
    witnessPeer = await subscribe(server.url, 'calm', 'w2', token('v'))
  })
  afterAll(async () => {
    witness.close()
    witnessPeer.close()
    await server.close()
  })

  test('a message that is too large: 413, before the body is read whole', async () => {
    const a = await subscribe(server.url, 'big', 'a', token('a'))
    const huge = await post(server.url, 'big', token('a'), 'x'.repeat(100_000))
    expect(huge.status).toBe(413)
    const sdp = JSON.stringify({
      kind: 'description',
      from: 'a',
      to: 'b',
      session: 1,
      toSession: 1,
      description: { type: 'offer', sdp: 'v'.repeat(8000) },
    })
    expect((await post(server.url, 'big', token('a'), sdp)).status).toBe(413)
    expect(await huge.json()).toMatchObject({ error: 'too-large' })
    a.close()
  })

  test('invalid JSON, wrong types, deep nesting, unknown kinds: 400 with a code', async () => {
    const a = await subscribe(server.url, 'bad', 'a', token('a'))
    const cases = [
      '{"kind":',
      'null',
      '42',
      '[]',
      JSON.stringify({ kind: 'hello', from: 'a', session: '1' }),
      JSON.stringify({ kind: 'hello', from: 'a', session: 1, since: -5 }),
      // Addressed to nobody: refused, not published to no one with a 202.
      JSON.stringify({ kind: 'hello', from: 'a', session: 1, to: null }),
      JSON.stringify({ kind: 'description', from: 'a', session: 1 }),
      JSON.stringify({ kind: 'candidate', from: 'a', to: 'b', session: 1, toSession: 1, candidate: 'x' }),
      JSON.stringify({ kind: 'offer', from: 'a', session: 1 }),
      `{"kind":"hello","from":"a","session":1,"x":${'['.repeat(6000)}${']'.repeat(6000)}}`,
    ]
    for (const body of cases) {
      const response = await post(server.url, 'bad', token('a'), body)
      expect([400], body.slice(0, 60)).toContain(response.status)
      const answer = await response.json()
      expect(typeof answer.error).toBe('string')
      expect(typeof answer.message).toBe('string')
    }
    // The stream of the sender got nothing out of all that.
    expect(a.text()).not.toContain('id:')
    a.close()
  })

  test('CR, LF and NUL in ids and rooms are refused, and never reach another stream', async () => {
    const listener = await subscribe(server.url, 'crlf', 'listener', token('l'))
    for (const peer of ['a\r\nevent: forged', 'a\nid: 9', 'a\u0000b', 'a b']) {
      const response = await fetch(`${server.url}/crlf?peer=${encodeURIComponent(peer)}&token=${token('x')}`)
      expect(response.status).toBe(400)
    }
    expect((await fetch(`${server.url}/cr%0Alf?peer=a&token=${token('x')}`)).status).toBe(400)
    const a = await subscribe(server.url, 'crlf', 'a', token('a'))
    const forged = await post(server.url, 'crlf', token('a'), hello('a', { to: 'listener\r\ndata: forged' }))
    expect(forged.status).toBe(400)
    // A valid message with odd characters inside a string field travels JSON-escaped, on one line.
    const ok = await post(
      server.url,
      'crlf',
      token('a'),
      JSON.stringify({
        kind: 'description',
        from: 'a',
        to: 'listener',
        session: 1,
        toSession: 1,
        description: { type: 'offer', sdp: 'v=0\r\n\n\ndata: x\r\n' },
      }),
    )
    expect(ok.status).toBe(202)
    await until(() => listener.text().includes('v=0'), 'the message')
    const frames = listener
      .text()
      .split('\n\n')
      .filter((frame) => frame.startsWith('id:'))
    expect(frames).toHaveLength(1)
    expect(frames[0]?.split('\n').filter((line) => line.startsWith('data:'))).toHaveLength(1)
    expect(listener.text()).not.toContain('forged')
    listener.close()
    a.close()
  })

  test('a message travels as it came only when it says exactly what was validated; else its validated copy', async () => {
    const listener = await subscribe(server.url, 'verbatim', 'listener', token('l'))
    const a = await subscribe(server.url, 'verbatim', 'a', token('a'))
    /** The `data:` of each event the listener got, in order. */
    const received = () =>
      listener
        .text()
        .split('\n\n')
        .filter((frame) => frame.startsWith('id:'))
        .map(
          (frame) =>
            frame
              .split('\n')
              .find((line) => line.startsWith('data: '))
              ?.slice(6) ?? '',
        )
    const sent: string[] = []
    const send = async (body: string, expected = 1) => {
      expect((await post(server.url, 'verbatim', token('a'), body)).status, body.slice(0, 80)).toBe(202)
      const before = sent.length
      await until(() => received().length >= before + expected, `the relayed message of ${body.slice(0, 70)}`)
      sent.push(...received().slice(before))
      return received().slice(before)
    }
    // Keys in an order of our own (the validator's copy would put `kind` first): relayed byte for byte.
    const own = '{"session":1,"kind":"hello","from":"a","since":5}'
    expect(await send(own)).toEqual([own])
    // A batch of one: what its brackets hold, spaces inside and all (the spaces around it trimmed).
    const spaced =
      '{ "kind" : "description", "from":"a", "to":"listener", "session":1, "toSession":2, "description":{"sdp":"v=0\\r\\n","type":"offer"} }'
    expect(await send(` [ ${spaced} ]  `)).toEqual([spaced])
    // Anything the validated copy lacks or changes: the copy travels instead (no key but the known ones).
    const canonical = { kind: 'hello', from: 'a', session: 1 }
    const copies = [
      '{"kind":"hello","from":"a","session":1,"x":"extra"}',
      '{"kind":"hello","from":"a","session":1,"__proto__":{"polluted":true}}',
      // A key twice: JSON.parse keeps the last; a client whose parser keeps the first must not read "victim".
      '{"kind":"hello","from":"victim","from":"a","session":1}',
      '{"kind":"hello","from":"victim","fr\\u006fm":"a","session":1}',
      // Any key twice, not only `from`: a first-wins parser would read another kind or session.
      '{"kind":"bye","kind":"hello","from":"a","session":1}',
      '{"kind":"hello","from":"a","session":7,"session":1}',
      // JSON allows CR and LF between tokens: in an SSE stream they would end the data: line.
      '{"kind":"hello",\n"from":"a",\r"session":1}',
      // Within the body limit, over the message limit (4096) by padding.
      `{"kind":"hello","from":"a","session":1${' '.repeat(5000)}}`,
    ]
    for (const body of copies) expect(JSON.parse((await send(body))[0] as string), body.slice(0, 60)).toEqual(canonical)
    const nested =
      '{"kind":"description","from":"a","to":"listener","session":1,"toSession":2,"description":{"type":"offer","sdp":"v=0","x":1}}'
    expect(JSON.parse((await send(nested))[0] as string).description).toEqual({ type: 'offer', sdp: 'v=0' })
    // A nested key twice: the copy travels, with the SDP the server validated (the last one).
    const twice =
      '{"kind":"description","from":"a","to":"listener","session":1,"toSession":2,"description":{"type":"offer","sdp":"EVIL","sdp":"v=0"}}'
    const [relayed] = await send(`[${twice},${own}]`, 2)
    expect(relayed).not.toContain('EVIL')
    expect(JSON.parse(relayed as string).description).toEqual({ type: 'offer', sdp: 'v=0' })
    // Several in one batch: each as it came if it is exact, else its validated copy.
    const two = await send(`[${copies[0]},${own}]`, 2)
    expect(two.map((data) => JSON.parse(data))).toEqual([canonical, { ...canonical, since: 5 }])
    expect(two[1]).toBe(own)
    // Commas, brackets, braces and escaped quotes inside strings do not split a batch.
    const tricky =
      '{"kind":"description","from":"a","to":"listener","session":1,"toSession":2,"description":{"type":"offer","sdp":"a=x:[1,2],{\\"]}\\\\"}}'
    expect(JSON.parse(tricky).description.sdp).toBe('a=x:[1,2],{"]}\\')
    expect(await send(`[${tricky} , ${own},${spaced}]`, 3)).toEqual([tricky, own, spaced])
    for (const data of sent) {
      expect(data).not.toMatch(/victim|extra|polluted|bye|EVIL|"session":7|\r|\n/)
      expect(data.length).toBeLessThanOrEqual(4096)
    }
    listener.close()
    a.close()
  })

  test('over WebSocket too: a frame of one exact message is relayed as it came, anything else as its validated copy', async () => {
    const open = (peer: string) => {
      const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/verbatim-ws?peer=${peer}&token=${token(peer)}`)
      const frames: Array<{ type: string; message?: unknown }> = []
      const texts: string[] = []
      ws.on('message', (data) => {
        texts.push(String(data))
        frames.push(JSON.parse(String(data)))
      })
      return { ws, frames, texts, welcomed: () => until(() => frames.some((frame) => frame.type === 'welcome'), 'welcome') }
    }
    const listener = open('l')
    const a = open('a')
    await Promise.all([listener.welcomed(), a.welcomed()])
    const own = '{"session":1,"from":"a","kind":"hello"}'
    a.ws.send(`[${own}]`)
    a.ws.send('[{"kind":"hello","from":"victim","from":"a","session":1,"x":2}]')
    await until(() => listener.frames.filter((frame) => frame.type === 'message').length === 2, 'both messages')
    const messages = listener.texts.filter((text) => text.includes('"type":"message"'))
    expect(messages[0]).toContain(`"message":${own}}`)
    expect(messages[1]).not.toMatch(/victim|"x"/)
    expect(listener.frames.filter((frame) => frame.type === 'message').map((frame) => frame.message)).toEqual([
      { kind: 'hello', from: 'a', session: 1 },
      { kind: 'hello', from: 'a', session: 1 },
    ])
    listener.ws.close()
    a.ws.close()
  })

  test('a spoofed sender is refused: no token, a wrong token, another peer`s id, another room', async () => {
    const a = await subscribe(server.url, 'spoof', 'a', token('a'))
    const b = await subscribe(server.url, 'spoof', 'b', token('b'))
    expect((await post(server.url, 'spoof', undefined, hello('a'))).status).toBe(401)
    expect((await post(server.url, 'spoof', token('z'), hello('a'))).status).toBe(403)
    // b's token, a's id
    expect((await post(server.url, 'spoof', token('b'), hello('a'))).status).toBe(403)
    // a batch that starts as b and then speaks as a
    expect((await post(server.url, 'spoof', token('b'), `[${hello('b')},${hello('a')}]`)).status).toBe(403)
    // a's token in a room a never joined
    expect((await post(server.url, 'elsewhere', token('a'), hello('a'))).status).toBe(403)
    // a WebSocket frame claiming another id
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/spoof?peer=c&token=${token('c')}`)
    const frames: string[] = []
    ws.on('message', (data) => frames.push(String(data)))
    await until(() => frames.some((f) => f.includes('welcome')), 'welcome')
    ws.send(hello('a'))
    await until(() => frames.some((f) => f.includes('spoofed-sender')), 'the refusal')
    ws.close()
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(a.text()).not.toContain('"kind":"hello"')
    expect(b.text()).not.toContain('"kind":"hello"')
    a.close()
    b.close()
  })

  test('a second live connection claiming a taken id is refused (409), the owner may reconnect', async () => {
    const a = await subscribe(server.url, 'claim', 'a', token('a'))
    const thief = await subscribe(server.url, 'claim', 'a', token('t'))
    expect(thief.status).toBe(409)
    expect(JSON.parse(thief.body)).toMatchObject({ error: 'id-taken' })
    expect(await wsAnswer(`${server.url}/claim?peer=a&token=${token('t')}`)).toEqual({
      welcome: false,
      code: 4409,
      reason: 'id-taken',
    })
    // The owner's own token resumes (and replaces its older connection).
    const again = await subscribe(server.url, 'claim', 'a', token('a'))
    expect(again.status).toBe(200)
    a.close()
    again.close()
  })

  test('a full room refuses the next peer (403 room-full)', async () => {
    const peers = await Promise.all(['p1', 'p2', 'p3'].map((p) => subscribe(server.url, 'full', p, token(p[1] as string))))
    const fourth = await subscribe(server.url, 'full', 'p4', token('4'))
    expect(fourth.status).toBe(403)
    expect(JSON.parse(fourth.body)).toMatchObject({ error: 'room-full' })
    for (const p of peers) p.close()
  })

  test('a flood is rate limited (429 with Retry-After); other peers are unaffected', async () => {
    const flooder = await subscribe(server.url, 'flood', 'f', token('f'))
    // The bucket holds 40 and refills 20 a second: however slow the machine, no more than that is
    // accepted over the time the flood took (the bound depends on that time, not on its speed).
    const statuses: number[] = []
    let limited: Response | undefined
    const started = performance.now()
    while (!limited && statuses.length < 1000) {
      const response = await post(server.url, 'flood', token('f'), hello('f'))
      statuses.push(response.status)
      if (response.status === 429) limited = response
    }
    const seconds = (performance.now() - started) / 1000
    expect(statuses).toContain(429)
    expect(statuses.filter((s) => s === 202).length).toBeLessThanOrEqual(40 + Math.ceil(20 * seconds))
    expect(limited?.headers.get('retry-after')).toBe('1')
    flooder.close()
  })

  test('garbage on the raw socket and unknown methods do not hurt the server', async () => {
    await new Promise<void>((resolve) => {
      const socket = connect(server.port, '127.0.0.1', () => {
        socket.write('GARBAGE\r\n\r\n\u0000\u0001\u0002')
        socket.end()
      })
      // Read the server's answer (a 400), or the socket never ends.
      socket.resume()
      socket.on('close', () => resolve())
      socket.on('error', () => resolve())
    })
    const put = await fetch(`${server.url}/room`, { method: 'PUT' })
    expect(put.status).toBe(405)
    expect((await fetch(`${server.url.replace('/signal', '/nope')}`)).status).toBe(404)
    // A body that never ends, cut off by the client.
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${server.url}/room`, {
        method: 'POST',
        headers: { 'content-length': '1000', authorization: `Bearer ${token('q')}` },
      })
      req.on('error', () => resolve())
      req.write('{"kind":')
      setTimeout(() => {
        req.destroy()
        resolve()
      }, 50)
    })
  })

  test('an upgrade outside the signaling path is answered 404, and cut if the client keeps it open', async () => {
    const socket = connect(server.port, '127.0.0.1')
    let answer = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk) => {
      answer += chunk
    })
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())))
    const sent = performance.now()
    socket.write(
      'GET /elsewhere HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    // The client never ends its side and keeps writing: while the server keeps the socket, that
    // goes unanswered; once it cut the socket, a write meets a reset and the socket closes.
    socket.allowHalfOpen = true
    socket.on('error', () => {})
    const writing = setInterval(() => socket.writable && socket.write('x'), 100)
    const at = await closed
    clearInterval(writing)
    expect(answer).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/)
    // Cut 2 s after the answer (the server's linger), not held for ever.
    expect(at - sent).toBeGreaterThan(1500)
  })

  test('after all of the above, the quiet room next door still relays', async () => {
    const response = await post(server.url, 'calm', token('w'), hello('w1', { to: 'w2' }))
    expect(response.status).toBe(202)
    await until(() => witnessPeer.text().includes('"from":"w1"'), 'the witness message')
    expect(witness.text()).not.toContain('id:')
  })
})

describe('the authorize hook', () => {
  test('decides who may use a room, for SSE and WebSocket alike (403 forbidden)', async () => {
    const server = await startServer({
      authorize: (request, { room, peer }) => room === 'open' || request.headers['x-pass'] === `${peer}-ok`,
    })
    try {
      expect((await subscribe(server.url, 'open', 'a', token('a'))).status).toBe(200)
      const denied = await subscribe(server.url, 'closed', 'b', token('b'))
      expect(denied.status).toBe(403)
      expect(JSON.parse(denied.body)).toMatchObject({ error: 'forbidden' })
      const allowed = await fetch(`${server.url}/closed?peer=c&token=${token('c')}`, { headers: { 'x-pass': 'c-ok' } })
      expect(allowed.status).toBe(200)
      await allowed.body?.cancel()
      expect(await wsAnswer(`${server.url}/closed?peer=d&token=${token('d')}`)).toEqual({
        welcome: false,
        code: 4403,
        reason: 'forbidden',
      })
    } finally {
      await server.close()
    }
  })
})

describe('mounted in an Express app', () => {
  test('signaling under /signal, the app keeps its other routes, WebSocket upgrades work', async () => {
    const app = express()
    const signaling = createSignalingServer()
    app.use((req, res, next) => signaling.handle(req, res) || next())
    app.get('/health', (_req, res) => {
      res.json({ ok: true })
    })
    const httpServer = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => httpServer.once('listening', resolve))
    httpServer.on('upgrade', (req, socket, head) => signaling.upgrade(req, socket, head) || socket.destroy())
    const port = (httpServer.address() as { port: number }).port
    const base = `http://127.0.0.1:${port}/signal`
    try {
      expect(await (await fetch(`http://127.0.0.1:${port}/health`)).json()).toEqual({ ok: true })
      const b = await subscribe(base, 'mounted', 'b', token('b'))
      const ws = new WebSocket(`ws://127.0.0.1:${port}/signal/mounted?peer=a&token=${token('a')}`)
      const frames: string[] = []
      ws.on('message', (data) => frames.push(String(data)))
      await until(() => frames.some((f) => f.includes('welcome')), 'welcome')
      ws.send(hello('a', { to: 'b' }))
      await until(() => b.text().includes('"from":"a"'), 'the relayed hello')
      ws.close()
      b.close()
    } finally {
      await signaling.close()
      httpServer.closeAllConnections()
      await new Promise((resolve) => httpServer.close(resolve))
    }
  })
})
