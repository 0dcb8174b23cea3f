// The signaling server restarts while a renegotiation is under way: the offer (and its repeats)
// wait in the adapter's queue while the server is down, and go out once it is back on the same
// port. The renegotiation must complete on the connection it started on: no rebuild, no close.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import type { PerfectNegotiationPeer, PolitelyError, Signaler } from '../../src/index'
import { SseSignaler } from '../../src/signalers/sse'
import { WebSocketSignaler } from '../../src/signalers/websocket'
import { startServer } from '../support/server'
import { makePeer, opened, roundTrip, STACKS, type Stack, uniqueRoom } from '../support/stacks'
import { until } from '../support/until'

/** How long the server stays down (ms): longer than the default stall timeout (2.5 s). */
const DOWN_MS = 4000

/** A timeline of what the peers, their signalers and their transports did, in ms since `t0`. */
class Timeline {
  readonly t0 = Date.now()
  readonly lines: string[] = []
  /** Repeating lines (a reconnect refused every 50 ms) shown once, with a count, until that side does something else. */
  readonly #repeats = new Map<string, { line: number; count: number; first: number }>()
  log(who: string, what: string, repeating = false): void {
    const now = Date.now() - this.t0
    const key = `${who} ${what}`
    const seen = this.#repeats.get(key)
    if (repeating && seen) {
      seen.count++
      this.lines[seen.line] = `${String(seen.first).padStart(6)} ${who.padEnd(2)} ${what} ×${seen.count} (until ${now})`
      return
    }
    if (!repeating) for (const k of this.#repeats.keys()) if (k.startsWith(`${who} `)) this.#repeats.delete(k)
    if (repeating) this.#repeats.set(key, { line: this.lines.length, count: 1, first: now })
    this.lines.push(`${String(now).padStart(6)} ${who.padEnd(2)} ${what}`)
  }
}

/** What a signaling message is, in a few words: `description offer s1→1`, `candidate`, `hello s1→2`. */
function describeMessage(raw: unknown): string {
  const m = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Record<string, unknown>
  const kind = m.kind === 'description' ? `offer/answer:${(m.description as { type: string }).type}` : String(m.kind)
  return `${kind} s${m.session}${m.toSession === undefined ? '' : `→${m.toSession}`}${m.to === undefined ? ' (broadcast)' : ''}`
}

const quick = () => 50

/** `fetch` that logs the SSE adapter's requests: stream opens, what the stream carries, posts and their outcome. */
function loggingFetch(timeline: Timeline, who: string): typeof fetch {
  return async (input, init) => {
    const method = init?.method ?? 'GET'
    const posted = method === 'POST' ? (JSON.parse(String(init?.body)) as unknown[]).map(describeMessage) : []
    let response: Response
    try {
      response = await fetch(input, init)
    } catch (error) {
      if (method === 'POST' || !init?.signal?.aborted)
        timeline.log(
          who,
          `sse ${method} failed (${(error as Error).cause ?? (error as Error).message}) ${posted.join(', ')}`,
          true,
        )
      throw error
    }
    if (method === 'POST') {
      timeline.log(who, `sse POST ${response.status}: ${posted.join(', ')}`)
      return response
    }
    timeline.log(who, `sse GET ${response.status}`)
    if (!response.body) return response
    const decoder = new TextDecoder()
    const tap = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        for (const block of decoder.decode(chunk, { stream: true }).split('\n\n')) {
          const event = /^event: (\w+)/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event && event !== 'message') timeline.log(who, `sse ⇣ ${event}`)
          else if (data && data !== '{}') timeline.log(who, `sse ⇣ ${describeMessage(data)}`)
        }
        controller.enqueue(chunk)
      },
    })
    return new Response(response.body.pipeThrough(tap), { status: response.status, headers: response.headers })
  }
}

/** `ws` that logs the WebSocket adapter's sockets: opens, closes, frames sent, frames received. */
function loggingWebSocket(timeline: Timeline, who: string): typeof globalThis.WebSocket {
  class Logging extends WebSocket {
    constructor(url: string) {
      super(url)
      this.on('open', () => timeline.log(who, 'ws open'))
      this.on('close', (code) => timeline.log(who, `ws close ${code}`, code === 1006))
      this.on('error', (error) => timeline.log(who, `ws error ${(error as Error).message}`, true))
      this.on('unexpected-response', (_request, response) => timeline.log(who, `ws refused ${response.statusCode}`))
      this.on('message', (data) => {
        const frame = JSON.parse(String(data)) as { type: string; message?: unknown; n?: number }
        if (frame.type === 'message') timeline.log(who, `ws ⇣ ${describeMessage(frame.message)}`)
        else if (frame.type !== 'ack') timeline.log(who, `ws ⇣ ${frame.type}`)
      })
    }
    override send(data: string): void {
      timeline.log(who, `ws ⇡ ${(JSON.parse(data) as unknown[]).map(describeMessage).join(', ')}`)
      super.send(data)
    }
  }
  return Logging as unknown as typeof globalThis.WebSocket
}

const ADAPTERS = [
  {
    name: 'sse',
    make: (url: string, room: string, timeline: Timeline, who: string): Signaler =>
      new SseSignaler({ url, room, reconnectDelay: quick, fetch: loggingFetch(timeline, who) }),
  },
  {
    name: 'websocket',
    make: (url: string, room: string, timeline: Timeline, who: string): Signaler =>
      new WebSocketSignaler({ url, room, reconnectDelay: quick, WebSocket: loggingWebSocket(timeline, who) }),
  },
]

const combos = STACKS.flatMap((stack) => ADAPTERS.map((adapter) => ({ name: `${adapter.name} × ${stack.name}`, stack, adapter })))

