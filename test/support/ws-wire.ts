import { createHash, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'

/**
 * WebSocket on the wire, by hand: a frame encoder that can lie (reserved bits,
 * any opcode, unmasked, any declared length in any of the three length forms),
 * a decoder for what a server answers, and a raw TCP client that does the
 * upgrade itself and then writes whatever bytes a test hands it.
 */

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const

export interface FrameSpec {
  opcode: number
  payload?: Buffer | string
  /** Default true. */
  fin?: boolean
  /** RSV1-3 as a 3-bit number: 0b100 = RSV1, 0b010 = RSV2, 0b001 = RSV3. */
  rsv?: number
  /** Default true: a client must mask. */
  masked?: boolean
  /** Masking key; random by default. */
  mask?: Buffer
  /** The declared payload length, when it should not be the true one (a lie). A bigint reaches all 64 bits. */
  length?: number | bigint
  /** Length encoding; by default the shortest that holds the declared length. */
  lengthForm?: 7 | 16 | 64
}

/** One frame as bytes. Only the payload that is given is sent, whatever length is declared. */
export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0))
  const declared = BigInt(spec.length ?? payload.length)
  const form = spec.lengthForm ?? (declared > 0xffffn ? 64 : declared > 125n ? 16 : 7)
  const masked = spec.masked ?? true
  const head = [((spec.fin ?? true) ? 0x80 : 0) | (((spec.rsv ?? 0) & 7) << 4) | (spec.opcode & 0x0f)]
  const maskBit = masked ? 0x80 : 0
  let extended = Buffer.alloc(0)
  if (form === 7) head.push(maskBit | Number(declared & 0x7fn))
  else if (form === 16) {
    head.push(maskBit | 126)
    extended = Buffer.alloc(2)
    extended.writeUInt16BE(Number(declared & 0xffffn))
  } else {
    head.push(maskBit | 127)
    extended = Buffer.alloc(8)
    extended.writeBigUInt64BE(BigInt.asUintN(64, declared))
  }
  if (!masked) return Buffer.concat([Buffer.from(head), extended, payload])
  const mask = spec.mask ?? randomBytes(4)
  const body = Buffer.from(payload)
  for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (mask[i & 3] as number)
  return Buffer.concat([Buffer.from(head), extended, mask, body])
}

/** A close frame's payload: the code, then the reason (any bytes, to send invalid UTF-8 too). */
export function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const head = Buffer.alloc(2)
  head.writeUInt16BE(code)
  return Buffer.concat([head, typeof reason === 'string' ? Buffer.from(reason) : reason])
}

export interface Frame {
  fin: boolean
  opcode: number
  payload: Buffer
}

/** Decodes complete frames off the front of `buffer` (a server's frames are unmasked; masked ones are undone). */
export function decodeFrames(buffer: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = []
  let at = 0
  for (;;) {
    if (buffer.length - at < 2) break
    const b0 = buffer[at] as number
    const b1 = buffer[at + 1] as number
    let length = b1 & 0x7f
    let offset = at + 2
    if (length === 126) {
      if (buffer.length < offset + 2) break
      length = buffer.readUInt16BE(offset)
      offset += 2
    } else if (length === 127) {
      if (buffer.length < offset + 8) break
      length = Number(buffer.readBigUInt64BE(offset))
      offset += 8
    }
    const mask = b1 & 0x80 ? buffer.subarray(offset, offset + 4) : undefined
    if (mask) offset += 4
    if (buffer.length < offset + length) break
    const payload = Buffer.from(buffer.subarray(offset, offset + length))
    if (mask) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (mask[i & 3] as number)
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload })
    at = offset + length
  }
  return { frames, rest: buffer.subarray(at) }
}

/** The server's close frame, if it sent one: its code (undefined for an empty close) and reason. */
export function closeOf(frames: Frame[]): { code?: number; reason: string } | undefined {
  const close = frames.find((frame) => frame.opcode === OPCODE.close)
  if (!close) return undefined
  if (close.payload.length < 2) return { reason: '' }
  return { code: close.payload.readUInt16BE(0), reason: close.payload.subarray(2).toString() }
}

/** Rejects with `what` if `promise` has not settled within `ms`: every wait of a fuzz case is bounded. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** A raw TCP connection that records everything the server sends and how it ended. */
export class RawConnection {
  readonly socket: Socket
  /** Every byte received, in order. */
  received = Buffer.alloc(0)
  /** The server ended its side (FIN), or reset the connection. */
  endedByServer = false
  /** The socket is gone (both sides). */
  readonly closed: Promise<void>
  #waiters: Array<() => void> = []

