// The reference server's own RFC 6455 side (src/server/ws-connection.ts), on the wire, for what
// the fuzz suite (server-fuzz.test.ts) does not ask: valid frames of every length form, cut at
// awkward places and fragmented, arrive whole at another client; pings within the allowance are
// answered; a client that never finishes the closing handshake is cut. And what a hostile tester
// found (each case failed before its mend): memory held per connection follows what it sent, not
// how it cut it; a burst to a client that reads is no reason to cut it; junk frames are closed
// on; handshakes RFC 6455 refuses are refused. The sender writes frames by hand
// (test/support/ws-wire.ts); the receiver is the `ws` package, an implementation not ours.
import { connect } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import { type RunningSignalingServer, startSignalingServer } from '../../src/server/index'
import { until } from '../support/until'
import { decodeFrames, encodeFrame, OPCODE, RawWebSocket, upgradeRequest, within } from '../support/ws-wire'

const BOUND_MS = 10_000

// A full collection before each reading of memory held (the flag can be set at run time).
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
/** Bytes of heap and of Buffers held now, after a full collection. */
function held(): number {
  gc()
  gc()
  const { heapUsed, arrayBuffers } = process.memoryUsage()
  return heapUsed + arrayBuffers
}
const MB = 2 ** 20
let server: RunningSignalingServer
let serial = 0

beforeAll(async () => {
  server = await startSignalingServer({ port: 0 })
})
afterAll(async () => {
  await server.close()
})

const pathOf = (room: string, peer: string, token = `token-of-${peer}`.padEnd(24, '_')) =>
  `/signal/${room}?peer=${peer}&token=${token}`

/** A `ws` client that collects the signaling messages relayed to it. */
async function receiver(room: string, peer: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}${pathOf(room, peer)}`, { perMessageDeflate: false })
  const messages: Array<Record<string, unknown>> = []
  let welcomed = false
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data))
    if (frame.type === 'welcome') welcomed = true
    if (frame.type === 'message') messages.push(frame.message)
  })
  await until(() => welcomed, `${peer}'s welcome`, BOUND_MS)
  return { ws, messages }
}

/** A room of its own: `b`, a `ws` client that collects what is relayed to it, and `a`, who writes frames by hand. */
async function roomOf(name: string) {
  const room = `${name}-${serial++}`
  const b = await receiver(room, 'b')
  const a = await RawWebSocket.open(server.port, pathOf(room, 'a'))
  const end = () => {
    b.ws.close()
    a.connection.socket.destroy()
  }
  return { room, a, b, end }
}

/** An offer from `from` to `to` whose JSON text is `bytes` long, give or take a few. */
function offerOf(from: string, to: string, bytes: number, tag: string) {
  const base = { kind: 'description', from, session: 1, to, toSession: 1, description: { type: 'offer', sdp: '' } }
  const padding = Math.max(0, bytes - JSON.stringify(base).length - tag.length - 1)
  base.description.sdp = `${tag}\n${'a'.repeat(padding)}`
  return JSON.stringify(base)
}

/** Writes `bytes` in pieces of `size`, a turn of the event loop apart, so the server reads them apart. */
async function trickle(socket: RawWebSocket, bytes: Buffer, size: number) {
  for (let at = 0; at < bytes.length; at += size) {
    socket.write(bytes.subarray(at, at + size))
    await new Promise((resolve) => setImmediate(resolve))
  }
}

