import { isUtf8 } from 'node:buffer'
import type { Duplex } from 'node:stream'

/**
 * The server side of RFC 6455 on a socket whose handshake is done: frames in and out, and the
 * closing handshake. Written for this relay rather than taken from `ws`: a held connection is
 * this one object and its socket (`ws` added a WebSocket, a Receiver stream and a Sender, some
 * 1.5 KB per connection), and a frame costs no stream or event machinery. No extension is
 * agreed, so frames are never compressed.
 */

const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const

/** Close codes (RFC 6455 §7.4.1) this side sends when the client breaks the protocol. */
export const PROTOCOL_CLOSE = { protocolError: 1002, invalidData: 1007, policy: 1008, tooBig: 1009 } as const

/**
 * Fragments one message may come in: each is kept until the message is whole, and an empty one
 * costs nothing against the payload limit. (The same bound as `ws`'s.)
 */
const MAX_FRAGMENTS = 16 * 1024
/**
 * Pings and pongs a client may send between two heartbeats: a browser sends no ping and one pong
 * per heartbeat; past this it is a flood (each costs a read and a pong an answer), closed with 1008.
 */
export const MAX_CONTROL_FRAMES = 100
/** How long a socket may stay after our close frame before it is cut, if the client does not end it. */
const CLOSE_TIMEOUT_MS = 2000
/** The least a receive buffer starts with (it doubles from there, up to what the frame or message needs). */
const MIN_BUFFER = 1024

/**
 * `buffer` (holding `used` bytes), or a larger copy, with room for `wanted` bytes. It doubles as
 * it grows, so bytes trickled one by one are copied a few times each, not once per byte; and it
 * never takes more than `wanted` or the frame needs (`cap`), so a header that only claims a large
 * payload costs nothing until the payload comes. Not from Buffer's shared pool: a small buffer
 * held by an idle connection would keep a whole pool slab alive.
 */
function grown(buffer: Buffer | undefined, used: number, wanted: number, cap: number): Buffer {
  const capacity = buffer?.length ?? 0
  if (wanted <= capacity) return buffer as Buffer
  const next = Buffer.allocUnsafeSlow(Math.max(wanted, Math.min(cap, Math.max(MIN_BUFFER, capacity * 2))))
  buffer?.copy(next, 0, 0, used)
  return next
}

/**
 * A text frame smaller than this goes to the socket as one buffer, header and text: one write
 * (each costs the stream an entry and a callback); a larger one as its header and the string, so
 * the text is not copied in the JavaScript heap first.
 */
export const ONE_BUFFER_BELOW = 4096

const PING = Buffer.from([0x80 | OPCODE.ping, 0])

/**
 * `bytes`, or a copy of them when they are a view that would keep much more alive: a relayed
 * message's bytes are a view of the frame they came in (with whatever else it held, up to the
 * payload limit), and a socket's queue counts only the view. A client that stops reading could
 * otherwise pin 100 times what `maxBufferedBytes` allows.
 */
const owned = (bytes: Uint8Array): Uint8Array => (bytes.byteLength * 2 < bytes.buffer.byteLength ? Buffer.from(bytes) : bytes)

/** Close codes a client may send (RFC 6455 §7.4, IANA registry): 1004-1006 and 1015 are never sent on the wire. */
const sendableCode = (code: number) =>
  (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999)

/**
 * A frame's header (FIN set, server frames are never masked) for a payload of `length` bytes, in
 * a buffer with room for the payload after it when `withPayload`.
 */
function header(opcode: number, length: number, withPayload = false): Buffer {
  const size = length < 126 ? 2 : length < 0x10000 ? 4 : 10
  const head = Buffer.allocUnsafe(withPayload ? size + length : size)
  head[0] = 0x80 | opcode
  if (size === 2) head[1] = length
  else if (size === 4) {
    head[1] = 126
    head.writeUInt16BE(length, 2)
  } else {
    head[1] = 127
    head.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    head.writeUInt32BE(length >>> 0, 6)
  }
  return head
}

/**
 * A text frame for a payload of `length` bytes (under {@link ONE_BUFFER_BELOW}), its header written:
 * the payload goes from `frame.length - length` on, then {@link WebSocketConnection.sendFrame}.
 */
export function textFrame(length: number): Buffer {
  return header(OPCODE.text, length, true)
}

/** A close frame: the code, then the reason (at most 123 bytes: a control frame's payload is at most 125). */
function closeFrame(code: number, reason: string | Buffer = ''): Buffer {
  const text = typeof reason === 'string' ? Buffer.from(reason).subarray(0, 123) : reason
  const frame = Buffer.allocUnsafe(4 + text.length)
  frame[0] = 0x80 | OPCODE.close
  frame[1] = 2 + text.length
  frame.writeUInt16BE(code, 2)
  text.copy(frame, 4)
  return frame
}