  constructor(socket: Socket) {
    this.socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk])
      this.#wake()
    })
    socket.on('end', () => {
      this.endedByServer = true
      this.#wake()
    })
    // A reset (ECONNRESET, EPIPE on a write racing the server's close) ends the socket too; it is not a failure here.
    socket.on('error', () => {
      this.endedByServer = true
    })
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
    this.closed.then(() => this.#wake())
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, host)
      socket.once('connect', () => {
        socket.off('error', reject)
        resolve(new RawConnection(socket))
      })
      socket.once('error', reject)
    })
  }

  /** Writes, unless the socket is already gone (the server may have closed it mid-case). */
  write(bytes: Buffer | string): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(bytes)
  }

  /** Resolves once `condition` holds (checked on every arrival) or the socket is gone. */
  waitFor(condition: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (condition() || this.socket.destroyed) resolve()
        else this.#waiters.push(check)
      }
      check()
    })
  }

  /** The HTTP status line, once the head of an answer arrived. */
  statusLine(): string | undefined {
    const end = this.received.indexOf('\r\n')
    return end >= 0 ? this.received.subarray(0, end).toString('latin1') : undefined
  }

  #wake(): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const waiter of waiters) waiter()
  }
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

/** The upgrade request for `path`, with a fresh key (or the one given), or with the headers given instead. */
export function upgradeRequest(
  path: string,
  port: number,
  headers?: Record<string, string>,
  key = randomBytes(16).toString('base64'),
): { text: string; key: string } {
  const all = headers ?? {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
  }
  const lines = Object.entries(all).map(([name, value]) => `${name}: ${value}\r\n`)
  return { text: `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${lines.join('')}\r\n`, key }
}

/** A raw connection upgraded to WebSocket by hand, past the server's welcome frame. */
export class RawWebSocket {
  readonly connection: RawConnection
  /** Bytes of the server's answer after the 101 head. */
  readonly #bodyStart: number

  private constructor(connection: RawConnection, bodyStart: number) {
    this.connection = connection
    this.#bodyStart = bodyStart
  }

  /** Upgrades on `path` (written together with `extra`, if any: frames in the same packet as the request) and waits for welcome. */
  static async open(port: number, path: string, extra?: Buffer, timeoutMs = 10_000): Promise<RawWebSocket> {
    const connection = await RawConnection.open(port)
    const { text, key } = upgradeRequest(path, port)
    connection.write(extra ? Buffer.concat([Buffer.from(text), extra]) : text)
    const headEnd = () => connection.received.indexOf('\r\n\r\n')
    await within(
      connection.waitFor(() => headEnd() >= 0),
      timeoutMs,
      `the answer to the upgrade on ${path}`,
    )
    const head = connection.received.subarray(0, Math.max(0, headEnd())).toString('latin1')
    const accept = createHash('sha1')
      .update(key + GUID)
      .digest('base64')
    if (!head.startsWith('HTTP/1.1 101 ') || !head.includes(`Sec-WebSocket-Accept: ${accept}`)) {
      connection.socket.destroy()
      throw new Error(`Upgrade on ${path} refused: ${head.split('\r\n')[0] || '(no answer)'}`)
    }
    const socket = new RawWebSocket(connection, headEnd() + 4)
    // A refusal is a 101 too, closed at once with 4000 + its HTTP status.
    await within(
      connection.waitFor(() => socket.frames().some(isWelcome) || socket.close() !== undefined),
      timeoutMs,
      `the welcome frame on ${path}`,
    )
    if (!socket.frames().some(isWelcome)) {
      connection.socket.destroy()
      const close = socket.close()
      throw new Error(
        `No welcome frame on ${path}: ${close ? `closed with ${close.code} ${close.reason}` : 'the connection ended'}`,
      )
    }
    return socket
  }

  /** Complete frames the server sent so far (welcome first). */
  frames(): Frame[] {
    return decodeFrames(this.connection.received.subarray(this.#bodyStart)).frames
  }

  /** The server's close frame, if any. */
  close(): { code?: number; reason: string } | undefined {
    return closeOf(this.frames())
  }

  write(bytes: Buffer): void {
    this.connection.write(bytes)
  }
}

const isWelcome = (frame: Frame) => frame.opcode === OPCODE.text && frame.payload.toString().startsWith('{"type":"welcome"')
