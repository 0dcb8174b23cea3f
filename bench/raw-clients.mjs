// The relay bench's clients on raw sockets. They share the machine's two cores with the server
// they load, so they must cost far less per message than any server does, or they, not the
// server, set the msg/s: with `ws` and node:http clients the client process ran at 100 % of a
// core before any server did. Every contender gets the same clients: a WebSocket that masks
// with a zero key (so masking is free), serializes a message's frame once and then only writes
// each send time into a copy of it, and reads frames in place; and for politely's SSE route
// a keep-alive socket that writes each POST as one string and reads the event stream as text.
// Both find the SDP in what they receive by its `"sdp":"` key, without parsing the frame.
import { randomBytes } from 'node:crypto'
import net from 'node:net'

const HOST = '127.0.0.1'
const SDP_KEY = '"sdp":"'

/** The SDP in a frame's text as it is there, escapes and all (the first `"sdp":"…"`; bench SDPs hold no quote), or undefined. */
function sdpIn(text) {
  const at = text.indexOf(SDP_KEY)
  if (at < 0) return undefined
  const start = at + SDP_KEY.length
  return text.slice(start, text.indexOf('"', start))
}

/** A client's text frame: FIN, text, masked with a zero key (RFC 6455 requires a mask; XOR with zeros changes nothing). */
function maskedText(text) {
  const length = Buffer.byteLength(text)
  const size = length < 126 ? 2 : length < 0x10000 ? 4 : 10
  const frame = Buffer.allocUnsafe(size + 4 + length)
  frame.fill(0, size, size + 4) // the mask key: zeros
  frame[0] = 0x81
  if (size === 2) frame[1] = 0x80 | length
  else if (size === 4) {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 0x80 | 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  frame.write(text, size + 4)
  return frame
}
const PONG = Buffer.from([0x8a, 0x80, 0, 0, 0, 0])

/** An SDP's leading characters that change from message to message: its send time (relay.mjs's `stamp()`). */
const TIME_CHARS = 16

/**
 * Frames of `message` (holding `sdp`) for SDPs that differ from it only in their send time: its
 * frame serialized once, around the time, whose characters (digits, a point, spaces) JSON never
 * escapes. A client that ran JSON.stringify over a 1000-character SDP for every message spent
 * more CPU per message than the server it loaded.
 */
function sdpFrame(message, sdp) {
  const body = sdp.slice(TIME_CHARS)
  const marker = '~'.repeat(TIME_CHARS)
  const text = JSON.stringify(message).replace(JSON.stringify(sdp).slice(1, -1), marker + JSON.stringify(body).slice(1, -1))
  const frame = maskedText(text)
  const at = frame.indexOf(marker)
  if (at < 0 || frame.indexOf(marker, at + 1) >= 0) throw new Error('bench: the SDP is not once in its message')
  return {
    body,
    with: (stamped) => {
      const copy = Buffer.allocUnsafe(frame.length)
      frame.copy(copy)
      copy.write(stamped.slice(0, TIME_CHARS), at, 'latin1')
      return copy
    },
  }
}

/**
 * What a protocol's frame says to a raw client: 'ready' (it is in), an SDP for it, `false` (an
 * error: counted), or undefined (nothing for the bench). Cheap string checks, per protocol.
 */
const READERS = {
  politely: (text) =>
    text.startsWith('{"type":"message"')
      ? sdpIn(text)
      : text.startsWith('{"type":"welcome"')
        ? 'ready'
        : text.startsWith('{"type":"error"')
          ? false
          : undefined,
  peerjs: (text) => (text.startsWith('{"type":"OFFER"') ? sdpIn(text) : text.startsWith('{"type":"OPEN"') ? 'ready' : false),
  // The server echoes every publish to its sender too: only what is addressed to this peer counts.
  'y-webrtc': (text, id) =>
    text.startsWith('{"type":"pong"') ? 'ready' : text.includes(`"to":"${id}"`) ? sdpIn(text) : undefined,
  floor: (text) => (text.startsWith('{"type":"welcome"') ? 'ready' : sdpIn(text)),
}

/**
 * A peer on a raw WebSocket: resolves once the server let it in; `deliver` gets each SDP for it,
 * `fail` counts errors. `protocol` is one of relay.mjs's PROTOCOLS, named `name`.
 */
export function rawWsPeer(name, protocol, port, room, id, deliver, fail) {
  const read = READERS[name]
  return new Promise((resolve, reject) => {
    const url = new URL(protocol.url(port, room, id))
    const socket = net.connect(port, HOST)
    socket.setNoDelay(true)
    const send = (text) => {
      socket.write(maskedText(text))
    }
    const sdpFrames = new Map()
    const peer = {
      id,
      send: (to, sdp) => {
        let frames = sdpFrames.get(to)
        if (frames?.body !== sdp.slice(TIME_CHARS))
          sdpFrames.set(to, (frames = sdpFrame(protocol.message(id, room, to, sdp), sdp)))
        socket.write(frames.with(sdp))
      },
      close: () => socket.destroy(),
    }
    let upgraded = false
    let pending = Buffer.alloc(0)
    socket.on('error', (error) => reject(error) || fail())
    socket.on('close', () => reject(new Error(`${id}: closed`)))
    socket.write(
      `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    )
    const frame = (opcode, data, start, end) => {
      if (opcode === 0x9) socket.write(PONG) // the payload is not echoed: the bench's servers ping with none
      if (opcode !== 0x1) return
      const what = read(data.toString('utf8', start, end), id)
      if (what === 'ready') resolve(peer)
      else if (typeof what === 'string') deliver(what)
      else if (what === false) fail()
    }
    socket.on('data', (chunk) => {
      let data = pending.length ? Buffer.concat([pending, chunk]) : chunk
      let at = 0
      if (!upgraded) {
        const end = data.indexOf('\r\n\r\n')
        if (end < 0) {
          pending = data
          return
        }
        if (!data.toString('latin1', 0, 13).startsWith('HTTP/1.1 101'))
          return reject(new Error(`${id}: ${data.toString('latin1', 0, 40)}`))
        upgraded = true
        at = end + 4
        protocol.join?.({ send }, room)
      }
      // Server frames: never masked, never fragmented here.
      for (;;) {
        if (data.length - at < 2) break
        let length = data[at + 1] & 0x7f
        let header = 2
        if (length === 126) {
          if (data.length - at < 4) break
          length = data.readUInt16BE(at + 2)
          header = 4
        } else if (length === 127) {
          if (data.length - at < 10) break
          length = data.readUInt32BE(at + 2) * 2 ** 32 + data.readUInt32BE(at + 6)
          header = 10
        }
        if (data.length - at < header + length) break
        frame(data[at] & 0x0f, data, at + header, at + header + length)
        at += header + length
      }
      pending = at < data.length ? data.subarray(at) : Buffer.alloc(0)
      if (pending.length && pending.length < 4096) pending = Buffer.from(pending)
      data = undefined
    })
  })
}

/**
 * politely over Server-Sent Events down and POST up, posting as politely's own SseSignaler does
 * (src/signalers/sse.ts): one request at a time per peer on a keep-alive socket, each carrying
 * every message queued meanwhile (an array of up to 64), the first of a burst a microtask late so
 * that messages sent in one tick share it. With `window` messages in flight per pair that is up
 * to `window` messages per POST.
 */
export function rawSsePeer(port, room, id, deliver, fail, { token, message }) {
  const queue = []
  let posting = false
  const poster = net.connect(port, HOST)
  poster.setNoDelay(true)
  poster.on('error', () => fail())
  const head = `POST /signal/${room} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nContent-Type: application/json\r\nAuthorization: Bearer ${token}\r\n`
  const postQueued = () => {
    if (!queue.length) {
      posting = false
      return
    }
    const body = JSON.stringify(queue.splice(0, 64))
    poster.write(`${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  }
  // Answers come in order, one per POST: the next goes when this one's head and body are in
  // (its body sized by Content-Length, or chunked up to the last, empty chunk).
  let answer = ''
  poster.setEncoding('latin1')
  poster.on('data', (chunk) => {
    answer += chunk
    for (;;) {
      const end = answer.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = answer.slice(0, end)
      const length = /\r\ncontent-length: (\d+)/i.exec(head)?.[1]
      const last = length === undefined ? answer.indexOf('\r\n0\r\n\r\n', end + 2) : -1
      const next = length !== undefined ? end + 4 + Number(length) : last < 0 ? Number.POSITIVE_INFINITY : last + 7
      if (answer.length < next) return
      if (!head.startsWith('HTTP/1.1 202')) fail()
      answer = answer.slice(next)
      postQueued()
    }
  })
  return new Promise((resolve, reject) => {
    const stream = net.connect(port, HOST)
    const peer = {
      id,
      send(to, sdp) {
        queue.push(message(to, sdp))
        if (posting) return
        posting = true
        queueMicrotask(postQueued)
      },
      close() {
        stream.destroy()
        poster.destroy()
      },
    }
    stream.setEncoding('utf8')
    stream.on('error', reject)
    stream.write(
      `GET /signal/${room}?peer=${id}&token=${token} HTTP/1.1\r\nHost: ${HOST}:${port}\r\nAccept: text/event-stream\r\n\r\n`,
    )
    let buffer = ''
    let started = false
    stream.on('data', (chunk) => {
      buffer += chunk
      if (!started) {
        const end = buffer.indexOf('\r\n\r\n')
        if (end < 0) return
        if (!buffer.startsWith('HTTP/1.1 200')) return reject(new Error(`SSE ${id}: ${buffer.split('\r\n')[0]}`))
        started = true
        buffer = buffer.slice(end + 4)
      }
      // The body is chunked (Transfer-Encoding): chunk sizes sit between events, on lines of their own, and are skipped.
      for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (block.includes('event: welcome')) resolve(peer)
        else if (block.includes('\nid: ') || block.startsWith('id: ')) {
          const sdp = sdpIn(block)
          if (sdp === undefined) fail()
          else deliver(sdp)
        } else if (!/^(?:[\da-f]*\r\n)*(?::|retry)/.test(block)) fail()
      }
    })
  })
}