/**
 * Sends a close frame on a socket and ends it; it is cut if the client has not ended its side
 * {@link CLOSE_TIMEOUT_MS} later. `code` undefined sends an empty close frame.
 */
export function closeSocket(socket: Duplex, code?: number, reason?: string | Buffer): void {
  if (socket.writable) {
    socket.end(code === undefined ? Buffer.from([0x80 | OPCODE.close, 0]) : closeFrame(code, reason))
  }
  setTimeout(cut, CLOSE_TIMEOUT_MS, socket).unref()
}
function cut(socket: Duplex): void {
  socket.destroy()
}

/** Whether this machine stores a 32-bit word's lowest byte first (then a word's mask is its bytes read that way). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/**
 * Unmasks a client's payload, `data[start, end)`, in place (RFC 6455 §5.3); its mask is the 4
 * bytes before it. The bytes up to a 4-byte boundary of the memory are unmasked one by one, the
 * rest a 32-bit word at a time: a byte loop took 1.1 µs for a 1.1 KB message (0.8 µs now), some
 * 3 % of all the server spends relaying it.
 */
function unmask(data: Buffer, start: number, end: number): void {
  const maskAt = start - 4
  let i = start
  for (; i < end && ((data.byteOffset + i) & 3) !== 0; i++)
    data[i] = (data[i] as number) ^ (data[maskAt + ((i - start) & 3)] as number)
  const words = (end - i) >>> 2
  if (words > 0) {
    // The mask as it lines up from byte i on.
    const k = i - start
    const b0 = data[maskAt + (k & 3)] as number
    const b1 = data[maskAt + ((k + 1) & 3)] as number
    const b2 = data[maskAt + ((k + 2) & 3)] as number
    const b3 = data[maskAt + ((k + 3) & 3)] as number
    const mask = LITTLE_ENDIAN ? b0 | (b1 << 8) | (b2 << 16) | (b3 << 24) : (b0 << 24) | (b1 << 16) | (b2 << 8) | b3
    const view = new Int32Array(data.buffer, data.byteOffset + i, words)
    for (let w = 0; w < words; w++) view[w] = (view[w] as number) ^ mask
    i += words * 4
  }
  for (; i < end; i++) data[i] = (data[i] as number) ^ (data[maskAt + ((i - start) & 3)] as number)
}

/** Why a frame's first two bytes break the protocol (RFC 6455 §5.2, §5.5), or undefined if they do not. */
function headerProblem(first: number, second: number, fragmented: boolean): string | undefined {
  const opcode = first & 0x0f
  if (first & 0x70) return 'Reserved bits must be clear'
  if (opcode >= OPCODE.close) {
    if (opcode > OPCODE.pong) return `Unknown opcode ${opcode}`
    if (!(first & 0x80)) return 'A control frame must not be fragmented'
    if ((second & 0x7f) > 125) return 'A control frame has at most 125 bytes'
  } else if (opcode > OPCODE.binary) return `Unknown opcode ${opcode}`
  else if ((opcode === OPCODE.continuation) !== fragmented) {
    return opcode ? 'A new message inside a fragmented one' : 'A continuation of nothing'
  }
  if (!(second & 0x80)) return 'A client must mask its frames'
  return undefined
}

/** The connection a socket carries. */
const CONNECTION = Symbol('politely.websocket')
type Carrier = Duplex & { [CONNECTION]?: WebSocketConnection }

// Listeners shared by every socket (`this` is the socket): no closures per connection.
function onData(this: Carrier, chunk: Buffer): void {
  this[CONNECTION]?.read(chunk)
}
function onEnd(this: Carrier): void {
  this[CONNECTION]?.readEnded()
}
function onClose(this: Carrier): void {
  this[CONNECTION]?.closed()
}

/**
 * One WebSocket connection, server side. Subclasses get each message (`receive`: its text, or
 * undefined for a binary message) and the end (`closed`, once the socket is gone). Protocol
 * violations close the connection with their code: 1002 (a malformed or unmasked frame, a bad
 * close code), 1007 (invalid UTF-8), 1008 (too many fragments, pings or pongs), 1009 (a message over `maxPayload`,
 * refused from its header, before any of it is kept).
 */
