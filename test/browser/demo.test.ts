// The demo page in real Chromium: two tabs chat over WebRTC, signaling over a
// BroadcastChannel, and come back after reloads. Needs the built dist/ (npm test builds first).
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { startStaticServer } from '../../src/server/static'
import { describeBrowser, launchChromium } from './chromium'

/** Generous: a connection takes ~200 ms here, a reconnect after a reload a few seconds at most. */
const TIMEOUT = 20_000

interface StaticServer {
  url: string
  close(): Promise<void>
}

// A plain-JS script shared with `npm run demo`; loaded by URL so the type
// checker needs no declaration file for it.
const demoRoot = new URL('../../demo/', import.meta.url).pathname

let rooms = 0
const uniqueRoom = () => `browser-${process.pid}-${Date.now()}-${++rooms}`

describeBrowser('demo page in Chromium', () => {
  let server: StaticServer
  let browser: Browser
  // One context for every tab: BroadcastChannel only reaches pages of the same context.
  let context: BrowserContext
  const pages: Page[] = []
  /** Uncaught exceptions, console errors and warnings, requests that tried to leave the server. */
  let problems: string[] = []

  beforeAll(async () => {
    server = await startStaticServer({ '/': demoRoot, '/dist/': 'dist' })
    browser = await launchChromium()
    context = await browser.newContext()
    await context.route('**/*', (route) => {
      const url = route.request().url()
      if (url.startsWith(server.url)) return route.continue()
      problems.push(`request off the test server: ${url}`)
      return route.abort()
    })
  })

  afterEach(async () => {
    for (const page of pages) {
      if (!page.isClosed()) expect(await page.locator('#timeline .bad').allTextContents()).toEqual([])
    }
    const seen = problems
    problems = []
    await Promise.all(pages.splice(0).map((page) => page.close()))
    expect(seen).toEqual([])
  })

  afterAll(async () => {
    await context?.close()
    await browser?.close()
    await server?.close()
  })

  async function openDemo(room: string): Promise<Page> {
    const page = await context.newPage()
    pages.push(page)
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`))
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning')
        problems.push(`console.${message.type()}: ${message.text()}`)
    })
    await page.goto(`${server.url}?room=${encodeURIComponent(room)}`)
    return page
  }

  const selfId = async (page: Page) => (await page.locator('#self').textContent()) ?? ''

  /** Waits until the page shows `connected` to exactly this remote (a stale `connected` does not count). */
  async function connectedTo(page: Page, remoteId: string): Promise<void> {
    await page.waitForFunction(
      (id) =>
        document.getElementById('state')?.textContent === 'connected' && document.getElementById('remote')?.textContent === id,
      remoteId,
      { timeout: TIMEOUT },
    )
  }

  async function connected(a: Page, b: Page): Promise<void> {
    await Promise.all([connectedTo(a, await selfId(b)), connectedTo(b, await selfId(a))])
  }

  async function hasMessage(page: Page, direction: 'in' | 'out', text: string): Promise<void> {
    await page.waitForFunction(
      ([selector, wanted]) => Array.from(document.querySelectorAll(selector), (row) => row.textContent).includes(wanted),
      [`#log .msg.${direction}`, text] as const,
      { timeout: TIMEOUT },
    )
  }

  /** Types into one tab's UI and waits for the text in the other tab's log. */
  async function chat(from: Page, to: Page, text: string, how: 'click' | 'enter' = 'click'): Promise<void> {
    // A person types in the tab in front; Playwright's actionability checks also stall for ~2 s in a tab that is not.
    await from.bringToFront()
    await from.fill('#text', text)
    if (how === 'click') await from.click('#send')
    else await from.press('#text', 'Enter')
    await hasMessage(from, 'out', text)
    await hasMessage(to, 'in', text)
    expect(await from.inputValue('#text')).toBe('')
  }

  test('two tabs connect and chat both ways through the UI', async () => {
    const room = uniqueRoom()
    const a = await openDemo(room)
    const b = await openDemo(room)
    await connected(a, b)
    expect(await a.evaluate(() => (window as unknown as { demoPeer: { remoteId?: string } }).demoPeer.remoteId)).toBe(
      await selfId(b),
    )
    await chat(a, b, 'hello from A')
    await chat(b, a, 'hello from B, by Enter', 'enter')
    await chat(a, b, '<b>not markup</b>')
    expect(await b.locator('#log .msg.in b').count()).toBe(0)
    const timeline = (await a.locator('#timeline li span').allTextContents()).join('\n')
    for (const event of ['hello out', 'paired with', 'candidates:', 'open']) expect(timeline).toContain(event)
    expect(timeline).toMatch(/^(offer|answer) (in|out)$/m)
  })

  test('reloading one tab, then the other, reconnects and chat flows both ways again', async () => {
    const room = uniqueRoom()
    const a = await openDemo(room)
    const b = await openDemo(room)
    await connected(a, b)
    await chat(a, b, 'before reloads: A to B')
    await chat(b, a, 'before reloads: B to A')

    const oldA = await selfId(a)
    await a.reload()
    // A reloaded page is a new peer with a new id.
    expect(await selfId(a)).not.toBe(oldA)
    await connected(a, b)
    await chat(a, b, 'after reloading A: A to B')
    await chat(b, a, 'after reloading A: B to A')

    const oldB = await selfId(b)
    await b.reload()
    expect(await selfId(b)).not.toBe(oldB)
    await connected(a, b)
    await chat(a, b, 'after reloading B: A to B')
    await chat(b, a, 'after reloading B: B to A')
  })

  test('the UMD build works from a plain <script> tag', async () => {
    const page = await openDemo(uniqueRoom())
    const loaded = await page.evaluate(() => {
      const api = (window as unknown as { Politely?: Record<string, unknown> }).Politely
      const script = document.querySelector('script[src="/dist/politely.umd.min.js"]')
      const PolitelyError = api?.PolitelyError as (new (code: string, message: string) => Error & { code: string }) | undefined
      const error = PolitelyError ? new PolitelyError('closed', 'test') : undefined
      return {
        classicScript: script !== null && !script.hasAttribute('type'),
        PerfectNegotiationPeer: typeof api?.PerfectNegotiationPeer,
        BroadcastChannelSignaler: typeof api?.BroadcastChannelSignaler,
        PolitelyError: typeof PolitelyError,
        errorIsError: error instanceof Error,
        errorCode: error?.code,
      }
    })
    expect(loaded).toEqual({
      classicScript: true,
      PerfectNegotiationPeer: 'function',
      BroadcastChannelSignaler: 'function',
      PolitelyError: 'function',
      errorIsError: true,
      errorCode: 'closed',
    })
    // The demo is built on that global: a peer exists and is looking for a remote.
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'waiting', null, { timeout: TIMEOUT })
  })
})
