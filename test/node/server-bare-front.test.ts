import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createSignalingServer } from '../../src/server/index'
import { parseRequestHead } from '../../src/server/request-head'
import { startServer } from '../support/server'
import { until } from '../support/until'

const token = (c: string) => c.repeat(24)
const head = (target: string, extra = '') => `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`

/** A raw client: what it wrote, how (pieces, pauses), and everything it read until the server closed or `until` matched. */
class RawClient {
  text = ''
  closed = false
  readonly socket: Socket
  /** `halfOpen`: the client never ends its side by itself, as a client that is gone or hostile. */
  constructor(port: number, halfOpen = false) {
    this.socket = connect({ port, host: '127.0.0.1', allowHalfOpen: halfOpen })
    this.socket.setNoDelay(true)
    this.socket.on('data', (data) => {
      this.text += data.toString('latin1')
    })
    this.socket.on('error', () => {})
    this.socket.on('close', () => {
      this.closed = true
    })
  }
  async connected(): Promise<this> {
    if (this.socket.connecting) await new Promise((resolve) => this.socket.once('connect', resolve))
    return this
  }
  /** Writes each piece as a write of its own, a pause between (so the server reads them apart). */
  async send(...pieces: string[]): Promise<this> {
    await this.connected()
    for (const [i, piece] of pieces.entries()) {
      if (i) await new Promise((resolve) => setTimeout(resolve, 50))
      this.socket.write(Buffer.from(piece, 'latin1'))
    }
    return this
  }
  async read(pattern: string | RegExp, what: string): Promise<string> {
    const found = () => (typeof pattern === 'string' ? this.text.includes(pattern) : pattern.test(this.text))
    await until(found, () => `${what}; read so far: ${JSON.stringify(this.text.slice(0, 400))}`, 5000)
    return this.text
  }
  async closedByServer(what: string): Promise<void> {
    await until(
      () => this.closed,
      () => `${what}: the server to close; read: ${JSON.stringify(this.text.slice(0, 400))}`,
      5000,
    )
  }
  close(): void {
    this.socket.destroy()
  }
}

const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1])
const headerBlock = (text: string) => text.slice(0, text.indexOf('\r\n\r\n')).toLowerCase()