export abstract class WebSocketConnection {
  /**
   * Received bytes not parsed yet (an incomplete frame), copied into a buffer of our own that
   * grows as they come: memory follows the bytes received, whatever the chunks were.
   */
  #pending?: Buffer
  #buffered = 0
  /** Bytes the incomplete frame at the start of `#pending` needs before it can be read on. */
  #need = 2
  /** The payload of a fragmented message so far (copied: a view would keep each chunk alive), its size, fragments and opcode. */
  #fragments?: Buffer
  #fragmentBytes = 0
  #fragmentCount = 0
  #fragmentOpcode = 0
  /** A close frame went out, or the client ended: nothing more is read, nothing but the close is written. */
  #closing = false
  /** Pings and pongs since the last heartbeat reset this (see {@link MAX_CONTROL_FRAMES}). */
  controlFrames = 0

  constructor(
    readonly socket: Duplex,
    /** Bytes a message may have. */
    readonly maxPayload: number,
  ) {}

  /**
   * A message came: a text message's bytes (valid UTF-8: a view of what was read, which stays as
   * it is), or undefined for a binary one.
   */
  abstract receive(text: Buffer | undefined): void
  /** The socket is gone. */
  abstract closed(): void

  /** Starts reading, from `head` (bytes that came with the handshake) on. Call after the handshake's answer. */
  start(head: Buffer): void {
    const socket = this.socket as Carrier & Partial<import('node:net').Socket>
    socket[CONNECTION] = this
    socket.setTimeout?.(0)
    socket.setNoDelay?.(true)
    socket.on('data', onData)
    socket.on('end', onEnd)
    socket.on('close', onClose)
    if (head.length) this.read(head)
  }

  /** Open: frames may be sent. */
  get open(): boolean {
    return !this.#closing && !this.socket.destroyed
  }

  /** Bytes written and not yet taken by the kernel. */
  get bufferedAmount(): number {
    return this.socket.writableLength
  }

  /**
   * Sends a text frame of `parts` joined: strings, or UTF-8 bytes. They are written one after the
   * other into the frame, never joined into one string first: that string would be one more copy
   * of each message.
   */
  sendText(...parts: (string | Uint8Array)[]): void {
    if (!this.open) return
    let length = 0
    for (const part of parts) length += Buffer.byteLength(part)
    if (length >= ONE_BUFFER_BELOW) {
      this.socket.write(header(OPCODE.text, length))
      for (const part of parts) this.socket.write(typeof part === 'string' ? part : owned(part))
      return
    }
    const frame = header(OPCODE.text, length, true)
    let at = frame.length - length
    for (const part of parts) {
      if (typeof part === 'string') at += frame.write(part, at)
      else {
        frame.set(part, at)
        at += part.length
      }
    }
    this.socket.write(frame)
  }

  /** Sends a frame made by {@link textFrame}, its payload written. */
  sendFrame(frame: Buffer): void {
    if (this.open) this.socket.write(frame)
  }

  ping(): void {
    if (this.open) this.socket.write(PING)
  }

  /** Starts the closing handshake: our close frame, then the socket ends (see {@link closeSocket}). */
  closeWith(code: number, reason: string | Buffer = ''): void {
    if (this.#closing) return
    this.#stopReading()
    closeSocket(this.socket, code, reason)
  }

  /** Cuts the socket, no close frame. */
  terminate(): void {
    this.#stopReading()
    this.socket.destroy()
  }

  /** The client ended its side: ours ends too (what it sent before is read). */
  readEnded(): void {
    this.#stopReading()
    this.socket.end()
  }

  #stopReading(): void {
    this.#closing = true
    this.#pending = undefined
    this.#fragments = undefined
  }

