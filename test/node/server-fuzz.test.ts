// Frame- and HTTP-level fuzzing of the reference server, run as its own process (the built CLI), so
// that "no client input ends the server" is checked on the process itself. A malformed WebSocket
// frame once killed it: ws closes the socket and emits 'error' on the WebSocket, and nobody listened.
//
// Every case is a fresh peer in one of a few rooms that long-lived "anchor" peers hold, every wait
// is bounded, at most PARALLEL sockets are open at once. After each batch the process must still
// run, the anchors must still be connected and have got nothing but the server's own JSON, and a
// bystander (another client address) must connect a fresh pair that relays, and subscribe over SSE.
// The mutations are seeded (printed below): FUZZ_SEED=<seed> replays a run; a case's bytes depend
// only on the seed and its number.
import { existsSync, readdirSync } from 'node:fs'
import { get, type IncomingMessage } from 'node:http'
import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import { parseSignal } from '../../src/protocol'
import { prng } from '../support/chaos'
import { type CliServer, startCli } from '../support/cli-server'
import { BYTE_MUTATIONS, frameText, HTTP_NASTY, int, LIMIT, mutatedStream, pick, randomBytes } from '../support/fuzz-inputs'
import { readEvents } from '../support/sse-reader'
import { until } from '../support/until'
import {
  closePayload,
  encodeFrame,
  type Frame,
  type FrameSpec,
  OPCODE,
  RawConnection,
  RawWebSocket,
  upgradeRequest,
  within,
} from '../support/ws-wire'

// Fixed, so every CI run tries the same cases (a failure reproduces); FUZZ_SEED=<n> explores others.
const SEED = Number(process.env.FUZZ_SEED) || 20_261_130
console.log(`server-fuzz: seed ${SEED} (replay with FUZZ_SEED=${SEED})`)

/** Sockets open at once: the server may cap connections per address. */
const PARALLEL = 16
/** Bound of every wait on the server. It answers in milliseconds; this is for a loaded CI machine. */
const BOUND_MS = 10_000
const MUTATION_CASES = 3000
const HTTP_MUTATION_CASES = 1000

