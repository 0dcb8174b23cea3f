// Exhaustion, as an attacker would try it, against the CLI in a process of its own and with
// the documented defaults: many rooms, many idle SSE subscriptions, readers that stop reading.
// After each attack: the limits answered as documented, the process's resident memory stayed
// within its bound, and an unrelated pair still connects and relays. Addresses are told apart
// by X-Forwarded-For (the server runs with --trust-proxy), so one machine can play many clients.
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import { until } from '../support/until'

/**
 * The process runs as it would in a small container: V8's heap capped (without a cap, V8 sizes
 * its heap by the machine's memory and collects lazily, so RSS says little). If what the server
 * keeps outgrew the cap, it would die of it; RSS must stay under the documented bound.
 */
const HEAP_MB = 192
const RSS_BOUND_MB = 300

const token = (n: number | string) => `t${String(n).padStart(23, '0')}`

describe('the server under exhaustion attacks (a process of its own, default limits)', () => {
  let child: ChildProcess
  let base = ''
  let port = 0
  let stderr = ''
  const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1]) / 1024

  beforeAll(async () => {
    child = spawn(
      process.execPath,
      [`--max-old-space-size=${HEAP_MB}`, 'dist/cli.mjs', '--port', '0', '--host', '127.0.0.1', '--trust-proxy'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    child.stderr?.on('data', (chunk) => {
      stderr += chunk
    })
    let out = ''
    child.stdout?.on('data', (chunk) => {
      out += chunk
    })
    await until(() => /signaling: (http:\/\/\S+)/.test(out), 'the server to listen')
    base = /signaling: (http:\/\/\S+)/.exec(out)?.[1] as string
    port = Number(new URL(base).port)
  })
  afterAll(() => {
    child?.kill()
  })

  /** The server is alive, within its memory bound, and a pair from a fresh address relays over WebSocket. */
  async function stillServes(what: string) {
    expect(child.exitCode, `${what}: the server exited\n${stderr}`).toBeNull()
    expect(rssMb(), `${what}: resident memory`).toBeLessThan(RSS_BOUND_MB)
    const room = `calm-${what.replace(/\W/g, '')}`
    const open = (peer: string) => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/${room}?peer=${peer}&token=${token(peer)}`, {
        headers: { 'x-forwarded-for': '192.0.2.200' },
      })
      const frames: string[] = []
      ws.on('message', (data) => frames.push(String(data)))
      return { ws, frames }
    }
    const a = open('a')
    const b = open('b')
    await until(() => a.frames.length > 0 && b.frames.length > 0, `${what}: the pair's welcomes`)
    a.ws.send(JSON.stringify({ kind: 'hello', from: 'a', session: 1 }))
    await until(() => b.frames.some((f) => f.includes('"from":"a"')), `${what}: a relayed message`)
    a.ws.close()
    b.ws.close()
  }

  /** An SSE subscription from `address`; resolves with its status (a 200 stays open until `abort`). */
  async function subscribe(address: string, room: string, peer: string, abort: AbortController) {
    const response = await fetch(`${base}/${room}?peer=${peer}&token=${token(peer)}`, {
      headers: { 'x-forwarded-for': address },
      signal: abort.signal,
    })
    if (response.status !== 200) await response.body?.cancel()
    return response.status
  }

  test('many idle SSE subscriptions from one address: at most 100 held (60 here: room credit runs out first), the rest 429; a fresh pair still connects', async () => {
    const abort = new AbortController()
    const statuses: number[] = []
    for (let batch = 0; batch < 10; batch++) {
      statuses.push(
        ...(await Promise.all(
          Array.from({ length: 50 }, (_, i) => subscribe('203.0.113.1', `idle-${batch}-${i}`, `p${batch}x${i}`, abort)),
        )),
      )
    }
    const held = statuses.filter((s) => s === 200).length
    const refused = statuses.filter((s) => s === 429).length
    console.log(`idle subscriptions: ${held} held, ${refused} refused; RSS ${rssMb().toFixed(0)} MB`)
    // 60 new rooms a minute, burst 60: the room credit runs out before the connection cap.
    expect(held).toBeLessThanOrEqual(100)
    expect(held + refused).toBe(500)
    await stillServes('idle subscriptions')
    abort.abort()
  })

  test('rooms filled with replay from many addresses: the total replay budget holds RSS down', async () => {
    const before = rssMb()
    const message = (from: string, n: number) => ({
      kind: 'description',
      from,
      to: 'nobody',
      session: 1,
      toSession: 1,
      description: { type: 'offer', sdp: `v=0 ${n} ${'a'.repeat(3900)}` },
    })
    let rooms = 0
    let refused = 0
    // 40 addresses × 60 rooms × 256 KiB would be 600 MB of replay without the total budget.
    for (let address = 0; address < 40; address++) {
      await Promise.all(
        Array.from({ length: 60 }, async (_, i) => {
          const abort = new AbortController()
          const peer = `f${address}x${i}`
          const room = `flood-${address}-${i}`
          const status = await subscribe(`198.18.0.${address}`, room, peer, abort)
          if (status !== 200) {
            refused++
            return
          }
          rooms++
          const batch = Array.from({ length: 64 }, (_, n) => message(peer, n))
          await fetch(`${base}/${room}`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token(peer)}`, 'x-forwarded-for': `198.18.0.${address}` },
            body: JSON.stringify(batch),
          }).then((response) => response.body?.cancel())
          abort.abort()
        }),
      )
    }
    const after = rssMb()
    // Rooms whose last peer left are freed after the release grace (15 s), their buffers with them.
    await new Promise((resolve) => setTimeout(resolve, 2000))
    console.log(
      `flood: ${rooms} rooms filled, ${refused} refused; RSS ${before.toFixed(0)} → ${after.toFixed(0)} MB, ${rssMb().toFixed(0)} MB 2 s later`,
    )
    expect(rooms).toBeGreaterThan(1000)
    await stillServes('room flood')
  })

  test('readers that stop reading (WebSocket, raw): cut off, memory bounded, others unaffected', async () => {
    // 12 sleepers and the sender: within maxPeersPerRoom (16).
    const sleepers = Array.from({ length: 12 }, (_, i) => {
      const socket = connect(port, '127.0.0.1')
      socket.on('error', () => {})
      socket.write(
        `GET /signal/sleepy?peer=s${i}&token=${token(`s${i}`)} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.50\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      )
      socket.once('data', () => socket.pause())
      return socket
    })
    const sender = new WebSocket(`${base.replace('http', 'ws')}/sleepy?peer=w&token=${token('w')}`, {
      headers: { 'x-forwarded-for': '203.0.113.51' },
    })
    await new Promise((resolve) => sender.once('message', resolve))
    // 40 messages a second (the sender may send 50), 100 KB each (within maxMessageBytes), to the sleepers in turn.
    const description = { type: 'offer', sdp: 'v'.repeat(100_000) }
    const frame = (round: number) =>
      JSON.stringify(
        Array.from({ length: 4 }, (_, i) => ({
          kind: 'description',
          from: 'w',
          to: `s${(round * 4 + i) % sleepers.length}`,
          session: 1,
          toSession: 1,
          description,
        })),
      )
    let peak = 0
    for (let round = 0; round < 80; round++) {
      sender.send(frame(round))
      peak = Math.max(peak, rssMb())
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    console.log(`slow readers: peak RSS ${peak.toFixed(0)} MB`)
    expect(peak).toBeLessThan(RSS_BOUND_MB)
    sender.close()
    for (const socket of sleepers) socket.destroy()
    await stillServes('slow readers')
  })
})
