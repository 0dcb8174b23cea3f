import { createSocket, type Socket } from 'node:dgram'

const MAGIC_COOKIE = 0x2112a442

/**
 * A STUN binding responder on 127.0.0.1 (RFC 5389, XOR-MAPPED-ADDRESS only).
 * werift falls back to a public STUN server when given none and waits for
 * it; given this one, it gathers at once and no traffic leaves the machine.
 */
export async function startStunServer(): Promise<{ url: string; close(): Promise<void> }> {
  const socket: Socket = createSocket('udp4')
  socket.on('message', (request, remote) => {
    if (request.length < 20 || request.readUInt16BE(0) !== 0x0001 || request.readUInt32BE(4) !== MAGIC_COOKIE) return
    const response = Buffer.alloc(32)
    response.writeUInt16BE(0x0101, 0) // binding success
    response.writeUInt16BE(12, 2) // attributes length
    response.writeUInt32BE(MAGIC_COOKIE, 4)
    request.copy(response, 8, 8, 20) // transaction id
    response.writeUInt16BE(0x0020, 20) // XOR-MAPPED-ADDRESS
    response.writeUInt16BE(8, 22)
    response.writeUInt16BE(0x0001, 24) // IPv4
    response.writeUInt16BE(remote.port ^ (MAGIC_COOKIE >>> 16), 26)
    const address = remote.address.split('.').reduce((sum, part) => sum * 256 + Number(part), 0)
    response.writeUInt32BE((address ^ MAGIC_COOKIE) >>> 0, 28)
    socket.send(response, remote.port, remote.address)
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return {
    url: `stun:127.0.0.1:${socket.address().port}`,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  }
}
