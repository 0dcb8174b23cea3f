// Rooms in real Chromium, through the demo's room mode (?mode=room): 6 pages of one context over
// BroadcastChannel, and 4 pages in separate contexts over the reference server (SSE and
// WebSocket). Every page links to every other, every link carries a message (the demo's chat,
// sent to all), and after one page reloads the mesh is whole again, with only that page's
// links rebuilt.
import type { Browser, BrowserContext } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { describeBrowser, launchChromium } from './chromium'
import {
  type DemoServer,
  type DemoTab,
  demoUrl,
  openPlaywrightTab,
  selfId,
  startDemoServer,
  type Transport,
  takeProblems,
  uniqueRoom,
} from './demo-harness'

describeBrowser('rooms in Chromium (the demo in room mode)', () => {
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

  async function open(context: BrowserContext, room: string, transport: Transport, label: string): Promise<DemoTab> {
    const tab = await openPlaywrightTab(await context.newPage(), `${demoUrl(server, room, transport)}&mode=room`, label)
    tabs.push(tab)
    return tab
  }

  /** Every page linked to every other page's current id, and to no one else. */
  async function fullMesh(pages: DemoTab[]): Promise<void> {
    const ids = await Promise.all(pages.map(selfId))
    await Promise.all(
      pages.map((tab, i) =>
        tab.waitFor(
          (others: string[]) => {
            const peers = (window as unknown as { demoRoom: { peers: Array<{ id: string; state: string }> } }).demoRoom.peers
            const open = peers.filter((peer) => peer.state === 'connected').map((peer) => peer.id)
            return open.length === others.length && others.every((id) => open.includes(id))
          },
          ids.filter((_, j) => j !== i),
        ),
      ),
    )
    // The demo's chat sends to everyone: each page hears each other page once.
    const tag = Math.random().toString(36).slice(2, 8)
    for (const [i, tab] of pages.entries()) await tab.compose(`${tag} from ${i}`, 'enter')
    await Promise.all(
      pages.map((tab, i) =>
        tab.waitFor(
          ({ texts }: { texts: string[] }) => {
            const got = Array.from(document.querySelectorAll('#log .in'), (row) => row.textContent ?? '')
            return texts.every((text) => got.some((line) => line.endsWith(text)))
          },
          { texts: pages.map((_, j) => `${tag} from ${j}`).filter((_, j) => j !== i) },
        ),
      ),
    )
  }

  /** The rebuilds each page reported (`member: reason`), read from its timeline. */
  const rebuilds = (tab: DemoTab) =>
    tab.evaluate(
      () =>
        Array.from(document.querySelectorAll('#timeline li span'), (row) => row.textContent ?? '').filter((t) =>
          t.includes('rebuild'),
        ),
      null,
    )

  async function reloadOne(pages: DemoTab[], index: number): Promise<void> {
    const reloading = pages[index] as DemoTab
    const oldId = await selfId(reloading)
    const others = pages.filter((_, i) => i !== index)
    const before = await Promise.all(others.map(rebuilds))
    await reloading.reload()
    await fullMesh(pages)
    // The reloaded page is a new member (a new id); every other link stayed as it was.
    expect(await selfId(reloading)).not.toBe(oldId)
    const after = await Promise.all(others.map(rebuilds))
    for (const [i, rows] of after.entries()) expect(rows.slice(before[i]?.length)).toEqual([])
    for (const tab of others)
      await tab.waitFor(
        (id: string) =>
          !(window as unknown as { demoRoom: { peers: Array<{ id: string }> } }).demoRoom.peers.some((p) => p.id === id),
        oldId,
      )
    // It left saying bye (its page went away: the bye went, its connections were left to the
    // browser), not by going silent.
    for (const tab of others) {
      const leaves = await tab.evaluate(
        () =>
          Array.from(document.querySelectorAll('#timeline li span'), (row) => row.textContent ?? '').filter((t) =>
            / left: /.test(t),
          ),
        null,
      )
      expect(leaves).toEqual([`${oldId} left: left`])
    }
  }

  /** `n` pages of one new context in a new room over BroadcastChannel, once they form the full mesh. */
  async function meshInOneContext(n: number, name: string): Promise<DemoTab[]> {
    const context = await browser.newContext()
    contexts.push(context)
    const room = uniqueRoom(name)
    const pages: DemoTab[] = []
    for (let i = 0; i < n; i++) pages.push(await open(context, room, 'broadcast', `P${i}`))
    await fullMesh(pages)
    return pages
  }

  test('6 pages of one context over BroadcastChannel: full mesh; one reloads; full mesh again', {
    timeout: 180_000,
  }, async () => {
    const pages = await meshInOneContext(6, 'rooms-broadcast')
    await reloadOne(pages, 2)
  })

  test('pagehide: a page that goes says bye and leaves its connections to the browser; one kept for back/forward (persisted) closes them', {
    timeout: 60_000,
  }, async () => {
    const [first, second, third] = (await meshInOneContext(3, 'rooms-pagehide')) as [DemoTab, DemoTab, DemoTab]
    /**
     * A pagehide as the browser fires it (persisted or not) on `tab`: its connections' signaling
     * states after it, and whether it went through `close()` (what a subclass such as ReliableRoom extends).
     */
    const hide = (tab: DemoTab, persisted: boolean) =>
      tab.evaluate((persisted: boolean) => {
        const room = (
          window as unknown as {
            demoRoom: { peers: Array<{ id: string }>; connection(id: string): RTCPeerConnection; close(): void }
          }
        ).demoRoom
        const connections = room.peers.map(({ id }) => room.connection(id))
        let closed = false
        const close = room.close
        room.close = function () {
          closed = true
          close.call(this)
        }
        window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted }))
        return { states: connections.map((pc) => pc.signalingState), closed }
      }, persisted)
    const leftSayingBye = (tab: DemoTab, id: string) =>
      tab.waitFor(
        (id: string) =>
          Array.from(document.querySelectorAll('#timeline li span'), (row) => row.textContent).includes(`${id} left: left`),
        id,
      )
    const [firstId, secondId] = await Promise.all([selfId(first), selfId(second)])
    expect(await hide(first, false)).toEqual({ states: ['stable', 'stable'], closed: false })
    await Promise.all([leftSayingBye(second, firstId), leftSayingBye(third, firstId)])
    expect(await hide(second, true)).toEqual({ states: ['closed'], closed: true })
    await leftSayingBye(third, secondId)
  })

  for (const transport of ['sse', 'websocket'] as const) {
    test(`${transport}: 4 pages in separate contexts over the server: full mesh; one reloads; full mesh again`, {
      timeout: 180_000,
    }, async () => {
      const room = uniqueRoom(`rooms-${transport}`)
      const pages: DemoTab[] = []
      for (let i = 0; i < 4; i++) {
        const context = await browser.newContext()
        contexts.push(context)
        pages.push(await open(context, room, transport, `P${i}`))
      }
      await fullMesh(pages)
      await reloadOne(pages, 1)
    })
  }
})
