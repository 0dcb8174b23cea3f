// The demo over the reference server in real Chromium: two SEPARATE browser
// contexts (BroadcastChannel cannot cross them, so only the server can carry
// their signaling) chat over WebRTC and come back after each side reloads.
import type { Browser, BrowserContext } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { describeBrowser, launchChromium } from './chromium'
import {
  chatBothWays,
  connected,
  type DemoServer,
  type DemoTab,
  demoUrl,
  openPlaywrightTab,
  reloadAndReconnect,
  startDemoServer,
  type Transport,
  takeProblems,
  uniqueRoom,
} from './demo-harness'

describeBrowser('demo over the reference server, two Chromium contexts', () => {
  let server: DemoServer
  let browser: Browser
  const contexts: BrowserContext[] = []
  const tabs: DemoTab[] = []

  beforeAll(async () => {
    server = await startDemoServer()
    browser = await launchChromium()
  })

  afterEach(async () => {
    const problems = await takeProblems(tabs.splice(0), server)
    await Promise.all(contexts.splice(0).map((context) => context.close()))
    expect(problems).toEqual([])
  })

  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })

  /** A page in a context of its own: no BroadcastChannel, no storage, nothing shared with the other page. */
  async function open(room: string, transport: Transport, label: string): Promise<DemoTab> {
    const context = await browser.newContext()
    contexts.push(context)
    const tab = await openPlaywrightTab(await context.newPage(), demoUrl(server, room, transport), label)
    tabs.push(tab)
    return tab
  }

  const shown = (tab: DemoTab) =>
    tab.evaluate(
      () => ({
        transport: document.getElementById('transport')?.textContent,
        others: Array.from(document.querySelectorAll<HTMLAnchorElement>('#others a'), (link) => {
          const url = new URL(link.href)
          return [link.dataset.transport, url.searchParams.get('transport'), url.searchParams.get('room')]
        }),
      }),
      null,
    )

  for (const transport of ['sse', 'websocket'] as const) {
    test(`${transport}: connect, chat both ways, reload A, chat, reload B, chat`, { timeout: 120_000 }, async () => {
      const room = uniqueRoom(`server-demo-${transport}`)
      const a = await open(room, transport, 'A')
      const b = await open(room, transport, 'B')
      const others = (['broadcast', 'sse', 'websocket'] as const).filter((name) => name !== transport)
      expect(await shown(a)).toEqual({ transport, others: others.map((name) => [name, name, room]) })

      await connected(a, b)
      await chatBothWays(a, b, 'first')

      await reloadAndReconnect(a, b)
      await chatBothWays(a, b, 'after reloading A')

      await reloadAndReconnect(b, a)
      await chatBothWays(a, b, 'after reloading B')

      // The server carried it, over the transport the page says: one connection per page instance (2 + 2 reloads).
      const seen = server.signalingSeen(room)
      if (transport === 'websocket') {
        expect(seen.filter((method) => method === 'UPGRADE')).toHaveLength(4)
        expect(seen.filter((method) => method !== 'UPGRADE')).toEqual([])
      } else {
        expect(seen.filter((method) => method === 'GET')).toHaveLength(4)
        expect(seen).toContain('POST')
        expect(seen).not.toContain('UPGRADE')
      }
    })
  }

  test('an sse page and a websocket page of one room connect: one room model behind both', { timeout: 60_000 }, async () => {
    const room = uniqueRoom('server-demo-mixed')
    const a = await open(room, 'sse', 'A')
    const b = await open(room, 'websocket', 'B')
    await connected(a, b)
    await chatBothWays(a, b, 'sse and websocket')
  })
})