/** Both sides stable, with the same transceivers, every one of them negotiated (mid set). */
function settled(a: PerfectNegotiationPeer, b: PerfectNegotiationPeer, transceivers: number): boolean {
  return [a, b].every(
    (p) =>
      p.connection?.signalingState === 'stable' &&
      p.connection.getTransceivers().length === transceivers &&
      p.connection.getTransceivers().every((t) => !!t.mid),
  )
}

describe.each(combos)('$name', ({ stack: stackKind, adapter }) => {
  let stack: Stack
  const peers: PerfectNegotiationPeer[] = []
  beforeAll(async () => {
    stack = await stackKind.make()
  })
  afterAll(async () => {
    for (const p of peers) p.close()
    await stack.close()
  })

  test.each(['impolite', 'polite'])(
    'server restart during a renegotiation started by the %s side: it completes, no rebuild, no close',
    async (role) => {
      const timeline = new Timeline()
      let server = await startServer()
      const room = uniqueRoom()
      // a: the side that renegotiates; the lower id is the polite one.
      const tag = Math.random().toString(36).slice(2, 8)
      const [low, high] = [`p-${tag}`, `q-${tag}`]
      const make = (who: string, id: string) => {
        const created = makePeer(stack, room, { id, signaler: adapter.make(server.url, room, timeline, who) })
        peers.push(created)
        return created
      }
      const a = make('a', role === 'polite' ? low : high)
      const b = make('b', role === 'polite' ? high : low)
      const names = new Map([
        [a, 'a'],
        [b, 'b'],
      ])
      const disturbed: string[] = []
      const offs: Array<() => void> = []
      for (const [p, who] of names) {
        offs.push(
          p.on('rebuild', ({ reason, session }) => {
            disturbed.push(`${who} rebuild ${reason}`)
            timeline.log(who, `REBUILD ${reason} → session ${session}`)
          }),
          p.on('close', ({ reason }) => {
            disturbed.push(`${who} close ${reason}`)
            timeline.log(who, `CLOSE ${reason}`)
          }),
          p.on('reconnecting', ({ reason, attempt }) => timeline.log(who, `reconnecting ${reason} #${attempt}`)),
          p.on('reconnected', ({ attempts }) => timeline.log(who, `reconnected after ${attempts}`)),
          p.on('state', ({ state }) => timeline.log(who, `state ${state}`)),
          p.on('error', (error) => timeline.log(who, `ERROR ${error.code}: ${error.message}`)),
          p.on('dropped', ({ code, kind }) => timeline.log(who, `dropped ${kind} (${code})`)),
          p.on('signal', ({ direction, message }) => {
            if (message.kind !== 'candidate') timeline.log(who, `peer ${direction} ${describeMessage(message)}`)
          }),
        )
      }
      let restartedAt = 0
      try {
        await Promise.all([a.start(), b.start()])
        await Promise.all([opened(a), opened(b)])
        await roundTrip(a, b, 'before')
        expect(a.errors.length + b.errors.length, 'errors before the restart').toBe(0)
        for (const [p, who] of names) {
          const pc = p.connection!
          pc.addEventListener('signalingstatechange', () => timeline.log(who, `signalingState ${pc.signalingState}`))
        }
        const transceivers = a.connection!.getTransceivers().length + 1

        const port = server.port
        timeline.log('--', 'server close')
        await server.close()
        timeline.log('--', 'server closed; a adds a recvonly audio transceiver')
        a.connection!.addTransceiver('audio', { direction: 'recvonly' })
        await new Promise((resolve) => setTimeout(resolve, DOWN_MS))
        server = await startServer({ port })
        restartedAt = Date.now()
        timeline.log('--', `server restarted on port ${port}`)

        // Done when the renegotiation settled on the connections it started on; if either side
        // rebuilt or closed instead, when both are open again (for the timeline).
        const reopened = () => [a, b].every((p) => p.state === 'connected' && p.connection?.signalingState === 'stable')
        await until(
          () => (disturbed.length ? reopened() : settled(a, b, transceivers)),
          'the renegotiation to settle (or, disturbed, the peers to reopen)',
          20_000,
        )
        const ms = Date.now() - restartedAt
        const outcome = disturbed.length ? `never (disturbed; open again after a rebuild: ${ms} ms)` : `${ms} ms`
        timeline.log('--', `restart → stable: ${outcome}`)
        const errors = [...a.errors, ...b.errors].map((e) => `${(e as PolitelyError).code}: ${e.message}`)
        console.log(
          `[${adapter.name} × ${stackKind.name}, ${role} side renegotiates] restart → stable: ${outcome}; app errors: ${errors.length ? errors.join(' | ') : 'none'}`,
        )
        expect(disturbed).toEqual([])
        expect(a.connection!.getTransceivers().length).toBe(transceivers)
        await roundTrip(a, b, 'after, a → b')
        await roundTrip(b, a, 'after, b → a')
        expect(disturbed).toEqual([])
        // What the adapters report while the server is down: nothing the app must act on.
        expect([...a.errors, ...b.errors].map((e) => `${(e as PolitelyError).code}: ${e.message}`)).toEqual([])
      } catch (error) {
        console.log(
          `[${adapter.name} × ${stackKind.name}, ${role} side renegotiates] FAILED; timeline (ms):\n${timeline.lines.join('\n')}`,
        )
        throw error
      } finally {
        for (const off of offs) off()
        a.close()
        b.close()
        await server.close()
      }
      if (process.env.SIGRESTART_TRACE) console.log(timeline.lines.join('\n'))
    },
    60_000,
  )
})
