import { maxHeaderSize, type Server } from 'node:http'
import { Socket } from 'node:net'
import { MAX_BARE_HEAD_BYTES, parseRequestHead, type RequestHead } from './request-head.js'

/** An `error` or `timeout` listener that ends its socket (`this`): one function for every socket. */
function destroySelf(this: Socket): void {
  this.destroy()
}

/** The sockets a front holds, which node:http's `closeAllConnections()` does not know. */
export interface Front {
  /** Ends the sockets yet to send a byte: on a drain, as node:http's `closeIdleConnections()`. */
  closeWaiting(): void
  /** Ends every socket it holds (those yet to send a byte and those it took), and any that comes from now on. */
  destroy(): void
}

/** Servers with a front already: a second would stand before the first. */
const fronted = new WeakSet<Server>()

/**
 * Puts a front before node:http on `server`: a connection whose first read is one whole plain GET
 * head (see {@link parseRequestHead}) that `take` accepts is served by `take` on the bare socket;
 * any other connection goes to node:http exactly as it came, its bytes put back unread.
 *
 * Why: node:http keeps a parser, the request and the response (and their header copies) for as
 * long as a response lives, some 5 KB of a held event stream's 11 (bench:server part 1's floor
 * row); an event stream needs none of them once its head is read. A head in pieces, a body, an
 * upgrade, anything unusual goes to node:http and its timeouts, so this parser stays a subset.
 *
 * `firstReadMs` bounds the wait for the first bytes (node:http's own `headersTimeout` starts only
 * once it has the socket). A socket handed over is node:http's alone; the front keeps the others
 * (see {@link Front}) until they close.
 *
 * @throws {TypeError} for an https server, one whose `connection` listeners are not node:http's
 * alone, or one with a front already.
 */
export function frontEventStreams(
  server: Server,
  take: (head: RequestHead, socket: Socket) => boolean,
  firstReadMs: number,
): Front {
  const listeners = server.listeners('connection')
  // An https server's `connection` listener is TLS's: its first bytes are a handshake, not a head.
  if ('setSecureContext' in server || listeners.length !== 1 || fronted.has(server)) {
    throw new TypeError('takeEventStreams needs a plain node:http server with no connection listener of its own')
  }
  fronted.add(server)
  const http = listeners[0] as (this: Server, socket: Socket) => void
  // node:http's own limit, if set lower than ours, holds for a head the front reads too.
  const own = (server as { maxHeaderSize?: number }).maxHeaderSize
  const maxBytes = Math.min(MAX_BARE_HEAD_BYTES, own || maxHeaderSize)
  const waiting = new Set<Socket>()
  const taken = new Set<Socket>()
  // Set by destroy(): the signaling server is closing, while the server may still accept.
  let closed = false
  function forget(this: Socket): void {
    waiting.delete(this)
    taken.delete(this)
  }
  function firstRead(this: Socket, chunk: Buffer): void {
    this.setTimeout(0)
    this.off('timeout', destroySelf)
    waiting.delete(this)
    const head = parseRequestHead(chunk, maxBytes)
    let took: boolean
    try {
      took = head !== undefined && take(head, this)
    } catch {
      // A listener's throw would end the process: a request the server cannot take is one socket less.
      this.destroy()
      return
    }
    if (took) {
      // Unless `take` answered at once and the socket is gone already.
      if (!this.destroyed) taken.add(this)
      return
    }
    this.off('close', forget)
    // node:http listens for these from here on.
    this.off('error', destroySelf)
    this.off('end', destroySelf)
    this.pause()
    this.unshift(chunk)
    http.call(server, this)
    this.resume()
  }
  server.off('connection', http)
  server.on('connection', (socket: Socket) => {
    // Something other than a TCP socket, emitted by hand (node:http takes any Duplex): node:http's.
    if (!(socket instanceof Socket)) return http.call(server, socket)
    if (closed) return socket.destroy()
    waiting.add(socket)
    socket.on('close', forget)
    socket.on('error', destroySelf)
    // A client's half-close ends the connection, as node:http's does: before a first read (nothing
    // asked) and during a stream (the subscriber left).
    socket.on('end', destroySelf)
    socket.setTimeout(firstReadMs, destroySelf)
    socket.once('data', firstRead)
  })
  return {
    closeWaiting() {
      for (const socket of waiting) socket.destroy()
    },
    destroy() {
      closed = true
      for (const socket of [...waiting, ...taken]) socket.destroy()
    },
  }
}
