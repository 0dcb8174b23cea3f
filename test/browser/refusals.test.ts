// Refusals, CORS and the third peer in real Chromium: what a page sees when the
// server says no (a typed error and a rejected start(), never a silent hang),
// that an allowed cross-origin page really connects (preflight and all), and
// that a third page in a 1:1 room never breaks the pair, over every transport.
import { createServer, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { createSignalingServer, listen, type ServerOptions, serveStatic } from '../../src/server/index'
import { parseRequestHead } from '../../src/server/request-head'
import { freePort } from '../support/ports'
import { describeBrowser, launchChromium } from './chromium'

type Transport = 'sse' | 'websocket' | 'broadcast'

/**
 * Signaling and the test pages on one port (same origin), or the pages alone. Signaling takes
 * event streams on the bare socket, as the CLI does; `bareStreams()` counts the subscriptions
 * that came as a connection's first read, which the front takes (a page's own origin mostly
 * reuses a connection its page loaded on: node:http's).
 */
async function start(options: ServerOptions | undefined) {
  const signaling = options && createSignalingServer(options)
  const files = serveStatic({ '/': 'test/browser/fixtures', '/dist/': 'dist' })
  const server: Server = createServer((request, response) => {
    if (!signaling?.handle(request, response)) files(request, response)
  })
  server.on('upgrade', (request, socket, head) => {
    if (!signaling?.upgrade(request, socket, head)) socket.destroy()
  })
  let bare = 0
  if (signaling) {
    signaling.takeEventStreams(server)
    server.on('connection', (socket: Socket) =>
      socket.once('data', (chunk: Buffer) => {
        if (parseRequestHead(chunk)?.url.startsWith('/signal/')) bare++
      }),
    )
  }
  const port = await listen(server, 0, '127.0.0.1')
  return {
    origin: `http://127.0.0.1:${port}`,
    bareStreams: () => bare,
    async close() {
      await signaling?.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

let rooms = 0
const uniqueRoom = () => `browser-refusal-${process.pid}-${rooms++}`

describeBrowser('refusals, CORS and the third peer in Chromium', () => {
  let browser: Browser
  /** Same origin as its pages; `authorize` refuses rooms named private-… */
  let home: Awaited<ReturnType<typeof start>>
  /** Signaling only, allowing one page origin (`friend`). */
  let strict: Awaited<ReturnType<typeof start>>
  /** Pages of another origin. */
  let friend: Awaited<ReturnType<typeof start>>
  let foe: Awaited<ReturnType<typeof start>>
  const pages: Page[] = []

  beforeAll(async () => {
    browser = await launchChromium()
    home = await start({ authorize: (_request, { room }) => !room.startsWith('private-') })
    friend = await start(undefined)
    foe = await start(undefined)
    strict = await start({ allowedOrigins: [friend.origin] })
  })
  afterAll(async () => {
    await browser?.close()
    for (const server of [home, strict, friend, foe]) await server?.close()
  })

  /** A page of `origin` in a context of its own (no BroadcastChannel shared) unless `context` is given. */
  async function page(origin: string, context?: Awaited<ReturnType<Browser['newContext']>>): Promise<Page> {
    const created = await (context ?? (await browser.newContext())).newPage()
    pages.push(created)
    await created.goto(`${origin}/adapters.html`)
    return created
  }

  const startPeer = (p: Page, args: { url: string; room: string; transport: Transport; maxPeers?: number; id?: string }) =>
    p.evaluate((a) => (window as unknown as { startPeer(x: typeof a): Promise<string> }).startPeer(a), args)
  /** A start() that stays pending while refused: its page is closed under it at the end. */
  const pending = (started: Promise<string>) => void started.catch(() => {})
  const log = (p: Page) => p.evaluate(() => (window as unknown as { log: string[] }).log)
  const state = (p: Page) => p.evaluate(() => (window as unknown as { peer: { state: string } }).peer.state)
  const send = (p: Page, text: string) =>
    p.evaluate((t) => (window as unknown as { peer: { send(x: string): void } }).peer.send(t), text)

  for (const transport of ['sse', 'websocket'] as const) {
    test(`${transport}: a page of an origin the server does not allow gets origin-not-allowed`, async () => {
      const p = await page(foe.origin)
      const result = await startPeer(p, { url: `${strict.origin}/signal`, room: uniqueRoom(), transport })
      expect(result).toBe('rejected origin-not-allowed 403')
      expect(await log(p)).toEqual(['error origin-not-allowed 403'])
    })

    test(`${transport}: pages of an allowed origin connect across origins (CORS, preflight)`, async () => {
      const room = uniqueRoom()
      const [a, b] = [await page(friend.origin), await page(friend.origin)]
      const url = `${strict.origin}/signal`
      const bareBefore = strict.bareStreams()
      expect(await Promise.all([startPeer(a, { url, room, transport }), startPeer(b, { url, room, transport })])).toEqual([
        'started',
        'started',
      ])
      for (const p of [a, b])
        await p.waitForFunction(() => (window as unknown as { peer: { state: string } }).peer.state === 'connected')
      await send(a, 'across origins')
      await b.waitForFunction(() => (window as unknown as { log: string[] }).log.includes('message across origins'))
      expect([...(await log(a)), ...(await log(b))].filter((line) => line.startsWith('error'))).toEqual([])
      // Each page's EventSource was its first request to the signaling origin: answered on the bare socket.
      if (transport === 'sse') expect(strict.bareStreams() - bareBefore).toBeGreaterThanOrEqual(2)
    })

    test(`${transport}: authorize says no: forbidden`, async () => {
      const p = await page(home.origin)
      const result = await startPeer(p, { url: '/signal', room: `private-${uniqueRoom()}`, transport })
      expect(result).toBe('rejected forbidden 403')
    })

    test(`${transport}: an id another page holds: id-taken`, async () => {
      const room = uniqueRoom()
      const owner = await page(home.origin)
      expect(await startPeer(owner, { url: '/signal', room, transport, id: 'twin' })).toBe('started')
      const thief = await page(home.origin)
      expect(await startPeer(thief, { url: '/signal', room, transport, id: 'twin' })).toBe('rejected id-taken 409')
    })
  }

  for (const transport of ['sse', 'websocket'] as const) {
    test(`${transport}: retryable refusals are reported once and retried until the server lets the page in`, async () => {
      // One connection per address (the page's own POSTs meet it too, and are retried).
      const tight = await start({ maxConnectionsPerAddress: 1 })
      try {
        const url = '/signal'
        const first = await page(tight.origin)
        expect(await startPeer(first, { url, room: 'one', transport })).toBe('started')
        // A second connection from this address: too-many-connections, until the first page leaves.
        const second = await page(tight.origin)
        const admitted = startPeer(second, { url, room: 'one', transport })
        await second.waitForFunction(() => (window as unknown as { log: string[] }).log.length > 0)
        expect(await log(second)).toEqual(['error too-many-connections 429'])
        await first.close()
        expect(await admitted).toBe('started')
        expect(await log(second)).toEqual(['error too-many-connections 429'])
        await second.close()
      } finally {
        await tight.close()
      }
      // A second room, where one page already made the first: refused, reported once, retried.
      for (const [limits, expected] of [
        [{ newRoomsPerMinute: 1 }, 'error rate-limited 429'],
        [{ maxRooms: 1 }, 'error too-many-rooms 503'],
      ] as const) {
        const server = await start(limits)
        try {
          const creator = await page(server.origin)
          expect(await startPeer(creator, { url: '/signal', room: 'r1', transport })).toBe('started')
          const another = await page(server.origin)
          pending(startPeer(another, { url: '/signal', room: 'r2', transport }))
          await another.waitForFunction(() => (window as unknown as { log: string[] }).log.length > 0)
          expect(await log(another)).toEqual([expected])
        } finally {
          await server.close()
        }
      }
    })

    test(`${transport}: no server behind the URL: unavailable, not a silent hang`, async () => {
      const p = await page(home.origin)
      pending(startPeer(p, { url: `http://127.0.0.1:${await freePort()}/signal`, room: uniqueRoom(), transport }))
      await p.waitForFunction(() => (window as unknown as { log: string[] }).log.length > 0)
      expect(await log(p)).toEqual(['error unavailable'])
    })
  }

  for (const transport of ['sse', 'websocket', 'broadcast'] as const) {
    for (const capped of transport === 'broadcast' ? [false] : [true, false]) {
      test(`${transport}, ${capped ? 'room capped at 2' : 'no cap'}: a third page never breaks the pair`, async () => {
        const room = uniqueRoom()
        // BroadcastChannel reaches only pages of one context; the server adapters get a context each.
        const shared = transport === 'broadcast' ? await browser.newContext() : undefined
        const args = { url: '/signal', room, transport, maxPeers: capped ? 2 : undefined }
        const [a, b] = [await page(home.origin, shared), await page(home.origin, shared)]
        await Promise.all([startPeer(a, args), startPeer(b, args)])
        for (const p of [a, b])
          await p.waitForFunction(() => (window as unknown as { peer: { state: string } }).peer.state === 'connected')
        const c = await page(home.origin, shared)
        const third = await startPeer(c, args)
        if (capped) {
          expect(third).toBe('rejected room-full 403')
        } else {
          expect(third).toBe('started')
          // Long enough for several of its hellos to be turned away. On the server, a newcomer is
          // also handed the room's earlier broadcast hellos (how a late joiner finds a waiting peer):
          // it may pair with one of the taken pair's, whose addressed replies are then dropped, and
          // shows `connecting` until its stall timeout (three times stallTimeout, 7.5 s, while it has
          // no round trip measured) sends it back to waiting, for good.
          await new Promise((resolve) => setTimeout(resolve, 10_000))
          expect(await state(c)).toBe('waiting')
        }
        await send(a, 'still a pair')
        await b.waitForFunction(() => (window as unknown as { log: string[] }).log.includes('message still a pair'))
        expect([...(await log(a)), ...(await log(b))].filter((line) => !/^(open|message)/.test(line))).toEqual([])
        if (!capped) {
          // One of the pair leaves: the waiting page takes the seat.
          await b.evaluate(() => (window as unknown as { peer: { close(): void } }).peer.close())
          const seated = await c
            .waitForFunction(() => (window as unknown as { peer: { state: string } }).peer.state === 'connected', null, {
              timeout: 20_000,
            })
            .then(
              () => true,
              () => false,
            )
          const trace = (p: Page) => p.evaluate(() => (window as unknown as { trace: string[] }).trace.join('\n'))
          expect(seated, `a:\n${await trace(a)}\nc:\n${await trace(c)}`).toBe(true)
        }
      })
    }
  }
})