/** A case's own generator: case `index` of a seed is the same bytes whatever ran before it. */
const caseRandom = (salt: number, index: number) =>
  prng((SEED ^ Math.imul(salt, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0)

let server: CliServer
let serial = 0
/** The room, peer and token of `name` in `room`: every case is a peer of its own, so no claim or rate limit carries over. */
function target(name: string, room: string) {
  const peer = `p-${name}`
  const token = `t-${name}`.padEnd(24, '_')
  return { room, peer, token, path: `/signal/${room}?peer=${peer}&token=${token}` }
}

/**
 * The rooms the cases join, each held from the start by an anchor peer (a bystander, see below):
 * joining a room someone is in costs no room credit (one address may create 60 rooms a minute),
 * and the anchor hears whatever the fuzz gets relayed, as an innocent peer of the room would.
 */
const anchors: Array<{ room: string; ws: WebSocket; frames: string[] }> = []
const anchorRoom = (index: number) => (anchors[index % anchors.length] as (typeof anchors)[number]).room
/** A peer nobody used yet, in an anchor's room. */
const fresh = () => {
  const n = serial++
  return target(String(n), anchorRoom(n))
}
/**
 * Where the anchors and the health checks connect from: another loopback address, so they are
 * another client than the fuzz (whose address may have spent its room credit, and holds at most
 * PARALLEL sockets); 127.0.0.1 where no other is configured.
 */
let bystander = '127.0.0.1'

const hex = (bytes: Buffer) =>
  bytes.length > 512 ? `${bytes.subarray(0, 512).toString('hex')}… (${bytes.length} bytes)` : bytes.toString('hex')

/**
 * Runs cases 0..count-1, at most PARALLEL at once. The first failure stops the batch and is thrown
 * with the case's reproducer and the server's stderr; if the server died, with every case that was
 * in flight then (any of them may be the one that killed it).
 */
async function inParallel(count: number, run: (index: number) => Promise<void>, reproducer: (index: number) => string) {
  if (!server.alive()) throw new Error(`The server died before this batch (see the first failure)\n${server.report()}`)
  let next = 0
  let failure: { index: number; error: Error; inFlight: number[] } | undefined
  const inFlight = new Set<number>()
  const worker = async () => {
    while (!failure && next < count) {
      const index = next++
      inFlight.add(index)
      try {
        await run(index)
      } catch (error) {
        failure ??= { index, error: error as Error, inFlight: [...inFlight] }
      } finally {
        inFlight.delete(index)
      }
    }
  }
  await Promise.all(Array.from({ length: PARALLEL }, worker))
  if (!failure) return
  // A case that fails while the server dies may be seen before the exit is: give it a moment (not an assertion).
  await within(server.exited, 1000, 'the exit').catch(() => {})
  const died = server.alive() ? '' : `THE SERVER PROCESS DIED; cases in flight:\n${failure.inFlight.map(reproducer).join('\n')}\n`
  throw new Error(`${died}${failure.error.message}\ncase: ${reproducer(failure.index)}\n${server.report()}`)
}

/** A `ws` client (from `localAddress`) that has its welcome; collects the text frames it gets. */
async function wsClient(path: string, localAddress = '127.0.0.1') {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, { localAddress })
  const frames: string[] = []
  ws.on('message', (data) => frames.push(String(data)))
  ws.on('error', () => {})
  await until(
    () => frames.some((frame) => frame.startsWith('{"type":"welcome"')),
    `the welcome of a WebSocket on ${path}`,
    BOUND_MS,
  )
  return { ws, frames }
}

/** An SSE subscription (from `localAddress`) gets its status and welcome event, then is dropped. */
async function sseWelcome(path: string, localAddress: string): Promise<void> {
  let text = ''
  const request = get({ host: '127.0.0.1', port: server.port, path, localAddress })
  try {
    const response = await within(
      new Promise<IncomingMessage>((resolve, reject) => {
        request.on('response', resolve)
        request.on('error', reject)
      }),
      BOUND_MS,
      `the answer to an SSE subscription on ${path}`,
    )
    expect(response.statusCode, `SSE on ${path}`).toBe(200)
    response.on('data', (chunk) => {
      text += chunk
    })
    await until(() => text.includes('event: welcome'), `the SSE welcome on ${path}`, BOUND_MS)
  } finally {
    request.destroy()
  }
}

/** Server → client frames of the route; a relayed message must be one the server validated and re-serialized. */
function expectServerFrame(frame: string, where: string) {
  let parsed: { type?: unknown; message?: unknown }
  try {
    parsed = JSON.parse(frame)
  } catch {
    throw new Error(`${where} got a frame that is not JSON: ${frame.slice(0, 300)}`)
  }
  expect(['welcome', 'message', 'ack', 'error', 'reset'], `${where}: ${frame.slice(0, 300)}`).toContain(parsed.type)
  if (parsed.type === 'message') expect(() => parseSignal(parsed.message), `${where}: ${frame.slice(0, 300)}`).not.toThrow()
}

/** Open descriptors of the server process (Linux), or undefined where /proc is not there. */
function openFds(): number | undefined {
  const dir = `/proc/${server.child.pid}/fd`
  return existsSync(dir) ? readdirSync(dir).length : undefined
}
let baselineFds: number | undefined
/** Sockets of clients that are gone may still be closing: a few, not one per case. */
const FD_SLACK = 4

/**
 * The server process runs; it holds no more descriptors than it started with (give or take a few
 * closing), so no socket of the batch is left behind; the anchors are still connected and got
 * only the server's own JSON; from the bystander's address, a fresh pair connects over WebSocket
 * and relays a hello, and a fresh SSE subscription gets its welcome.
 */
async function expectHealthy(after: string) {
  expect(server.alive(), `${after}:\n${server.report()}`).toBe(true)
  if (baselineFds !== undefined) {
    const limit = baselineFds + FD_SLACK
    await until(
      () => (openFds() ?? 0) <= limit,
      `${after}: the server's open descriptors to come back to ${limit} or fewer (${baselineFds} at the start)`,
      BOUND_MS,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; it holds ${openFds()}`)
    })
  }
  // The anchors were connected all along, and what reached them is the server's own JSON.
  for (const [i, anchor] of anchors.entries()) {
    expect(anchor.ws.readyState, `${after}: anchor ${i} is still connected`).toBe(WebSocket.OPEN)
    for (const frame of anchor.frames) expectServerFrame(frame, `${after}: anchor ${i}`)
  }
  // A fresh pair, in a room of its own, from another client.
  const room = `fz-${SEED.toString(36)}-health-${serial}`
  const a = target(`health-a-${serial}`, room)
  const b = target(`health-b-${serial++}`, room)
  const first = await wsClient(a.path, bystander)
  const second = await wsClient(b.path, bystander)
  first.ws.send(JSON.stringify({ kind: 'hello', from: a.peer, session: 1 }))
  await until(
    () => second.frames.some((frame) => frame.includes(`"message":{"kind":"hello","from":"${a.peer}"`)),
    `${after}: the hello relayed between a fresh pair`,
    BOUND_MS,
  )
  first.ws.close()
  second.ws.close()
  await sseWelcome(target(`health-c-${serial}`, room).path, bystander)
  expect(server.alive(), `${after}:\n${server.report()}`).toBe(true)
}

/** Whether this machine answers on `address` (Linux has all of 127/8; others may have 127.0.0.1 only). */
function canBind(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once('error', () => resolve(false))
    probe.listen(0, address, () => probe.close(() => resolve(true)))
  })
}

beforeAll(async () => {
  server = await startCli()
  if (await canBind('127.0.0.2')) bystander = '127.0.0.2'
  for (let i = 0; i < PARALLEL; i++) {
    const room = `fz-${SEED.toString(36)}-room${i}`
    anchors.push({ room, ...(await wsClient(target(`anchor${i}`, room).path, bystander)) })
  }
  baselineFds = openFds()
})

afterAll(async () => {
  for (const anchor of anchors) anchor.ws.terminate()
  await server?.stop()
})

// ---------------------------------------------------------------------------------------------
// Frames: named classes with the close code RFC 6455 (and ws) give them
// ---------------------------------------------------------------------------------------------

const text = (payload: Buffer | string, spec: Partial<FrameSpec> = {}) => encodeFrame({ opcode: OPCODE.text, payload, ...spec })
const close = (code: number, reason: Buffer | string = '') =>
  encodeFrame({ opcode: OPCODE.close, payload: closePayload(code, reason) })
const hello = (from = 'x') => JSON.stringify({ kind: 'hello', from, session: 1 })
const bytes = (...values: number[]) => Buffer.from(values)

interface FrameCase {
  name: string
  /** Written after the welcome, one write each. */
  chunks: Buffer[]
  /** A turn of the event loop between writes, so the server reads them apart. */
  trickle?: boolean
  /** The code of the server's close frame; 'empty': a close frame without one; 'none': no close frame; undefined: not asserted. */
  close?: number | 'empty' | 'none'
  /** Half-close after writing: a truncated frame waits for bytes that never come. */
  eof?: boolean
  /** Sent in the same packet as the upgrade request (the server finds them in the upgrade's `head`). */
  withUpgrade?: boolean
  /** What the server must answer to the chunks (a pong, an error frame) before `after` is written. */
  answered?: (frames: Frame[]) => boolean
  /** Written once `answered` holds: a close sent at once would overtake the answer, which waits for the hub. */
  after?: Buffer
}

const pong = (payload: string) => (frames: Frame[]) =>
  frames.some((frame) => frame.opcode === OPCODE.pong && frame.payload.toString() === payload)
const errorFrame = (code: string) => (frames: Frame[]) =>
  frames.some((frame) => frame.opcode === OPCODE.text && frame.payload.toString().includes(`"code":"${code}"`))
const acked = (frames: Frame[]) => frames.some((frame) => frame.payload.toString().startsWith('{"type":"ack","n":1'))

const FRAME_CASES: FrameCase[] = [
  // Controls: the encoder is right, and valid frames at the edges are not refused.
  {
    name: 'control: a ping is answered, a close 1000 echoed',
    chunks: [encodeFrame({ opcode: OPCODE.ping, payload: 'hi' })],
    after: close(1000),
    close: 1000,
    answered: pong('hi'),
  },
  { name: 'control: an empty close is echoed empty', chunks: [encodeFrame({ opcode: OPCODE.close })], close: 'empty' },
  ...[1001, 1014, 3000, 4999].map((code) => ({ name: `control: close ${code} is echoed`, chunks: [close(code)], close: code })),
  {
    name: 'control: a payload of exactly the limit is read (and refused as not JSON)',
    chunks: [text('x'.repeat(LIMIT))],
    after: close(1000),
    close: 1000,
    answered: errorFrame('invalid-signal'),
  },
  {
    name: 'control: a small length in the 64-bit form, a zero mask',
    chunks: [text('nope', { lengthForm: 64, mask: Buffer.alloc(4) })],
    after: close(1000),
    close: 1000,
    answered: errorFrame('invalid-signal'),
  },
  {
    name: 'control: a message in fragments, a ping between them, UTF-8 split across them',
    chunks: [
      text(Buffer.from('"€', 'utf8').subarray(0, 3), { fin: false }),
      encodeFrame({ opcode: OPCODE.ping, payload: 'mid' }),
      encodeFrame({ opcode: OPCODE.continuation, payload: Buffer.from('€"', 'utf8').subarray(2) }),
    ],
    after: close(1000),
    close: 1000,
    answered: (frames) => pong('mid')(frames) && errorFrame('invalid-signal')(frames),
  },
  {
    name: 'control: a frame written one byte at a time is read whole (and acknowledged)',
    chunks: [...text(hello())].map((byte) => bytes(byte)),
    trickle: true,
    after: close(1000),
    close: 1000,
    answered: (frames) => errorFrame('spoofed-sender')(frames) && acked(frames),
  },
  // 100 pings are answered between two heartbeats; past that the flood is closed with 1008.
  {
    name: 'a flood of 5000 pings in one write',
    chunks: [Buffer.concat(Array.from({ length: 5000 }, () => encodeFrame({ opcode: OPCODE.ping, payload: 'p' })))],
    close: 1008,
  },
  // Unsolicited pongs are answered by nothing but still cost a read each: the same allowance.
  {
    name: 'a flood of 5000 unsolicited pongs in one write',
    chunks: [Buffer.concat(Array.from({ length: 5000 }, () => encodeFrame({ opcode: OPCODE.pong, payload: 'p' })))],
    close: 1008,
  },
  {
    name: 'control: a binary frame is refused by the route, not the socket',
    chunks: [encodeFrame({ opcode: OPCODE.binary, payload: 'x' })],
    after: close(1000),
    close: 1000,
    answered: errorFrame('bad-request'),
  },

  // Payload over the limit: 1009, before the payload is buffered.
  {
    name: 'over the limit, declared only (limit + 1, 64-bit length)',
    chunks: [encodeFrame({ opcode: OPCODE.text, length: LIMIT + 1 })],
    close: 1009,
  },
  {
    name: 'over the limit, declared only, binary',
    chunks: [encodeFrame({ opcode: OPCODE.binary, length: 10 * LIMIT })],
    close: 1009,
  },
  { name: 'over the limit, actually sent (600 KiB text)', chunks: [text('y'.repeat(600 * 1024))], close: 1009 },
  {
    name: 'over the limit across fragments (2 × 300 KiB)',
    chunks: [
      text('z'.repeat(300 * 1024), { fin: false }),
      encodeFrame({ opcode: OPCODE.continuation, payload: 'z'.repeat(300 * 1024) }),
    ],
    close: 1009,
  },
  {
    name: 'over the limit in many small fragments (9 × 64 KiB)',
    chunks: [
      text('w'.repeat(65536), { fin: false }),
      ...Array.from({ length: 8 }, () => encodeFrame({ opcode: OPCODE.continuation, fin: false, payload: 'w'.repeat(65536) })),
    ],
    close: 1009,
  },

  // Absurd 64-bit lengths: the top bit must be clear (RFC 6455 §5.2: 1002); the rest are over the limit (1009).
  ...[
    ['the high bit set (2^63)', 2n ** 63n],
    ['all ones (2^64 - 1)', 2n ** 64n - 1n],
  ].map(([what, length]) => ({
    name: `64-bit length: ${what}`,
    chunks: [encodeFrame({ opcode: OPCODE.text, length: length as bigint })],
    close: 1002,
  })),
  ...[
    ['2^53', 2n ** 53n],
    ['2^53 + 1', 2n ** 53n + 1n],
    ['2^53 - 1', 2n ** 53n - 1n],
    ['2^32', 2n ** 32n],
  ].map(([what, length]) => ({
    name: `64-bit length: ${what}`,
    chunks: [encodeFrame({ opcode: OPCODE.text, length: length as bigint })],
    close: 1009,
  })),
  { name: '64-bit length 2^63 on a ping', chunks: [encodeFrame({ opcode: OPCODE.ping, length: 2n ** 63n })], close: 1002 },

  // Invalid UTF-8: 1007.
  ...[
    ['a lone 0xFF', bytes(0xff)],
    ['an overlong NUL (C0 80)', bytes(0xc0, 0x80)],
    ['a UTF-16 surrogate (ED A0 80)', bytes(0xed, 0xa0, 0x80)],
    ['past U+10FFFF (F4 90 80 80)', bytes(0xf4, 0x90, 0x80, 0x80)],
    ['a sequence cut at the end', Buffer.concat([Buffer.from('{"kind":"hello","from":"'), bytes(0xe2, 0x82)])],
    ['a continuation byte first', bytes(0x80, 0x41)],
  ].map(([what, payload]) => ({
    name: `invalid UTF-8 in a text frame: ${what}`,
    chunks: [text(payload as Buffer)],
    close: 1007,
  })),
  {
    name: 'invalid UTF-8 across fragments',
    chunks: [text(bytes(0xe2, 0x82), { fin: false }), encodeFrame({ opcode: OPCODE.continuation, payload: bytes(0x28) })],
    close: 1007,
  },
  { name: 'invalid UTF-8 in a close reason', chunks: [close(1000, bytes(0xff, 0xfe))], close: 1007 },

  // Reserved bits (no extension was negotiated): 1002.
  ...[
    ['RSV1', 0b100],
    ['RSV2', 0b010],
    ['RSV3', 0b001],
    ['all three', 0b111],
  ].map(([what, rsv]) => ({ name: `${what} set on a text frame`, chunks: [text(hello(), { rsv: rsv as number })], close: 1002 })),
  { name: 'RSV1 set on a ping', chunks: [encodeFrame({ opcode: OPCODE.ping, rsv: 0b100 })], close: 1002 },
  {
    name: 'RSV1 set on a continuation',
    chunks: [text('a', { fin: false }), encodeFrame({ opcode: OPCODE.continuation, rsv: 0b100, payload: 'b' })],
    close: 1002,
  },

  // Unknown opcodes: 1002.
  ...[3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf].map((opcode) => ({
    name: `unknown opcode 0x${opcode.toString(16)}`,
    chunks: [encodeFrame({ opcode, payload: 'x' })],
    close: 1002,
  })),

  // A client frame without a mask: 1002.
  { name: 'an unmasked text frame', chunks: [text(hello(), { masked: false })], close: 1002 },
  {
    name: 'an unmasked close frame',
    chunks: [encodeFrame({ opcode: OPCODE.close, payload: closePayload(1000), masked: false })],
    close: 1002,
  },

  // Close codes a peer may not send, and a 1-byte close payload: 1002.
  ...[0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535].map((code) => ({
    name: `close code ${code}`,
    chunks: [close(code)],
    close: 1002,
  })),
  { name: 'a close with a 1-byte payload', chunks: [encodeFrame({ opcode: OPCODE.close, payload: bytes(0x03) })], close: 1002 },

  // Control frames must not be fragmented nor longer than 125 bytes: 1002.
  ...[OPCODE.ping, OPCODE.pong, OPCODE.close].map((opcode) => ({
    name: `a fragmented control frame (opcode ${opcode}, FIN clear)`,
    chunks: [encodeFrame({ opcode, fin: false })],
    close: 1002,
  })),
  { name: 'a ping of 126 bytes', chunks: [encodeFrame({ opcode: OPCODE.ping, payload: Buffer.alloc(126, 1) })], close: 1002 },
  {
    name: 'a close of 200 bytes',
    chunks: [encodeFrame({ opcode: OPCODE.close, payload: closePayload(1000, 'r'.repeat(198)) })],
    close: 1002,
  },
  {
    name: 'a pong with a 64-bit length of 5',
    chunks: [encodeFrame({ opcode: OPCODE.pong, payload: 'short', lengthForm: 64 })],
    close: 1002,
  },

  // Fragmentation out of order: 1002.
  { name: 'a continuation without a start', chunks: [encodeFrame({ opcode: OPCODE.continuation, payload: 'x' })], close: 1002 },
  { name: 'a new text frame inside a fragmented message', chunks: [text('[', { fin: false }), text(hello())], close: 1002 },
  {
    name: 'a new binary frame inside a fragmented message',
    chunks: [text('[', { fin: false }), encodeFrame({ opcode: OPCODE.binary, fin: false, payload: 'x' })],
    close: 1002,
  },
  // ws holds at most 16 Ki fragments of one message: 1008.
  {
    name: 'a message in more fragments than ws keeps (16 Ki + 1)',
    chunks: [
      text('', { fin: false }),
      Buffer.concat(Array.from({ length: 16 * 1024 }, () => encodeFrame({ opcode: OPCODE.continuation, fin: false }))),
    ],
    close: 1008,
  },

  // Truncated frames, then EOF: the server ends the socket (no close code to expect).
  ...[
    ['one byte of a header', bytes(0x81)],
    ['a header without its mask', bytes(0x81, 0x85)],
    ['half a mask', bytes(0x81, 0x85, 1, 2)],
    ['a 16-bit length cut short', bytes(0x81, 0xfe, 0x01)],
    ['a 64-bit length cut short', bytes(0x81, 0xff, 0, 0, 0)],
    ['a payload shorter than declared', text('0123456789', { length: 100 })],
    ['a fragmented message never finished', text('[', { fin: false })],
    ['a close frame cut in its payload', encodeFrame({ opcode: OPCODE.close, payload: closePayload(1000, 'bye'), length: 40 })],
  ].map(([what, chunk]) => ({ name: `truncated: ${what}, then EOF`, chunks: [chunk as Buffer], eof: true })),
  // A length that says less than was sent: the rest is read as the next frame (random-looking, masked bytes).
  { name: 'a payload longer than declared', chunks: [text(hello(), { length: 5 })], eof: true },
  // Frames in the same packet as the upgrade request: they arrive as the upgrade's head.
  { name: 'RSV2 in the packet of the upgrade request', chunks: [text(hello(), { rsv: 0b010 })], withUpgrade: true, close: 1002 },
  {
    name: 'a frame over the limit in the packet of the upgrade request',
    chunks: [encodeFrame({ opcode: OPCODE.text, length: LIMIT + 1 })],
    withUpgrade: true,
    close: 1009,
  },
  { name: 'a close 1000 in the packet of the upgrade request', chunks: [close(1000)], withUpgrade: true, close: 1000 },
]

/** One named frame case on a fresh connection. */
async function runFrameCase(frameCase: FrameCase): Promise<void> {
  const { path } = fresh()
  const socket = await RawWebSocket.open(server.port, path, frameCase.withUpgrade ? Buffer.concat(frameCase.chunks) : undefined)
  if (!frameCase.withUpgrade) {
    for (const chunk of frameCase.chunks) {
      socket.write(chunk)
      if (frameCase.trickle) await new Promise((resolve) => setImmediate(resolve))
    }
  }
  const { answered, after } = frameCase
  if (answered) {
    await within(
      socket.connection.waitFor(() => answered(socket.frames())),
      BOUND_MS,
      `${frameCase.name}: the server's answer`,
    )
    expect(answered(socket.frames()), `${frameCase.name}: the server's answer`).toBe(true)
  }
  if (after) socket.write(after)
  if (frameCase.eof) socket.connection.socket.end()
  await within(socket.connection.closed, BOUND_MS, `the server to end the socket after: ${frameCase.name}`)
  expect(socket.connection.endedByServer, frameCase.name).toBe(true)
  const answer = socket.close()
  if (frameCase.close === 'empty') expect(answer, frameCase.name).toEqual({ reason: '' })
  else if (frameCase.close === 'none') expect(answer, frameCase.name).toBeUndefined()
  else if (frameCase.close !== undefined) expect(answer?.code, frameCase.name).toBe(frameCase.close)
}

// ---------------------------------------------------------------------------------------------
// Frames: seeded mutations of valid streams
// ---------------------------------------------------------------------------------------------

/** How a mutation case ends: the client half-closes, waits a little for the server first, or drops the connection. */
type Ending = 'eof' | 'wait' | 'abandon'

/** Case `index` of this seed: the bytes, how they are cut into writes, how the client ends, and what was done to them. */
function mutationCase(index: number, peer: string) {
  const random = caseRandom(1, index)
  const { stream, applied } = mutatedStream(random, peer)
  const cuts = Array.from({ length: int(random, 3) }, () => int(random, stream.length + 1)).sort((x, y) => x - y)
  const chunks = [0, ...cuts].map((start, i) => stream.subarray(start, [...cuts, stream.length][i]))
  const roll = random()
  const ending: Ending = roll < 0.6 ? 'eof' : roll < 0.85 ? 'wait' : 'abandon'
  return { stream, chunks, ending, applied }
}

/** How long a 'wait' case gives the server to end the socket by itself before the client half-closes. */
const QUIET_MS = 100

// ---------------------------------------------------------------------------------------------
// HTTP on raw TCP
// ---------------------------------------------------------------------------------------------

interface HttpCase {
  name: string
  /** Written one after the other, `pauseMs` apart. */
  chunks: Array<Buffer | string>
  pauseMs?: number
  /** 'answer': wait for the status line, then half-close; 'eof': half-close at once; 'abandon': drop the connection. */
  ending: 'answer' | 'eof' | 'abandon'
  /** The status the server must answer with ('answer' only); a pattern for parser errors whose exact code is Node's. */
  status?: number | RegExp
  /** Written once the answer's status line arrived ('answer' only). */
  after?: string
}

const token = 'h'.repeat(24)
const REFUSED = /^4\d\d$/ // Node's HTTP parser refuses malformed requests with a 4xx (400, 413, 431…)

function httpCases(): HttpCase[] {
  const port = server.port
  const host = `Host: 127.0.0.1:${port}\r\n`
  const sse = () => `GET ${fresh().path} HTTP/1.1\r\n${host}\r\n`
  const post = (headers: string, body: string) =>
    `POST /signal/${fresh().room} HTTP/1.1\r\n${host}Authorization: Bearer ${token}\r\n${headers}\r\n${body}`
  const body = hello('nobody')
  const cl = `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`
  const room = (name: string) => `GET /signal/${name}?peer=p&token=${token} HTTP/1.1\r\n${host}\r\n`
  const upgrade = (headers: Record<string, string>, method = 'GET') =>
    upgradeRequest(fresh().path, port, headers).text.replace(/^GET/, method)
  const key = 'dGhlIHNhbXBsZSBub25jZQ=='
  return [
    // Controls: the project's own answers.
    { name: 'control: SSE subscribe', chunks: [sse()], ending: 'answer', status: 200 },
    { name: 'control: OPTIONS', chunks: [`OPTIONS /signal/r HTTP/1.1\r\n${host}\r\n`], ending: 'answer', status: 204 },
    {
      name: 'PUT is not a method of ours',
      chunks: [`PUT /signal/r HTTP/1.1\r\n${host}Content-Length: 0\r\n\r\n`],
      ending: 'answer',
      status: 405,
    },
    {
      name: 'DELETE is not a method of ours',
      chunks: [`DELETE /signal/r HTTP/1.1\r\n${host}\r\n`],
      ending: 'answer',
      status: 405,
    },
    { name: 'a path outside /signal', chunks: [`GET /nope HTTP/1.1\r\n${host}\r\n`], ending: 'answer', status: 404 },
    {
      name: 'POST without a token',
      chunks: [`POST /signal/r HTTP/1.1\r\n${host}${cl}\r\n${body}`],
      ending: 'answer',
      status: 401,
    },
    { name: 'POST as a peer that never subscribed', chunks: [post(cl, body)], ending: 'answer', status: 403 },
    {
      name: 'POST with a declared body over the limit',
      chunks: [post(`Content-Length: ${LIMIT + 1}\r\n`, '')],
      ending: 'answer',
      status: 413,
    },
    {
      name: 'POST with a chunked body over the limit',
      chunks: [post('Transfer-Encoding: chunked\r\n', `${(LIMIT + 1).toString(16)}\r\n${'x'.repeat(LIMIT + 1)}\r\n0\r\n\r\n`)],
      ending: 'answer',
      status: 413,
    },
    {
      name: 'SSE without a peer',
      chunks: [`GET /signal/r?token=${token} HTTP/1.1\r\n${host}\r\n`],
      ending: 'answer',
      status: 400,
    },

    // Request lines and methods.
    { name: 'garbage instead of a request', chunks: ['GARBAGE\r\n\r\n\u0000\u0001\u0002'], ending: 'answer', status: REFUSED },
    { name: 'binary garbage', chunks: [Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 131 + 7) & 0xff))], ending: 'eof' },
    { name: 'a TLS ClientHello', chunks: [Buffer.from('16030100a5010000a10303', 'hex')], ending: 'eof' },
    { name: 'the HTTP/2 preface', chunks: ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'], ending: 'answer', status: REFUSED },
    { name: 'an invented method', chunks: [`FROB /signal/r HTTP/1.1\r\n${host}\r\n`], ending: 'answer', status: REFUSED },
    { name: 'a lower-case method', chunks: [`get /signal/r HTTP/1.1\r\n${host}\r\n`], ending: 'answer', status: REFUSED },
    { name: 'HTTP/9.9', chunks: [`GET /signal/r HTTP/9.9\r\n${host}\r\n`], ending: 'answer', status: REFUSED },
    { name: 'no version', chunks: [`GET /signal/r\r\n${host}\r\n`], ending: 'answer', status: REFUSED },
    { name: 'a request line of spaces', chunks: ['       \r\n\r\n'], ending: 'answer', status: REFUSED },
    { name: 'CONNECT', chunks: [`CONNECT 127.0.0.1:1 HTTP/1.1\r\n${host}\r\n`], ending: 'eof' },
    {
      name: 'an absolute-form target',
      chunks: [`GET http://evil.example${fresh().path} HTTP/1.1\r\n${host}\r\n`],
      ending: 'answer',
      status: 200,
    },
    { name: 'an asterisk target', chunks: [`GET * HTTP/1.1\r\n${host}\r\n`], ending: 'answer', status: 404 },

    // Headers.
    {
      name: 'a 20 KB header',
      chunks: [`GET /signal/r HTTP/1.1\r\n${host}X-Big: ${'b'.repeat(20_000)}\r\n\r\n`],
      ending: 'answer',
      status: 431,
    },
    {
      name: '3000 small headers',
      chunks: [`GET /signal/r HTTP/1.1\r\n${host}${'X-A: b\r\n'.repeat(3000)}\r\n`],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'NUL in a header value',
      chunks: [`GET /signal/r HTTP/1.1\r\n${host}X-A: a\u0000b\r\n\r\n`],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'a bare CR in a header value',
      chunks: [`GET /signal/r HTTP/1.1\r\n${host}X-A: a\rb\r\n\r\n`],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'a bare LF, then an injected header',
      chunks: [`GET ${fresh().path} HTTP/1.1\r\n${host}X-A: a\nLast-Event-ID: forged\r\n\r\n`],
      ending: 'eof',
    },
    {
      name: 'CRLF injected into the request line',
      chunks: [`GET /signal/r\r\nX-Evil: 1 HTTP/1.1\r\n${host}\r\n`],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'a header without a colon',
      chunks: [`GET /signal/r HTTP/1.1\r\n${host}NoColon\r\n\r\n`],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'a space before the colon',
      chunks: [`GET /signal/r HTTP/1.1\r\n${host}X-A : b\r\n\r\n`],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'an obsolete folded header',
      chunks: [`GET ${fresh().path} HTTP/1.1\r\n${host}X-A: b\r\n  folded\r\n\r\n`],
      ending: 'eof',
    },
    {
      name: 'a 300-character bearer token',
      chunks: [`POST /signal/r HTTP/1.1\r\n${host}Authorization: Bearer ${'t'.repeat(300)}\r\n${cl}\r\n${body}`],
      ending: 'answer',
      status: 401,
    },
    {
      name: 'a Last-Event-ID of 4000 characters',
      chunks: [`GET ${fresh().path} HTTP/1.1\r\n${host}Last-Event-ID: ${'9'.repeat(4000)}\r\n\r\n`],
      ending: 'answer',
      status: 400,
    },

    // Content-Length and Transfer-Encoding.
    {
      name: 'two different Content-Lengths',
      chunks: [post('Content-Length: 5\r\nContent-Length: 6\r\n', 'abcdef')],
      ending: 'answer',
      status: REFUSED,
    },
    { name: 'a negative Content-Length', chunks: [post('Content-Length: -1\r\n', '')], ending: 'answer', status: REFUSED },
    {
      name: 'a Content-Length of 30 digits',
      chunks: [post(`Content-Length: ${'9'.repeat(30)}\r\n`, '')],
      ending: 'answer',
      status: REFUSED,
    },
    { name: 'a Content-Length in hex', chunks: [post('Content-Length: 0x10\r\n', body)], ending: 'answer', status: REFUSED },
    {
      name: 'Content-Length with Transfer-Encoding',
      chunks: [
        post(
          `Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n`,
          `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
        ),
      ],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'Transfer-Encoding: gzip, chunked',
      chunks: [post('Transfer-Encoding: gzip, chunked\r\n', '5\r\nhello\r\n0\r\n\r\n')],
      ending: 'eof',
    },
    {
      name: 'Transfer-Encoding: chunked, identity',
      chunks: [post('Transfer-Encoding: chunked, identity\r\n', body)],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'a chunk size that is not hex',
      chunks: [post('Transfer-Encoding: chunked\r\n', 'zz\r\nhello\r\n0\r\n\r\n')],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'a negative chunk size',
      chunks: [post('Transfer-Encoding: chunked\r\n', '-5\r\nhello\r\n0\r\n\r\n')],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'a chunk size of 2^64',
      chunks: [post('Transfer-Encoding: chunked\r\n', '10000000000000000\r\nhello\r\n0\r\n\r\n')],
      ending: 'answer',
      status: REFUSED,
    },
    { name: 'a huge chunk, never sent', chunks: [post('Transfer-Encoding: chunked\r\n', 'fffffff\r\nhello')], ending: 'eof' },
    {
      name: 'a chunk without its CRLF',
      chunks: [post('Transfer-Encoding: chunked\r\n', '5\r\nhelloXX0\r\n\r\n')],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'a chunk extension of 10 KB',
      chunks: [post('Transfer-Encoding: chunked\r\n', `5;${'e'.repeat(10_000)}\r\nhello\r\n0\r\n\r\n`)],
      ending: 'eof',
    },
    {
      name: 'a body shorter than declared, then EOF',
      chunks: [post(`Content-Length: ${body.length + 50}\r\n`, body)],
      ending: 'eof',
    },
    {
      name: 'a body shorter than declared, abandoned',
      chunks: [post(`Content-Length: ${body.length + 50}\r\n`, body)],
      pauseMs: 20,
      ending: 'abandon',
    },
    {
      name: 'a body longer than declared (the rest is a garbage request)',
      chunks: [post(`Content-Length: ${body.length}\r\n`, `${body}\x01\x02GARBAGE\r\n\r\n`)],
      ending: 'answer',
      status: REFUSED,
    },
    {
      name: 'a JSON body nested 100 000 deep',
      chunks: [post('Transfer-Encoding: chunked\r\n', `30d40\r\n${'['.repeat(100_000)}${']'.repeat(100_000)}\r\n0\r\n\r\n`)],
      ending: 'answer',
      status: 400,
    },

    // Slow and abandoned requests.
    {
      name: 'a request line, byte by byte, abandoned',
      chunks: [...'GET /signal/slow?peer=a&tok'],
      pauseMs: 2,
      ending: 'abandon',
    },
    {
      name: 'headers in pieces, then EOF',
      chunks: ['GET /signal/r HTTP/1.1\r\n', 'Host: x\r\n', 'X-A: '],
      pauseMs: 5,
      ending: 'eof',
    },
    {
      name: 'a POST body in pieces, abandoned',
      chunks: [post(`Content-Length: ${body.length}\r\n`, ''), body.slice(0, 5), body.slice(5, 10)],
      pauseMs: 5,
      ending: 'abandon',
    },

    // Pipelining.
    {
      name: 'pipelined garbage after a valid request',
      chunks: [`OPTIONS /signal/r HTTP/1.1\r\n${host}\r\n\u0000\u00ff\r\nGARBAGE\r\n\r\n`],
      ending: 'answer',
      status: 204,
    },
    {
      name: '50 pipelined requests',
      chunks: [`OPTIONS /signal/r HTTP/1.1\r\n${host}\r\n`.repeat(50)],
      ending: 'answer',
      status: 204,
    },
    {
      name: 'an SSE subscribe, then garbage on the stream',
      chunks: [sse()],
      after: 'GARBAGE\r\n\r\n',
      ending: 'answer',
      status: 200,
    },

    // URLs: absurd lengths and percent-encodings on /signal/<room>.
    { name: 'a 15 KB room', chunks: [room('r'.repeat(15_000))], ending: 'answer', status: 400 },
    { name: 'a 100 KB URL', chunks: [room('r'.repeat(100_000))], ending: 'answer', status: 431 },
    { name: 'a 65-character room', chunks: [room('r'.repeat(65))], ending: 'answer', status: 400 },
    ...[
      '%',
      '%G0',
      '%0',
      '%00',
      '%0A',
      '%0D%0A',
      '%C0%80',
      '%ED%A0%80',
      '%FF',
      'a%2Fb',
      '%252F',
      '..%2F..%2Fetc',
      '%E2%82',
      'a%20b',
      '%u0041',
    ].map((encoded) => ({ name: `the room ${encoded}`, chunks: [room(encoded)], ending: 'answer' as const, status: 400 })),
    {
      name: 'a room with its first letter percent-encoded (it is the same room)',
      chunks: [`GET /signal/%66${fresh().path.slice('/signal/f'.length)} HTTP/1.1\r\n${host}\r\n`],
      ending: 'answer',
      status: 200,
    },
    { name: '4000 percent-encodings', chunks: [room('%41'.repeat(4000))], ending: 'answer', status: 400 },
    {
      name: 'a peer of 10 KB',
      chunks: [`GET /signal/r?peer=${'p'.repeat(10_000)}&token=${token} HTTP/1.1\r\n${host}\r\n`],
      ending: 'answer',
      status: 400,
    },
    {
      name: 'a query of 2000 parameters',
      chunks: [`GET /signal/${fresh().room}?${'peer=a&'.repeat(2000)}token=${token} HTTP/1.1\r\n${host}\r\n`],
      ending: 'answer',
      status: 200,
    },

    // Upgrades that ws must refuse.
    {
      name: 'an upgrade without Sec-WebSocket-Key',
      chunks: [upgrade({ Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Version': '13' })],
      ending: 'answer',
      status: 400,
    },
    {
      name: 'an upgrade with a short Sec-WebSocket-Key',
      chunks: [
        upgrade({ Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'c2hvcnQ=', 'Sec-WebSocket-Version': '13' }),
      ],
      ending: 'answer',
      status: 400,
    },
    {
      name: 'an upgrade with a key of 2 KB',
      chunks: [
        upgrade({
          Upgrade: 'websocket',
          Connection: 'Upgrade',
          'Sec-WebSocket-Key': 'A'.repeat(2048),
          'Sec-WebSocket-Version': '13',
        }),
      ],
      ending: 'answer',
      status: 400,
    },
    {
      name: 'an upgrade without Sec-WebSocket-Version',
      chunks: [upgrade({ Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': key })],
      ending: 'answer',
      status: 400,
    },
    ...['12', '14', 'abc', '13, 8', '1e3'].map((version) => ({
      name: `an upgrade with Sec-WebSocket-Version: ${version}`,
      chunks: [
        upgrade({ Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': version }),
      ],
      ending: 'answer' as const,
      status: 400,
    })),
    {
      name: 'an upgrade to something else',
      chunks: [upgrade({ Upgrade: 'h2c', Connection: 'Upgrade', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13' })],
      ending: 'answer',
      status: 400,
    },
    {
      name: 'an upgrade by POST',
      chunks: [
        upgrade({ Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': '13' }, 'POST'),
      ],
      ending: 'answer',
      status: 405,
    },
    {
      name: 'an upgrade with a broken subprotocol list',
      chunks: [
        upgrade({
          Upgrade: 'websocket',
          Connection: 'Upgrade',
          'Sec-WebSocket-Key': key,
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Protocol': 'a,,b',
        }),
      ],
      ending: 'answer',
      status: 400,
    },
    {
      name: 'an upgrade offering compression (not negotiated)',
      chunks: [
        upgrade({
          Upgrade: 'websocket',
          Connection: 'Upgrade',
          'Sec-WebSocket-Key': key,
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Extensions': 'permessage-deflate; x=;;',
        }),
      ],
      ending: 'answer',
      status: 101,
    },
    { name: 'an upgrade outside /signal', chunks: [upgradeRequest('/elsewhere', port).text], ending: 'answer', status: 404 },
    { name: 'an upgrade, then EOF at once', chunks: [upgradeRequest(fresh().path, port).text], ending: 'eof' },
    {
      name: 'an upgrade, abandoned mid-headers',
      chunks: [upgradeRequest(fresh().path, port).text.slice(0, 60)],
      ending: 'abandon',
    },
  ]
}

/** Writes a case's chunks and ends it the way it says; resolves with the status line (if any) once the socket is gone. */
async function runHttp(
  chunks: Array<Buffer | string>,
  ending: HttpCase['ending'],
  pauseMs = 0,
  after?: string,
): Promise<string | undefined> {
  const connection = await RawConnection.open(server.port)
  for (const [i, chunk] of chunks.entries()) {
    if (i && pauseMs) await new Promise((resolve) => setTimeout(resolve, pauseMs))
    connection.write(chunk)
  }
  if (ending === 'abandon') {
    connection.socket.destroy()
    return undefined
  }
  if (ending === 'answer') {
    await within(
      connection.waitFor(() => connection.statusLine() !== undefined),
      BOUND_MS,
      'an answer',
    )
    if (after) connection.write(after)
  }
  connection.socket.end()
  await within(connection.closed, BOUND_MS, 'the server to close the connection after the client half-closed')
  return connection.statusLine()
}

/** The peer the HTTP mutations publish as (subscribed over SSE, so its POSTs reach the relay), and who listens, in a room of their own. */
const postRoom = `fz-${SEED.toString(36)}-posts`
const poster = target('poster', postRoom)
const witness = target('witness', postRoom)

/** HTTP mutation case `index`: a valid request (SSE, POST of realistic or hostile JSON, chunked POST, upgrade) mangled. */
function httpMutationCase(index: number): { bytes: Buffer; ending: HttpCase['ending'] } {
  const random = caseRandom(2, index)
  const { path } = target(`h${index}`, anchorRoom(index))
  const body = Buffer.from(frameText(random, poster.peer)).toString('latin1')
  const publish = `POST /signal/${poster.room} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${poster.token}\r\nContent-Type: application/json\r\n`
  const bases = [
    `GET ${path} HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 1-1\r\n\r\n`,
    `${publish}Content-Length: ${body.length}\r\n\r\n${body}`,
    `${publish}Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    upgradeRequest(path, server.port, undefined, randomBytes(random, 16).toString('base64')).text,
    `OPTIONS /signal/${poster.room} HTTP/1.1\r\nHost: x\r\n\r\n`,
  ]
  let bytes: Buffer = Buffer.from(pick(random, bases), 'latin1')
  for (let i = 0, n = 1 + int(random, 3); i < n; i++) {
    const roll = random()
    if (roll < 0.4) {
      const at = int(random, bytes.length + 1)
      bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(pick(random, HTTP_NASTY), 'latin1'), bytes.subarray(at)])
    } else {
      const name = pick(random, Object.keys(BYTE_MUTATIONS))
      bytes = (BYTE_MUTATIONS[name] as (typeof BYTE_MUTATIONS)[string])(random, bytes, Buffer.from(pick(random, bases), 'latin1'))
    }
  }
  // Unmangled now and then, so the relay gets valid messages among the broken ones.
  if (random() < 0.1) bytes = Buffer.from(bases[1] as string, 'latin1')
  return { bytes, ending: random() < 0.85 ? 'eof' : 'abandon' }
}

/** A line of an SSE stream the server may write: its own fields, JSON it serialized itself, heartbeats. */
const SSE_LINE = /^(|retry: \d+|event: (welcome|reset|replaced)|id: [\w-]+|data: [[{].*[\]}]|: ping)$/

// ---------------------------------------------------------------------------------------------

describe('the server process under malformed frames and requests', () => {
  test(`named frame classes get their close code (${FRAME_CASES.length} cases)`, async () => {
    await inParallel(
      FRAME_CASES.length,
      (index) => runFrameCase(FRAME_CASES[index] as FrameCase),
      (index) => {
        const frameCase = FRAME_CASES[index] as FrameCase
        return `${frameCase.name}: ${hex(Buffer.concat(frameCase.chunks))}`
      },
    )
    await expectHealthy('after the named frame classes')
  })

  test(`seeded mutations of valid frame streams (${MUTATION_CASES} cases)`, async () => {
    const applied: Record<string, number> = {}
    const outcomes: Record<string, number> = {}
    const count = (tally: Record<string, number>, key: string) => {
      tally[key] = (tally[key] ?? 0) + 1
    }
    await inParallel(
      MUTATION_CASES,
      async (index) => {
        const { path, peer } = target(`m${index}`, anchorRoom(index))
        const mutation = mutationCase(index, peer)
        for (const name of mutation.applied) count(applied, name)
        const socket = await RawWebSocket.open(server.port, path)
        for (const [i, chunk] of mutation.chunks.entries()) {
          if (i) await new Promise((resolve) => setImmediate(resolve))
          socket.write(chunk)
        }
        if (mutation.ending === 'abandon') {
          socket.connection.socket.destroy()
          count(outcomes, 'abandoned by the client')
          return
        }
        if (mutation.ending === 'wait') await within(socket.connection.closed, QUIET_MS, '').catch(() => {})
        const endedFirst = socket.connection.endedByServer
        socket.connection.socket.end()
        await within(socket.connection.closed, BOUND_MS, `the server to end the socket (${mutation.ending})`)
        const code = socket.close()?.code
        count(
          outcomes,
          code !== undefined
            ? `close ${code}`
            : endedFirst
              ? 'ended by the server, no close code'
              : 'ended after the client half-closed',
        )
      },
      (index) => {
        const mutation = mutationCase(index, target(`m${index}`, anchorRoom(index)).peer)
        return `FUZZ_SEED=${SEED} mutation ${index} (${mutation.applied.join(', ')}; ${mutation.ending}; writes of ${mutation.chunks.map((c) => c.length).join('+')} bytes): ${hex(mutation.stream)}`
      },
    )
    console.log(`server-fuzz mutations: ${JSON.stringify(applied)}\nserver-fuzz outcomes: ${JSON.stringify(outcomes)}`)
    await expectHealthy('after the seeded frame mutations')
  })

  test('named HTTP cases: malformed requests, headers, bodies, URLs and upgrades', async () => {
    const cases = httpCases()
    await inParallel(
      cases.length,
      async (index) => {
        const httpCase = cases[index] as HttpCase
        const status = await runHttp(httpCase.chunks, httpCase.ending, httpCase.pauseMs, httpCase.after)
        if (httpCase.status === undefined) return
        const code = status?.split(' ')[1] ?? '(no answer)'
        if (httpCase.status instanceof RegExp) expect(code, httpCase.name).toMatch(httpCase.status)
        else expect(code, httpCase.name).toBe(String(httpCase.status))
      },
      (index) => {
        const httpCase = cases[index] as HttpCase
        return `${httpCase.name}: ${JSON.stringify(httpCase.chunks.join('').slice(0, 600))}`
      },
    )
    console.log(`server-fuzz HTTP: ${cases.length} named cases`)
    await expectHealthy('after the named HTTP cases')
  })

  test(`seeded mutations of valid HTTP requests (${HTTP_MUTATION_CASES} cases)`, async () => {
    const statuses: Record<string, number> = {}
    const base = server.url.replace('/signal', '')
    const publisher = await within(readEvents(`${base}${poster.path}`), BOUND_MS, "the poster's subscription")
    const listener = await within(readEvents(`${base}${witness.path}`), BOUND_MS, "the witness's subscription")
    await until(() => listener.events.some((event) => event.event === 'welcome'), "the witness's welcome", BOUND_MS)
    await inParallel(
      HTTP_MUTATION_CASES,
      async (index) => {
        const { bytes, ending } = httpMutationCase(index)
        const status = (await runHttp([bytes], ending))?.split(' ')[1] ?? '(none)'
        statuses[status] = (statuses[status] ?? 0) + 1
      },
      (index) =>
        `FUZZ_SEED=${SEED} HTTP mutation ${index}: ${JSON.stringify(httpMutationCase(index).bytes.toString('latin1').slice(0, 600))}`,
    )
    console.log(`server-fuzz HTTP mutation answers: ${JSON.stringify(statuses)}`)
    // The stream still flows after all that, and what reached the witness is what the server wrote
    // itself: whole lines of its own JSON, messages of the room's peers only.
    // (From a third peer: the poster may well have spent its rate limit.)
    const closer = target('closer', postRoom)
    const last = await wsClient(closer.path)
    last.ws.send(JSON.stringify({ kind: 'hello', from: closer.peer, session: 424242 }))
    await until(() => listener.raw.text.includes('"session":424242'), 'the last hello at the witness', BOUND_MS)
    last.ws.close()
    const relayed = listener.events.filter((event) => event.id !== undefined)
    publisher.close()
    listener.close()
    expect(listener.raw.text.split('\n').filter((line) => !SSE_LINE.test(line))).toEqual([])
    for (const event of relayed) {
      const message = JSON.parse(event.data as string)
      expect(() => parseSignal(message), event.data).not.toThrow()
      expect([poster.peer, closer.peer]).toContain(message.from)
    }
    await expectHealthy('after the seeded HTTP mutations')
  })
})
