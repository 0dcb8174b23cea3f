import { spawn } from 'node:child_process'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runs } from './requires'

/** coturn comes from Debian (.ci/run installs it): for describeRequiring. */
export const coturnServer = {
  name: 'turnserver (coturn)',
  present: runs('turnserver', '--version'),
  install: 'sudo apt-get install coturn',
  override: 'PATH',
  looked: 'turnserver on the PATH',
}

/**
 * Each running coturn of the tests holds a slot: a TCP port it listens on as a lock (the kernel
 * lets one process bind it), and by it, its own listening port and relay port range. All of them
 * sit below Linux's ephemeral range (32768+), so neither the kernel nor another test (Chromium,
 * werift, a server on port 0) takes them, and two test files running at once never share one.
 */
const SLOTS = 30
const LOCK_BASE = 19100
const LISTEN_BASE = 19200
const RELAY_BASE = 20000
const RELAY_PORTS = 200

function claim(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(undefined))
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}

const MAGIC = 0x2112a442
const ALLOCATE = 0x0003
const REFRESH = 0x0004
const ATTR = {
  username: 0x0006,
  integrity: 0x0008,
  error: 0x0009,
  lifetime: 0x000d,
  realm: 0x0014,
  nonce: 0x0015,
  transport: 0x0019,
}

/** A STUN message of `type` with `attributes` (each padded to 4 bytes), MESSAGE-INTEGRITY last when `key` is given. */
function stunMessage(type: number, attributes: Array<[number, Buffer]>, key?: Buffer): Buffer {
  const parts = attributes.map(([attr, value]) => {
    const head = Buffer.alloc(4)
    head.writeUInt16BE(attr, 0)
    head.writeUInt16BE(value.length, 2)
    return Buffer.concat([head, value, Buffer.alloc((4 - (value.length % 4)) % 4)])
  })
  const body = Buffer.concat(parts)
  const header = Buffer.alloc(20)
  header.writeUInt16BE(type, 0)
  header.writeUInt16BE(body.length + (key ? 24 : 0), 2)
  header.writeUInt32BE(MAGIC, 4)
  randomBytes(12).copy(header, 8)
  const message = Buffer.concat([header, body])
  if (!key) return message
  const integrity = Buffer.alloc(4)
  integrity.writeUInt16BE(ATTR.integrity, 0)
  integrity.writeUInt16BE(20, 2)
  return Buffer.concat([message, integrity, createHmac('sha1', key).update(message).digest()])
}

/** A STUN response: its class bits (success 0x0100, error 0x0110) and attributes by type. */
function parseStun(packet: Buffer): { type: number; attributes: Map<number, Buffer> } {
  const attributes = new Map<number, Buffer>()
  for (let at = 20; at + 4 <= packet.length; ) {
    const length = packet.readUInt16BE(at + 2)
    attributes.set(packet.readUInt16BE(at), packet.subarray(at + 4, at + 4 + length))
    at += 4 + length + ((4 - (length % 4)) % 4)
  }
  return { type: packet.readUInt16BE(0), attributes }
}

/**
 * A raw TURN allocation over UDP (RFC 5766 with long-term credentials, as a browser makes one):
 * resolves `'allocated'` (and frees the allocation at once), or the STUN error code coturn
 * answered (401: the credentials are refused), or `'no answer'` when it did not answer within `waitMs`.
 * Without credentials it is coturn's readiness probe: an answer (401 with a nonce) means it runs.
 */
