// TURN in real Chromium: two pages in separate browser contexts (nothing shared but the
// server), relay only, with the credentials the politely server minted for each of them and a
// real coturn on 127.0.0.1. Needs the built dist/ (npm test builds first).
import { createServer, type Server } from 'node:http'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { createSignalingServer, listen, type ServerOptions, serveStatic } from '../../src/server/index'
import { allocate, type Coturn, coturnServer, startCoturn } from '../support/coturn'
import { describeRequiring } from '../support/requires'
import { until } from '../support/until'
import { describeBrowser, launchChromium } from './chromium'

type Transport = 'sse' | 'websocket'

declare global {
  interface Window {
    startPeer(args: { url: string; room: string; transport: Transport; id?: string }): Promise<void>
    path(): Promise<{ local?: string; remote?: string; username?: string }>
    log: string[]
    peer: { state: string; send(data: string): void; connection: RTCPeerConnection }
  }
}

/** The signaling server (with `options`) and the test pages on one port. */
async function start(options: ServerOptions) {
  const signaling = createSignalingServer(options)
  const files = serveStatic({ '/': 'test/browser/fixtures', '/dist/': 'dist' })
  const server: Server = createServer((request, response) => {
    if (!signaling.handle(request, response)) files(request, response)
  })
  server.on('upgrade', (request, socket, head) => {
    if (!signaling.upgrade(request, socket, head)) socket.destroy()
  })
  const port = await listen(server, 0, '127.0.0.1')
  return {
    origin: `http://127.0.0.1:${port}`,
    async close() {
      await signaling.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

let rooms = 0
const uniqueRoom = () => `browser-turn-${process.pid}-${rooms++}`

describeRequiring(coturnServer, 'TURN in Chromium', () => {
  describeBrowser('two browser contexts, relay only, through coturn', () => {
    let browser: Browser
    let coturn: Coturn
    let site: Awaited<ReturnType<typeof start>>
    const pages: Page[] = []
    const problems: string[] = []

    beforeAll(async () => {
      coturn = await startCoturn()
      site = await start({ turn: { urls: coturn.url, secret: coturn.secret } })
      browser = await launchChromium()
    })
    afterAll(async () => {
      await browser?.close()
      await site?.close()
      await coturn?.stop()
    })

    /** A page of `origin` in a browser context of its own. */
    async function page(origin: string): Promise<Page> {
      const created = await (await browser.newContext()).newPage()
      created.on('pageerror', (error) => problems.push(error.message))
      pages.push(created)
      await created.goto(`${origin}/turn.html`)
      return created
    }
    const opened = (p: Page) => p.waitForFunction(() => window.peer.state === 'connected')
    const send = (p: Page, text: string) => p.evaluate((t) => window.peer.send(t), text)
    const received = (p: Page, text: string) => p.waitForFunction((t) => window.log.includes(`message ${t}`), text)
    const errors = async (...ps: Page[]) =>
      (await Promise.all(ps.map((p) => p.evaluate(() => window.log)))).flat().filter((line) => line.startsWith('error'))

    for (const transport of ['sse', 'websocket'] as const)
      test(`${transport}: the pages connect relay only with the minted credentials; the selected pair is relay on both sides; data both ways`, async () => {
        const room = uniqueRoom()
        const [a, b] = [await page(site.origin), await page(site.origin)]
        await Promise.all(
          [a, b].map((p, i) => p.evaluate((args) => window.startPeer(args), { url: '/signal', room, transport, id: `p${i}` })),
        )
        await Promise.all([opened(a), opened(b)])
        await send(a, 'through coturn')
        await received(b, 'through coturn')
        await send(b, 'and back')
        await received(a, 'and back')
        for (const [p, id] of [
          [a, 'p0'],
          [b, 'p1'],
        ] as const) {
          const { local, remote, username } = await p.evaluate(() => window.path())
          expect({ local, remote }).toEqual({ local: 'relay', remote: 'relay' })
          expect(username).toMatch(new RegExp(`^\\d+:${id}$`))
        }
        expect(await errors(a, b)).toEqual([])
        expect(problems).toEqual([])
      })

    test('websocket: the credentials expire (coturn refuses them); the other page reloads; the rebuild fetches fresh ones and relays', async () => {
      const short = await start({ turn: { urls: coturn.url, secret: coturn.secret, ttl: 3 } })
      try {
        const room = uniqueRoom()
        const [a, b] = [await page(short.origin), await page(short.origin)]
        const join = (p: Page) =>
          p.evaluate((args) => window.startPeer(args), { url: '/signal', room, transport: 'websocket' as const })
        await Promise.all([join(a), join(b)])
        await Promise.all([opened(a), opened(b)])
        const first = await a.evaluate(() => window.peer.connection.getConfiguration().iceServers?.[0])
        await until(
          async () => (await allocate(coturn.port, first?.username, first?.credential as string)) === 401,
          'coturn refusing',
          10_000,
        )
        await b.reload()
        await join(b)
        await a.waitForFunction(() => window.log.some((line) => line.startsWith('rebuild')))
        await Promise.all([opened(a), opened(b)])
        await send(b, 'after the reload')
        await received(a, 'after the reload')
        const fresh = await a.evaluate(() => window.path())
        expect({ local: fresh.local, remote: fresh.remote }).toEqual({ local: 'relay', remote: 'relay' })
        expect(Number(fresh.username?.split(':')[0])).toBeGreaterThan(Number(first?.username?.split(':')[0]))
        expect(await errors(a, b)).toEqual([])
      } finally {
        await short.close()
      }
    })
  })
})
