import { type AddressInfo, createServer, connect as dial, type Socket } from 'node:net'
import { expect, test } from 'vitest'
import { WebSocket } from 'ws'
import { ByteEvent, type RoomEvent } from '../../src/server/hub'
import { MemoryHub } from '../../src/server/memory-hub'
import { SERVER_DEFAULTS } from '../../src/server/options'
import { WebSocketConnection } from '../../src/server/ws-connection'
import { startServer } from '../support/server'
import { readEvents as stream } from '../support/sse-reader'
import { until } from '../support/until'

// A message the scan takes travels as the bytes it came in: into the in-memory hub's journal, out
// to WebSocket peers, never decoded on the way. Everything that reads it as text must still see
// exactly those bytes: SSE peers, a replay, and the hub's own listeners (a plain object for them).

const token = (peer: string) => peer.repeat(24)

/** An SDP with what JSON escapes, characters of 2, 3 and 4 bytes, and a U+2028. */
const SDP = 'v=0\r\na=msid:"stream-Ω" track-ü\\é\u2028😀\ta=end'

function connect(url: string, room: string, peer: string): Promise<{ ws: WebSocket; frames: string[] }> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/${room}?peer=${peer}&token=${token(peer)}`)
  const frames: string[] = []
  ws.on('message', (data) => frames.push(String(data)))
  return new Promise((resolve, reject) => {
    ws.once('message', () => resolve({ ws, frames }))
    ws.once('error', reject)
  })
}

/** The `message` frames' messages, as the texts they were sent in (cut out of each frame, not parsed and written again). */
const relayed = (frames: string[]) =>
  frames
    .filter((frame) => frame.startsWith('{"type":"message"'))
    .map((frame) => frame.slice(frame.indexOf('"message":') + 10, -1))

test.each([
  ['as JSON.stringify writes it (the scan takes it: bytes all the way)', (message: object) => JSON.stringify(message), true],
  [
    'with spaces (the full way: parsed, validated, relayed as text)',
    (message: object) => JSON.stringify(message, null, 1),
    false,
  ],
])('a message written %s reaches every reader as the same text', async (_name, write, asBytes) => {
  const hub = new MemoryHub(SERVER_DEFAULTS)
  const server = await startServer({ hub })
  const b = await connect(server.url, 'bytes', 'b')
  const c = await stream(`${server.url}/bytes?peer=c&token=${token('c')}`)
  const a = await connect(server.url, 'bytes', 'a')
  // A listener of the hub's own (an admin view): no `bytes`, so it gets a plain object.
  const heard: RoomEvent[] = []
  const stop = hub.subscribe('bytes', (event) => heard.push(event))
  // One that takes bytes, as the server's own subscriptions do.
  const heardAsBytes: RoomEvent[] = []
  const stopBytes = hub.subscribe('bytes', (event) => heardAsBytes.push(event), undefined, true)
  try {
    // Over 4 KB: a frame written in parts (header, then each part), not in one buffer.
    const offer = {
      kind: 'description',
      from: 'a',
      to: 'b',
      session: 1,
      toSession: 1,
      description: { type: 'offer', sdp: SDP.repeat(200) },
    }
    const broadcast = { kind: 'hello', from: 'a', session: 1, offer: SDP }
    const sent = [write(offer), write(broadcast)]
    for (const text of sent) a.ws.send(text)
    await until(() => relayed(b.frames).length === 2 && c.events.filter((event) => !event.event).length === 1, 'relayed')
    // What goes out: the text as it came when the scan took it, else the validated copy serialized
    // (here the same message without its spaces: the copy keeps these keys in this order).
    const expected = sent.map((text) => JSON.stringify(JSON.parse(text)))
    if (asBytes) expect(expected).toEqual(sent)
    expect(relayed(b.frames)).toEqual(expected)
    expect(heardAsBytes.map((event) => event instanceof ByteEvent)).toEqual([asBytes, asBytes])
    expect(heardAsBytes.map((event) => event.data)).toEqual(expected)
    expect(c.events.filter((event) => !event.event).map((event) => event.data)).toEqual([expected[1]])
    expect(heard.map((event) => event.data)).toEqual(expected)
    // Plain objects: a spread or JSON.stringify of them keeps `data`.
    expect(heard.some((event) => event instanceof ByteEvent)).toBe(false)
    expect(heard.map((event) => ({ ...event }).data)).toEqual(expected)
    // A late joiner's replay comes out of the journal: the broadcast, the same text again.
    const d = await connect(server.url, 'bytes', 'd')
    await until(() => relayed(d.frames).length === 1, 'the replay')
    expect(relayed(d.frames)).toEqual([expected[1]])
    d.ws.close()
  } finally {
    stop()
    stopBytes()
    a.ws.close()
    b.ws.close()
    c.close()
    await server.close()
  }
})

/** A server side of a real TCP connection on 127.0.0.1, and the bytes its client receives. */
async function tcpPair(): Promise<{ socket: Socket; received: () => Buffer; close: () => void }> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve))
  const client = dial((server.address() as AddressInfo).port, '127.0.0.1')
  const chunks: Buffer[] = []
  client.on('data', (chunk) => chunks.push(chunk))
  const socket = await accepted
  return {
    socket,
    received: () => Buffer.concat(chunks),
    close: () => {
      client.destroy()
      socket.destroy()
      server.close()
    },
  }
}

class Sender extends WebSocketConnection {
  receive(): void {}
  closed(): void {}
}

test("a relayed message's bytes that are a small view of a large frame are queued as a copy: a socket's queue counts only the view", async () => {
  const { socket, received, close } = await tcpPair()
  try {
    const queued: Uint8Array[] = []
    const write = socket.write.bind(socket) as (chunk: unknown) => boolean
    socket.write = ((chunk: unknown) => {
      if (chunk instanceof Uint8Array) queued.push(chunk)
      return write(chunk)
    }) as typeof socket.write
    // One message of 5 KB cut out of a 400 KB frame (a batch padded by its sender), then one that is most of its frame.
    const frame = Buffer.alloc(400_000, 0x61)
    const sender = new Sender(socket, 1 << 20)
    sender.sendText('{"message":"', frame.subarray(0, 5000), '"}')
    sender.sendText('{"message":"', frame.subarray(0, 300_000), '"}')
    const large = queued.filter((chunk) => chunk.byteLength >= 5000)
    expect(large.map((chunk) => [chunk.byteLength, chunk.buffer.byteLength])).toEqual([
      [5000, 5000],
      [300_000, 400_000],
    ])
    // And the frames are whole: header (4 and 10 bytes), then the text.
    const texts = (length: number) => `{"message":"${'a'.repeat(length)}"}`
    await until(() => received().length === 4 + 5014 + 10 + 300_014, 'both frames')
    const bytes = received()
    expect(bytes.subarray(4, 4 + 5014).toString()).toBe(texts(5000))
    expect(bytes.subarray(4 + 5014 + 10).toString()).toBe(texts(300_000))
  } finally {
    close()
  }
})