  /** Bytes from the socket. */
  read(chunk: Buffer): void {
    if (this.#closing) return
    if (!this.#pending) {
      if (chunk.length >= this.#need) this.#parse(chunk)
      else this.#keep(chunk)
      return
    }
    this.#pending = grown(this.#pending, this.#buffered, this.#buffered + chunk.length, this.#need)
    chunk.copy(this.#pending, this.#buffered)
    this.#buffered += chunk.length
    if (this.#buffered < this.#need) return
    const data = this.#pending.subarray(0, this.#buffered)
    this.#pending = undefined
    this.#parse(data)
  }

  /** Keeps the start of an incomplete frame, a copy. */
  #keep(rest: Buffer): void {
    this.#pending = grown(undefined, 0, rest.length, this.#need)
    rest.copy(this.#pending)
    this.#buffered = rest.length
  }

  /** Reads every whole frame of `data`; keeps an incomplete one at its end for the next chunk. */
  #parse(data: Buffer): void {
    let at = 0
    this.#need = 2
    while (!this.#closing) {
      const left = data.length - at
      if (left < 2) break
      const first = data[at] as number
      const second = data[at + 1] as number
      const fin = (first & 0x80) !== 0
      const opcode = first & 0x0f
      const control = opcode >= OPCODE.close
      const problem = headerProblem(first, second, this.#fragmentCount > 0)
      if (problem) {
        this.#fail(PROTOCOL_CLOSE.protocolError, problem)
        return
      }
      let length = second & 0x7f
      const headerBytes = length === 126 ? 8 : length === 127 ? 14 : 6
      if (left < headerBytes) {
        this.#need = headerBytes
        break
      }
      if (length === 126) length = data.readUInt16BE(at + 2)
      else if (length === 127) {
        const high = data.readUInt32BE(at + 2)
        // RFC 6455 §5.2: the most significant bit must be 0.
        if (high >= 0x80000000) {
          this.#fail(PROTOCOL_CLOSE.protocolError, 'A 64-bit length with its top bit set')
          return
        }
        if (high > 0x1fffff) {
          this.#fail(PROTOCOL_CLOSE.tooBig, 'A payload over 2^53 - 1 bytes')
          return
        }
        length = high * 2 ** 32 + data.readUInt32BE(at + 6)
      }
      if (!control && this.#fragmentBytes + length > this.maxPayload) {
        this.#fail(PROTOCOL_CLOSE.tooBig, `A message over ${this.maxPayload} bytes`)
        return
      }
      if (left < headerBytes + length) {
        this.#need = headerBytes + length
        break
      }
      const start = at + headerBytes
      const end = start + length
      unmask(data, start, end)
      at = end
      // A whole message in one frame (nearly all) is read where it lies.
      if (control) this.#control(opcode, data.subarray(start, end))
      else if (fin && !this.#fragmentCount) this.#message(opcode, data, start, end)
      else this.#fragment(opcode, fin, data, start, end)
    }
    if (!this.#closing && at < data.length) this.#keep(data.subarray(at))
  }

  #fragment(opcode: number, fin: boolean, data: Buffer, start: number, end: number): void {
    if (!this.#fragmentCount) this.#fragmentOpcode = opcode
    if (++this.#fragmentCount > MAX_FRAGMENTS) {
      this.#fail(PROTOCOL_CLOSE.policy, `A message in over ${MAX_FRAGMENTS} fragments`)
      return
    }
    const bytes = this.#fragmentBytes + end - start
    if (end > start) {
      this.#fragments = grown(this.#fragments, this.#fragmentBytes, bytes, this.maxPayload)
      data.copy(this.#fragments, this.#fragmentBytes, start, end)
      this.#fragmentBytes = bytes
    }
    if (!fin) return
    const whole = this.#fragments?.subarray(0, bytes) ?? Buffer.alloc(0)
    this.#fragments = undefined
    this.#fragmentBytes = 0
    this.#fragmentCount = 0
    this.#message(this.#fragmentOpcode, whole, 0, whole.length)
  }

  /** A whole message, `data[start, end)`. */
  #message(opcode: number, data: Buffer, start: number, end: number): void {
    if (opcode === OPCODE.binary) {
      this.receive(undefined)
      return
    }
    // Checked natively (some 40 ns for 1 KB); not decoded here: the relay reads the bytes.
    const text = data.subarray(start, end)
    if (!isUtf8(text)) {
      this.#fail(PROTOCOL_CLOSE.invalidData, 'A text message must be UTF-8')
      return
    }
    this.receive(text)
  }

  #control(opcode: number, payload: Buffer): void {
    if (opcode === OPCODE.ping || opcode === OPCODE.pong) {
      if (++this.controlFrames > MAX_CONTROL_FRAMES) {
        this.#fail(PROTOCOL_CLOSE.policy, opcode === OPCODE.ping ? 'Too many pings' : 'Too many pongs')
        return
      }
      if (opcode === OPCODE.pong) return
      this.socket.write(header(OPCODE.pong, payload.length))
      if (payload.length) this.socket.write(Buffer.from(payload))
      return
    }
    // A close: echoed (its code and reason), and the socket ends.
    if (payload.length === 0) {
      this.#stopReading()
      closeSocket(this.socket)
      return
    }
    if (payload.length === 1) {
      this.#fail(PROTOCOL_CLOSE.protocolError, 'A close payload of 1 byte')
      return
    }
    const code = payload.readUInt16BE(0)
    if (!sendableCode(code)) {
      this.#fail(PROTOCOL_CLOSE.protocolError, `Close code ${code} may not be sent`)
      return
    }
    const reason = payload.subarray(2)
    if (!isUtf8(reason)) {
      this.#fail(PROTOCOL_CLOSE.invalidData, 'A close reason must be UTF-8')
      return
    }
    this.closeWith(code, Buffer.from(reason))
  }

  #fail(code: number, reason: string): void {
    this.closeWith(code, reason)
  }
}