export async function allocate(
  port: number,
  username?: string,
  credential?: string,
  waitMs = 2000,
): Promise<'allocated' | number | 'no answer'> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const ask = (message: Buffer) =>
    new Promise<ReturnType<typeof parseStun> | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), waitMs)
      socket.once('message', (packet) => {
        clearTimeout(timer)
        resolve(parseStun(packet))
      })
      socket.send(message, port, '127.0.0.1')
    })
  const udp: [number, Buffer] = [ATTR.transport, Buffer.from([17, 0, 0, 0])]
  try {
    const challenge = await ask(stunMessage(ALLOCATE, [udp]))
    if (!challenge) return 'no answer'
    const realm = challenge.attributes.get(ATTR.realm)
    const nonce = challenge.attributes.get(ATTR.nonce)
    if (username === undefined || credential === undefined || !realm || !nonce) return errorCode(challenge)
    const key = createHash('md5').update(`${username}:${realm}:${credential}`).digest()
    const auth: Array<[number, Buffer]> = [
      [ATTR.username, Buffer.from(username)],
      [ATTR.realm, realm],
      [ATTR.nonce, nonce],
    ]
    const answer = await ask(stunMessage(ALLOCATE, [udp, ...auth], key))
    if (!answer) return 'no answer'
    if ((answer.type & 0x0110) !== 0x0100) return errorCode(answer)
    // Free its relay port now rather than after coturn's 10 minutes.
    await ask(stunMessage(REFRESH, [[ATTR.lifetime, Buffer.alloc(4)], ...auth], key))
    return 'allocated'
  } finally {
    socket.close()
  }
}

function errorCode({ attributes }: ReturnType<typeof parseStun>): number {
  const error = attributes.get(ATTR.error)
  return error ? (error[2] as number) * 100 + (error[3] as number) : 0
}

/** A coturn of the tests' own: TURN over UDP and TCP on 127.0.0.1, shared-secret credentials. */
export interface Coturn {
  /** `turn:127.0.0.1:<port>?transport=udp` */
  url: string
  port: number
  secret: string
  /** What it logged, for a failure's report. */
  log(): string
  /** Stops it (and frees its slot); resolves once it exited. */
  stop(): Promise<void>
}

/**
 * Starts `turnserver` (coturn) on 127.0.0.1 in shared-secret mode ("TURN REST API" credentials,
 * realm politely.test), relaying only on 127.0.0.1 and to loopback peers (without
 * --allow-loopback-peers it refuses to relay to 127.0.0.1). A child in the foreground, stopped by
 * its pid; resolves once it answers an allocation. The secret is hex, not base64url: one that
 * starts with '-' is taken by politely-server's flag parser for a flag (it asks for
 * `--turn-secret=-…`), and one run in 64 of the CLI test failed so in CI.
 */
export async function startCoturn(secret = randomBytes(12).toString('hex')): Promise<Coturn> {
  let slot = -1
  let lock: Server | undefined
  const first = process.pid % SLOTS
  for (let i = 0; i < SLOTS && !lock; i++) {
    slot = (first + i) % SLOTS
    lock = await claim(LOCK_BASE + slot)
  }
  if (!lock) throw new Error(`No free coturn slot (ports ${LOCK_BASE}–${LOCK_BASE + SLOTS - 1} all held)`)
  const port = LISTEN_BASE + slot
  const relay = RELAY_BASE + slot * RELAY_PORTS
  const dir = mkdtempSync(join(tmpdir(), 'politely-coturn-'))
  const args = [
    '-n', // no configuration file
    '--listening-ip=127.0.0.1',
    '--relay-ip=127.0.0.1',
    `--listening-port=${port}`,
    `--min-port=${relay}`,
    `--max-port=${relay + RELAY_PORTS - 1}`,
    '--use-auth-secret',
    `--static-auth-secret=${secret}`,
    '--realm=politely.test',
    '--allow-loopback-peers',
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    `--userdb=${join(dir, 'turndb')}`,
    `--pidfile=${join(dir, 'pid')}`,
    '--log-file=stdout',
    '--simple-log',
  ]
  const child = spawn('turnserver', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => {
    output += chunk
  })
  child.stderr.on('data', (chunk) => {
    output += chunk
  })
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve())
    child.once('error', (error) => {
      output += String(error)
      resolve()
    })
  })
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
    await new Promise((resolve) => lock?.close(resolve))
    rmSync(dir, { recursive: true, force: true })
  }
  const gone = exited.then(() => 'exited' as const)
  // It answers within a few hundred ms; 10 s of silence is a coturn that will not.
  for (let attempt = 0; ; attempt++) {
    const answer = await Promise.race([allocate(port, undefined, undefined, 200), gone])
    if (answer === 401) break
    if (answer !== 'no answer' || attempt === 50) {
      await stop()
      throw new Error(`coturn did not start on 127.0.0.1:${port} (${answer}):\n${output}`)
    }
  }
  return { url: `turn:127.0.0.1:${port}?transport=udp`, port, secret, log: () => output, stop }
}