describe('parseRequestHead: the subset the bare front takes', () => {
  const parse = (text: string) => parseRequestHead(Buffer.from(text, 'latin1'))

  test('one whole plain GET head, nothing after it', () => {
    expect(parse('GET /signal/r?peer=a HTTP/1.1\r\nHost: x\r\nLast-Event-ID:  7-1 \r\n\r\n')).toEqual({
      url: '/signal/r?peer=a',
      headers: Object.assign(Object.create(null), { host: 'x', 'last-event-id': '7-1' }),
      rawHeaders: ['Host', 'x', 'Last-Event-ID', '7-1'],
    })
  })

  test.each([
    ['a head cut short', 'GET / HTTP/1.1\r\nHost: x\r\n'],
    ['a pipelined request after the head', `${head('/a')}${head('/b')}`],
    ['a byte after the head', `${head('/a')}x`],
    ['another method', 'POST / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a method in lower case', 'get / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: x\r\n\r\n'],
    ['an absolute-form target', 'GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['two spaces in the request line', 'GET  / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['no Host', 'GET / HTTP/1.1\r\nAccept: */*\r\n\r\n'],
    ['Host twice', 'GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'],
    ['a header twice in other case', 'GET / HTTP/1.1\r\nHost: x\r\nOrigin: a\r\norigin: b\r\n\r\n'],
    ['Content-Length on a GET', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n'],
    ['Transfer-Encoding', 'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['an upgrade', 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n'],
    ['Expect', 'GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n'],
    ['a folded header line', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  2\r\n\r\n'],
    ['a bare LF line end', 'GET / HTTP/1.1\nHost: x\r\n\r\n'],
    ['a bare CR inside a value', 'GET / HTTP/1.1\r\nHost: x\rInjected: 1\r\n\r\n'],
    ['a NUL in a value', 'GET / HTTP/1.1\r\nHost: x\0\r\n\r\n'],
    ['a byte over 0x7f', 'GET / HTTP/1.1\r\nHost: x\r\nOrigin: h\xe9\r\n\r\n'],
    ['DEL', 'GET / HTTP/1.1\r\nHost: x\x7f\r\n\r\n'],
    ['a space before the colon', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n'],
    ['a line with no colon', 'GET / HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n'],
    ['an empty name', 'GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n'],
    ['a head over 8 KB', `GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(8200)}\r\n\r\n`],
  ])('hands to node:http: %s', (_, text) => {
    expect(parse(text)).toBeUndefined()
  })

  test('a header named constructor is a header; one named __proto__, which no plain object holds, goes to node:http', () => {
    const parsed = parse('GET / HTTP/1.1\r\nHost: x\r\nconstructor: b\r\nHasOwnProperty: c\r\n\r\n')
    expect(Object.getOwnPropertyDescriptor(parsed?.headers, 'constructor')?.value).toBe('b')
    expect(Object.getOwnPropertyDescriptor(parsed?.headers, 'hasownproperty')?.value).toBe('c')
    expect(parse('GET / HTTP/1.1\r\nHost: x\r\n__proto__: a\r\n\r\n')).toBeUndefined()
    expect(parse('GET / HTTP/1.1\r\nHost: x\r\n__PROTO__: a\r\n\r\n')).toBeUndefined()
  })
})

describe('the bare-socket front of the reference server', () => {
  let server: Awaited<ReturnType<typeof startServer>>
  let port: number
  const base = () => `/signal`
  beforeAll(async () => {
    server = await startServer({ allowedOrigins: ['https://app.example'] })
    port = server.port
  })
  afterAll(async () => {
    await server.close()
  })

  test('a subscription whose head comes in one read is answered on the socket: events unframed, then close', async () => {
    const client = await new RawClient(port).send(head(`${base()}/bare?peer=a&token=${token('a')}`))
    await client.read('event: welcome', 'the welcome')
    const block = headerBlock(client.text)
    expect(statusOf(client.text)).toBe(200)
    expect(block).toContain('content-type: text/event-stream')
    expect(block).toContain('connection: close')
    expect(block).not.toContain('transfer-encoding')
    // The body begins with the event itself, not a chunk size.
    expect(client.text.slice(client.text.indexOf('\r\n\r\n') + 4)).toMatch(/^retry: \d+\nevent: welcome\n/)
    // It is live: a message to it arrives.
    const other = await new RawClient(port).send(head(`${base()}/bare?peer=b&token=${token('b')}`))
    await other.read('event: welcome', 'the second member')
    const posted = await fetch(`http://127.0.0.1:${port}${base()}/bare`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token('b')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'hello', from: 'b', to: 'a', session: 1 }),
    })
    expect(posted.status).toBeLessThan(300)
    await client.read('"from":"b"', 'the message from b')
    expect(server.signaling.stats().connections.sse).toBe(2)
    client.close()
    other.close()
    await until(() => server.signaling.stats().connections.sse === 0, 'the stream to end with its socket', 5000)
  })

  test('the same subscription in pieces goes to node:http and is served there (chunked)', async () => {
    const request = head(`${base()}/pieces?peer=a&token=${token('a')}`)
    const client = await new RawClient(port).send(request.slice(0, 20), request.slice(20))
    await client.read('event: welcome', 'the welcome')
    expect(headerBlock(client.text)).toContain('transfer-encoding: chunked')
    client.close()
  })

  test('a subscription with a request pipelined after it goes to node:http; both answered in order', async () => {
    const client = await new RawClient(port).send(`${head('/elsewhere')}${head(`${base()}/piped?peer=a&token=${token('a')}`)}`)
    await client.read('event: welcome', 'the subscription after the request before it')
    expect(statusOf(client.text)).toBe(404)
    expect(client.text.indexOf('HTTP/1.1 200')).toBeGreaterThan(0)
    client.close()
  })

  test('a POST first, then a subscription, on one keep-alive connection: node:http serves both', async () => {
    const body = JSON.stringify({ kind: 'hello', from: 'p', session: 1 })
    const client = await new RawClient(port).send(
      `POST ${base()}/keep HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token('p')}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    )
    await client.read(/HTTP\/1\.1 \d{3}[\s\S]*\r\n\r\n/, 'the POST answer')
    await client.send(head(`${base()}/keep?peer=q&token=${token('q')}`))
    await client.read('event: welcome', 'the subscription on the same connection')
    client.close()
  })

  test('a refusal on the bare path: status, JSON body with its length, CORS, and the socket closed', async () => {
    const missing = await new RawClient(port).send(head(`${base()}/refused?peer=a`, 'Origin: https://app.example\r\n'))
    await missing.closedByServer('the refusal')
    expect(statusOf(missing.text)).toBe(401)
    const block = headerBlock(missing.text)
    const body = missing.text.slice(missing.text.indexOf('\r\n\r\n') + 4)
    expect(JSON.parse(body)).toMatchObject({ error: 'unauthorized' })
    expect(block).toContain(`content-length: ${Buffer.byteLength(body)}`)
    expect(block).toContain('access-control-allow-origin: https://app.example')

    const foreign = await new RawClient(port).send(
      head(`${base()}/refused?peer=a&token=${token('a')}`, 'Origin: https://evil.example\r\n'),
    )
    await foreign.closedByServer('the origin refusal')
    expect(statusOf(foreign.text)).toBe(403)
    expect(foreign.text).toContain('"origin-not-allowed"')
  })

  test('the per-address connection cap counts bare streams, and gives them back when they close', async () => {
    const capped = await startServer({ maxConnectionsPerAddress: 6 })
    const port = capped.port
    const clients: RawClient[] = []
    for (let i = 0; i < 6; i++) {
      const client = await new RawClient(port).send(head(`${base()}/cap?peer=p${i}&token=${token('c')}${i}`))
      await client.read('event: welcome', `stream ${i}`)
      clients.push(client)
    }
    const over = await new RawClient(port).send(head(`${base()}/cap?peer=p9&token=${token('c')}9`))
    await over.closedByServer('the seventh stream')
    expect(statusOf(over.text)).toBe(429)
    expect(headerBlock(over.text)).toContain('retry-after: 1')
    for (const client of clients) client.close()
    await until(() => capped.signaling.stats().connections.sse === 0, 'the six to end', 5000)
    const again = await new RawClient(port).send(head(`${base()}/cap?peer=p0&token=${token('c')}0`))
    await again.read('event: welcome', 'a stream once the others left')
    again.close()
    await capped.close()
  })

  test('hostile bytes go to node:http, which answers 400; a bare subscriber next door hears nothing of it', async () => {
    const witness = await new RawClient(port).send(head(`${base()}/calm?peer=w&token=${token('w')}`))
    await witness.read('event: welcome', 'the witness')
    const before = witness.text.length
    const hostile = [
      `GET ${base()}/calm?peer=x&token=${token('x')} HTTP/1.1\r\nHost: x\rInjected: event\r\n\r\n`,
      `GET ${base()}/calm?peer=x&token=${token('x')} HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n`,
      `GET ${base()}/calm?peer=x&token=${token('x')} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n`,
      `GET ${base()}/calm?peer=x&token=${token('x')} HTTP/1.1\r\n Host: x\r\n\r\n`,
      '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03', // a TLS ClientHello's first bytes
      `GET ${base()}/calm?peer=x&token=${token('x')} HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`,
    ]
    for (const bytes of hostile) {
      const client = await new RawClient(port).send(bytes)
      await client.closedByServer(JSON.stringify(bytes.slice(0, 60)))
      expect([400, 431]).toContain(statusOf(client.text))
    }
    expect(witness.closed).toBe(false)
    expect(witness.text.length).toBe(before)
    witness.close()
  })

  test('a client that half-closes before its first byte, or during its stream, is closed', async () => {
    const silent = await new RawClient(port).connected()
    silent.socket.end()
    await silent.closedByServer('a half-close before any byte')
    const streaming = await new RawClient(port).send(head(`${base()}/half?peer=a&token=${token('h')}`))
    await streaming.read('event: welcome', 'the welcome')
    streaming.socket.end()
    await streaming.closedByServer('a half-close during the stream')
    await until(() => server.signaling.stats().connections.sse === 0, 'the stream to end', 5000)
  })
})

describe('takeEventStreams on a server of your own', () => {
  test('a client that never sends is cut after headersTimeout; close() ends bare streams and silent sockets', async () => {
    // authorize sees the request as node:http would build it: headers with Object's prototype, headersDistinct.
    const signaling = createSignalingServer({
      authorize: (request) =>
        typeof request.headers.hasOwnProperty === 'function' &&
        request.headersDistinct.cookie?.[0] === 'member=1' &&
        request.headers.cookie === 'member=1',
    })
    const http = createHttpServer()
    signaling.attach(http)
    http.headersTimeout = 300
    signaling.takeEventStreams(http)
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const { port } = http.address() as { port: number }

    // authorize sees the request the front built: its headers and its socket.
    const member = await new RawClient(port).send(head(`/signal/own?peer=a&token=${token('a')}`, 'Cookie: member=1\r\n'))
    await member.read('event: welcome', 'the member')
    const stranger = await new RawClient(port).send(head(`/signal/own?peer=b&token=${token('b')}`))
    await stranger.closedByServer('the stranger')
    expect(statusOf(stranger.text)).toBe(403)

    const quiet = await new RawClient(port).connected()
    await quiet.closedByServer('a socket that never sent a byte')
    expect(quiet.text).toBe('')

    const waiting = await new RawClient(port).connected()
    await signaling.close()
    const closed = new Promise<void>((resolve) => http.close(() => resolve()))
    await member.closedByServer('close() with a bare stream open')
    await waiting.closedByServer('close() with a socket yet to send')
    await closed
  })

  test('drain(): a bare stream hears restart, a socket yet to send a byte is closed (not left to headersTimeout)', async () => {
    const signaling = createSignalingServer()
    const http = createHttpServer()
    signaling.attach(http) // headersTimeout 10 s: longer than the wait below
    signaling.takeEventStreams(http)
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const { port } = http.address() as { port: number }
    const member = await new RawClient(port).send(head(`/signal/drain?peer=a&token=${token('a')}`))
    await member.read('event: welcome', 'the member')
    const silent = await new RawClient(port).connected()
    await until(() => signaling.stats().connections.sse === 1, 'the stream to count', 5000)
    const drained = signaling.drain()
    await member.read('event: restart', 'the restart event')
    await member.closedByServer('the restarted stream')
    await silent.closedByServer('the silent socket, on drain')
    await drained
    // Draining: a subscription now is refused, retryable.
    const late = await new RawClient(port).send(head(`/signal/drain?peer=b&token=${token('b')}`))
    await late.closedByServer('a subscription while draining')
    expect(statusOf(late.text)).toBe(503)
    await signaling.close()
    // Still listening (headersTimeout 10 s): a connection now is closed at once, not held for its first read.
    const afterClose = await new RawClient(port).connected()
    await afterClose.closedByServer('a connection after close(), the server still listening')
    await new Promise<void>((resolve) => http.close(() => resolve()))
  })

  test('a client that never ends its side: a refusal and a restart still close the connection (no fd kept)', async () => {
    const signaling = createSignalingServer({ maxConnectionsPerAddress: 1 })
    const http = createHttpServer()
    signaling.attach(http)
    signaling.takeEventStreams(http)
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const { port } = http.address() as { port: number }
    const connections = () => new Promise<number>((resolve) => http.getConnections((_, count) => resolve(count)))
    const member = await new RawClient(port, true).send(head(`/signal/open?peer=a&token=${token('a')}`))
    await member.read('event: welcome', 'the member')
    const refused = await new RawClient(port, true).send(head(`/signal/open?peer=b&token=${token('b')}`))
    await refused.read('"too-many-connections"', 'the refusal')
    await until(async () => (await connections()) === 1, 'the refused connection to be closed by the server', 5000)
    const drained = signaling.drain()
    await member.read('event: restart', 'the restart')
    await until(async () => (await connections()) === 0, 'the restarted stream closed by the server', 5000)
    await drained
    member.close()
    refused.close()
    await signaling.close()
    await new Promise<void>((resolve) => http.close(() => resolve()))
  })

  test("a server's lower maxHeaderSize holds on the bare path too: node:http answers 431", async () => {
    const signaling = createSignalingServer()
    const http = createHttpServer({ maxHeaderSize: 1024 })
    signaling.attach(http)
    signaling.takeEventStreams(http)
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const { port } = http.address() as { port: number }
    const big = await new RawClient(port).send(head(`/signal/big?peer=a&token=${token('a')}`, `X-Pad: ${'p'.repeat(2000)}\r\n`))
    await big.closedByServer('a 2 KB head')
    expect(statusOf(big.text)).toBe(431)
    await signaling.close()
    await new Promise<void>((resolve) => http.close(() => resolve()))
  })

  test('refused for an https server, one with a connection listener of its own, or one fronted already', () => {
    const signaling = createSignalingServer()
    const https = createHttpsServer()
    expect(() => signaling.takeEventStreams(https as unknown as Server)).toThrow(TypeError)
    const watched = createHttpServer()
    watched.on('connection', () => {})
    expect(() => signaling.takeEventStreams(watched)).toThrow(TypeError)
    const plain = createHttpServer()
    signaling.takeEventStreams(plain)
    expect(() => signaling.takeEventStreams(plain)).toThrow(TypeError)
    void signaling.close()
  })
})