describe('the WebSocket route on the wire', () => {
  // 7-bit, 16-bit and 64-bit payload lengths, each at its edges.
  const SIZES = [20, 125, 126, 1000, 65_535, 65_536, 120_000]

  test.each([
    ['one write for all', 0],
    ['pieces of 1000 bytes', 1000],
    ['pieces of 7 bytes', 7],
  ])('valid frames of every length form arrive whole and in order (%s)', async (_, size) => {
    const { a, b, end } = await roomOf('lengths')
    // Only the small ones byte-sized: 120 KB in pieces of 7 is 17k turns of the loop, still quick; of 1, slow for nothing.
    const texts = SIZES.filter((bytes) => size !== 7 || bytes <= 65_536).map((bytes) => offerOf('a', 'b', bytes, `n${bytes}`))
    const stream = Buffer.concat(texts.map((text) => encodeFrame({ opcode: OPCODE.text, payload: text })))
    if (size) await trickle(a, stream, size)
    else a.write(stream)
    await until(() => b.messages.length >= texts.length, 'every message at b', BOUND_MS)
    expect(b.messages.map((message) => JSON.stringify(message))).toEqual(texts)
    end()
  })

  test('a message in fragments, cut inside a UTF-8 character, with pings between them, arrives whole; each ping is answered', async () => {
    const { a, b, end } = await roomOf('fragments')
    const text = Buffer.from(offerOf('a', 'b', 70_000, 'fragmented ✓ €'))
    const cut = text.indexOf('€') + 1 // inside the euro sign's three bytes
    const pieces = [text.subarray(0, cut), text.subarray(cut, 40_000), text.subarray(40_000)]
    const frames = pieces.map((payload, k) =>
      encodeFrame({ opcode: k ? OPCODE.continuation : OPCODE.text, fin: k === pieces.length - 1, payload }),
    )
    const ping = (payload: string) => encodeFrame({ opcode: OPCODE.ping, payload })
    await trickle(a, Buffer.concat([frames[0], ping('one'), frames[1], ping('two'), frames[2]] as Buffer[]), 5000)
    await until(() => b.messages.length === 1, 'the message at b', BOUND_MS)
    expect(JSON.stringify(b.messages[0])).toBe(text.toString())
    const pongs = () => a.frames().filter((frame) => frame.opcode === OPCODE.pong)
    await within(
      a.connection.waitFor(() => pongs().length === 2),
      BOUND_MS,
      'two pongs',
    )
    expect(pongs().map((frame) => frame.payload.toString())).toEqual(['one', 'two'])
    end()
  })

  test('a text holding U+FFFD itself (what invalid UTF-8 decodes to) is valid UTF-8, and relayed', async () => {
    const { a, b, end } = await roomOf('replacement')
    const text = offerOf('a', 'b', 300, 'a replacement character: \uFFFD, as sent')
    a.write(encodeFrame({ opcode: OPCODE.text, payload: Buffer.from(text) }))
    await until(() => b.messages.length === 1, 'the message at b', BOUND_MS)
    expect(JSON.stringify(b.messages[0])).toBe(text)
    end()
  })

  test('pings within the allowance (100 between heartbeats) are all answered, and the connection stays', async () => {
    const { a, b, end } = await roomOf('pings')
    a.write(Buffer.concat(Array.from({ length: 100 }, (_, k) => encodeFrame({ opcode: OPCODE.ping, payload: `${k}` }))))
    const pongs = () => a.frames().filter((frame) => frame.opcode === OPCODE.pong)
    await within(
      a.connection.waitFor(() => pongs().length === 100),
      BOUND_MS,
      '100 pongs',
    )
    a.write(encodeFrame({ opcode: OPCODE.text, payload: offerOf('a', 'b', 200, 'after the pings') }))
    await until(() => b.messages.length === 1, 'a message after the pings', BOUND_MS)
    expect(a.connection.endedByServer).toBe(false)
    end()
  })

  test('a refused client that never answers the close frame nor ends its side is cut', async () => {
    const room = `stubborn-${serial++}`
    const holder = await receiver(room, 'p')
    // Same peer id, another token: refused with 4409 (id-taken) after the handshake.
    const socket = connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true })
    let received = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
    })
    socket.on('error', () => {})
    const closed = new Promise((resolve) => socket.once('close', resolve))
    let ended = false
    socket.on('end', () => {
      ended = true // and we do not end ours: only the server's cut can close this socket
    })
    socket.write(upgradeRequest(pathOf(room, 'p', 'another-token-0123456789'), server.port).text)
    // The server ends its side at once; while it keeps the socket, what we send is read and dropped.
    // Once it has cut it, the next byte we send is answered with a reset, and the socket closes.
    const nudge = setInterval(() => socket.writable && socket.write('x'), 200)
    await within(closed, BOUND_MS, 'the server to cut a socket that never closed its side').finally(() => clearInterval(nudge))
    const body = received.subarray(received.indexOf('\r\n\r\n') + 4)
    const close = decodeFrames(body).frames.find((frame) => frame.opcode === OPCODE.close)
    expect(received.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /)
    expect(close?.payload.readUInt16BE(0)).toBe(4409)
    expect(ended).toBe(true)
    holder.ws.close()
  })

  // Kept as views of their chunks, 1200 fragments padded so held ~75 MB. Pongs count against the
  // control-frame allowance now (100 between heartbeats), so the padding itself ends the connection.
  test('a message in 1-byte fragments, each followed by 64 KB of pongs, is closed at the pong allowance (1008), holding little', async () => {
    const { a, b, end } = await roomOf('fragment-memory')
    a.connection.socket.setNoDelay(true)
    const text = Buffer.from(offerOf('a', 'b', 1200, 'one byte a fragment'))
    // 500 pongs of 125 bytes: each fragment comes in a read of its own, ~64 KB long.
    const pongs = Buffer.concat(
      Array.from({ length: 500 }, () => encodeFrame({ opcode: OPCODE.pong, payload: Buffer.alloc(125) })),
    )
    const before = held()
    let peak = 0
    for (let k = 0; k < text.length && a.close() === undefined && !a.connection.socket.destroyed; k++) {
      const opcode = k ? OPCODE.continuation : OPCODE.text
      a.write(Buffer.concat([encodeFrame({ opcode, fin: k === text.length - 1, payload: text.subarray(k, k + 1) }), pongs]))
      await new Promise((resolve) => setImmediate(resolve))
      peak = Math.max(peak, held() - before)
    }
    await until(() => a.close() !== undefined, 'the close frame', BOUND_MS)
    expect(a.close()?.code).toBe(1008)
    expect(b.messages).toEqual([])
    expect(peak).toBeLessThan(16 * MB)
    end()
  })

  test('a frame trickled a byte at a time holds about the bytes that came', async () => {
    const room = `trickle-memory-${serial++}`
    const a = await RawWebSocket.open(server.port, pathOf(room, 'a'))
    a.connection.socket.setNoDelay(true)
    // Declares 200 000 bytes; 60 000 of them come, one write and one turn of the loop each (so one read each).
    const frame = encodeFrame({ opcode: OPCODE.text, payload: Buffer.alloc(200_000, 0x20) })
    const before = held()
    for (let k = 0; k < 60_000; k++) {
      a.write(frame.subarray(k, k + 1))
      await new Promise((resolve) => setImmediate(resolve))
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
    // Kept as a list of the chunks, each byte held ~70 bytes (4 MB here).
    expect(held() - before).toBeLessThan(2 * MB)
    expect(a.connection.endedByServer).toBe(false)
    a.connection.socket.destroy()
  })

  test('three 480 KB frames in one write, to a client that reads: all 12 messages arrive, nobody is cut', async () => {
    const { a, b, end } = await roomOf('burst')
    let closed = false
    b.ws.on('close', () => {
      closed = true
    })
    const batch = (k: number) =>
      `[${Array.from({ length: 4 }, (_, m) => offerOf('a', 'b', 120 * 1024, `burst ${k}.${m}`)).join(',')}]`
    a.write(Buffer.concat([0, 1, 2].map((k) => encodeFrame({ opcode: OPCODE.text, payload: batch(k) }))))
    await until(() => b.messages.length === 12 || closed, '12 messages at b', BOUND_MS)
    expect(closed).toBe(false)
    expect(b.messages).toHaveLength(12)
    end()
  })

  test('10 000 junk frames in one write: refused up to the burst, then closed with 1008; others still relay', async () => {
    const room = `junk-${serial++}`
    const a = await RawWebSocket.open(server.port, pathOf(room, 'a'))
    a.write(Buffer.concat(Array.from({ length: 10_000 }, () => encodeFrame({ opcode: OPCODE.text, payload: '' }))))
    await within(a.connection.closed, BOUND_MS, 'the server to close on the junk')
    const errors = a
      .frames()
      .filter((frame) => frame.opcode === OPCODE.text && frame.payload.toString().startsWith('{"type":"error"'))
    expect(a.close()?.code).toBe(1008)
    // rateBurst (200) refused, the next one closes.
    expect(errors.length).toBe(201)
    const b = await receiver(room, 'b')
    const c = await RawWebSocket.open(server.port, pathOf(room, 'c'))
    c.write(encodeFrame({ opcode: OPCODE.text, payload: offerOf('c', 'b', 300, 'after the junk') }))
    await until(() => b.messages.length === 1, 'a message after the junk', BOUND_MS)
    b.ws.close()
    c.connection.socket.destroy()
  })

  test.each([
    ['HTTP/1.0', (text: string) => text.replace('HTTP/1.1', 'HTTP/1.0'), 400],
    ['no Host', (text: string) => text.replace(/Host: [^\r]*\r\n/, ''), 400],
    ['Sec-WebSocket-Version: 8', (text: string) => text.replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 8'), 400],
    ['Upgrade: websocket, h2c (a list)', (text: string) => text.replace('Upgrade: websocket', 'Upgrade: websocket, h2c'), 101],
  ])('a handshake with %s is answered as RFC 6455 says', async (_, change, status) => {
    const socket = connect(server.port, '127.0.0.1')
    let answer = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk) => {
      answer += chunk
    })
    socket.on('error', () => {})
    socket.write(change(upgradeRequest(pathOf(`handshake-${serial++}`, 'h'), server.port).text))
    await until(() => answer.includes('\r\n\r\n'), 'the answer', BOUND_MS)
    expect(answer.split(' ')[1]).toBe(String(status))
    // §4.4: a version we do not speak is answered with the one we do.
    if (answer.includes('Version must')) expect(answer).toContain('Sec-WebSocket-Version: 13\r\n')
    socket.destroy()
  })
})
