// The demo page served next to the reference signaling server, and one way to
// drive it from Playwright (Chromium) and from puppeteer (Firefox), so a
// suite can pair tabs of different browsers. Needs the built dist/.
import { createServer } from 'node:http'
import type { Socket } from 'node:net'
import type { Page as PlaywrightPage } from 'playwright-core'
import type { Page as PuppeteerPage } from 'puppeteer-core'
import { expect } from 'vitest'
import { createSignalingServer, listen, serveStatic } from '../../src/server/index'
import { parseRequestHead } from '../../src/server/request-head'

/** Generous: a connection takes well under a second here, a reconnect after a reload a few seconds at most. */
export const TIMEOUT = 20_000

/** How often a page is polled while waiting; not `raf`, which a background page may throttle. */
const POLL_MS = 50

export type Transport = 'broadcast' | 'sse' | 'websocket'

export interface DemoServer {
  /** `http://127.0.0.1:PORT/` */
  url: string
  /**
   * What reached the signaling routes for `room`: `GET`, `POST` and `UPGRADE`, one entry each
   * (a `GET` the front took on the bare socket too).
   */
  signalingSeen(room: string): string[]
  /**
   * Requests answered with an error status since the last call (a missing
   * favicon, a bundle not built, a refused publish), drained by each call:
   * Firefox does not report them on the page's console.
   */
  takeFailures(): string[]
  close(): Promise<void>
}

/**
 * The demo, the build and the signaling server on one loopback port, like `politely-server --static demo`:
 * event streams on the bare socket ({@link SignalingServer.takeEventStreams}), so pages' EventSources
 * meet that path.
 */
export async function startDemoServer(): Promise<DemoServer> {
  const signaling = createSignalingServer()
  const files = serveStatic({
    '/': new URL('../../demo/', import.meta.url).pathname,
    '/dist/': new URL('../../dist/', import.meta.url).pathname,
  })
  const seen: Array<{ method: string; path: string }> = []
  let failures: string[] = []
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0] as string
    seen.push({ method: request.method ?? '', path })
    response.on('finish', () => {
      if (response.statusCode >= 400) failures.push(`${request.method} ${path}: HTTP ${response.statusCode}`)
    })
    if (!signaling.handle(request, response)) files(request, response)
  })
  server.on('upgrade', (request, socket, head) => {
    seen.push({ method: 'UPGRADE', path: (request.url ?? '').split('?')[0] as string })
    if (!signaling.upgrade(request, socket, head)) socket.destroy()
  })
  signaling.takeEventStreams(server)
  // A request the front takes never reaches the handler above: seen here, by the front's own test of
  // a first read (a whole plain GET head), which is also what keeps it from being counted twice.
  server.on('connection', (socket: Socket) =>
    socket.once('data', (chunk: Buffer) => {
      const head = parseRequestHead(chunk)
      const path = head?.url.split('?')[0] ?? ''
      if (head && path.startsWith('/signal/') && !path.endsWith('/ice-servers')) seen.push({ method: 'GET', path })
    }),
  )
  const port = await listen(server, 0, '127.0.0.1')
  return {
    url: `http://127.0.0.1:${port}/`,
    signalingSeen: (room) =>
      seen.filter(({ path }) => path === `/signal/${encodeURIComponent(room)}`).map(({ method }) => method),
    takeFailures() {
      const taken = failures
      failures = []
      return taken
    },
    async close() {
      await signaling.close()
      // Browsers keep idle keep-alive sockets open; without this, close() waits for their timeout.
      server.closeAllConnections()
      await new Promise<void>((done) => server.close(() => done()))
    },
  }
}

/** The demo's URL for one room over one transport. */
export function demoUrl(server: DemoServer, room: string, transport: Transport): string {
  return `${server.url}?room=${encodeURIComponent(room)}&transport=${transport}`
}

let rooms = 0
/** A room no other test (or earlier run against a long-lived server) uses. */
export const uniqueRoom = (name: string) => `${name}-${process.pid}-${Date.now()}-${++rooms}`

/** One demo page, whichever browser shows it. */
export interface DemoTab {
  readonly label: string
  /** Uncaught exceptions, console errors and warnings, and requests that tried to leave the test server. */
  readonly problems: string[]
  /** Polls `predicate(arg)` in the page until it returns true (fails after {@link TIMEOUT}). */
  waitFor<A>(predicate: (arg: A) => boolean, arg: A): Promise<void>
  /** Evaluates `fn(arg)` in the page. */
  evaluate<A, R>(fn: (arg: A) => R | Promise<R>, arg: A): Promise<R>
  /** Types into the composer and sends, as a person would: by the button or by Enter. */
  compose(text: string, how: 'click' | 'enter'): Promise<void>
  /** Clicks an element as a person would (a real input event: it counts as a user gesture). */
  click(selector: string): Promise<void>
  reload(): Promise<void>
  close(): Promise<void>
}

/**
 * A function run in the page. Playwright and puppeteer each type the argument
 * through their own serialization helpers; the tab's signature already ties it
 * to its argument, so the drivers see it as taking `unknown`.
 */
type InPage<R> = (arg: unknown) => R | Promise<R>

/** A request is fine if it goes to the test server (HTTP or WebSocket) or never leaves the page. */
function offServer(url: string, origin: string): boolean {
  if (url.startsWith('data:') || url.startsWith('about:') || url.startsWith('blob:')) return false
  const host = new URL(origin).host
  return new URL(url).host !== host
}

/** A demo page in a Playwright page (Chromium). */
export async function openPlaywrightTab(page: PlaywrightPage, url: string, label: string): Promise<DemoTab> {
  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(`${label} uncaught: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning')
      problems.push(`${label} console.${message.type()}: ${message.text()}`)
  })
  page.on(
    'request',
    (request) => offServer(request.url(), url) && problems.push(`${label} request off the server: ${request.url()}`),
  )
  page.on(
    'websocket',
    (socket) => offServer(socket.url(), url) && problems.push(`${label} WebSocket off the server: ${socket.url()}`),
  )
  await page.goto(url)
  return {
    label,
    problems,
    async waitFor(predicate, arg) {
      await page.waitForFunction(predicate as InPage<boolean>, arg as unknown, { timeout: TIMEOUT, polling: POLL_MS })
    },
    evaluate: <R>(fn: (arg: never) => R | Promise<R>, arg: unknown) => page.evaluate(fn as InPage<R>, arg),
    async compose(text, how) {
      await page.fill('#text', text)
      if (how === 'click') await page.click('#send')
      else await page.press('#text', 'Enter')
    },
    async click(selector) {
      await page.click(selector)
    },
    async reload() {
      await page.reload()
    },
    close: () => page.close(),
  }
}

/** A demo page in a puppeteer page (Firefox over WebDriver BiDi). */
export async function openPuppeteerTab(page: PuppeteerPage, url: string, label: string): Promise<DemoTab> {
  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(`${label} uncaught: ${(error as Error).message}`))
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warn')
      problems.push(`${label} console.${message.type()}: ${message.text()}`)
  })
  page.on(
    'request',
    (request) => offServer(request.url(), url) && problems.push(`${label} request off the server: ${request.url()}`),
  )
  await page.goto(url)
  return {
    label,
    problems,
    async waitFor(predicate, arg) {
      await page.waitForFunction(predicate as InPage<boolean>, { timeout: TIMEOUT, polling: POLL_MS }, arg as unknown)
    },
    evaluate: <R>(fn: (arg: never) => R | Promise<R>, arg: unknown) => page.evaluate(fn as InPage<R>, arg) as Promise<R>,
    async compose(text, how) {
      await page.locator('#text').fill(text)
      if (how === 'click') await page.locator('#send').click()
      else {
        await page.focus('#text')
        await page.keyboard.press('Enter')
      }
    },
    async click(selector) {
      await page.locator(selector).click()
    },
    async reload() {
      await page.reload()
    },
    close: () => page.close(),
  }
}

/** The page's own peer id, as the demo shows it. */
export const selfId = (tab: DemoTab) => tab.evaluate(() => document.getElementById('self')?.textContent ?? '', null)

/** Waits until the page shows `connected` to exactly this remote (a stale `connected` does not count). */
async function connectedTo(tab: DemoTab, remoteId: string): Promise<void> {
  await tab.waitFor(
    (id) =>
      document.getElementById('state')?.textContent === 'connected' && document.getElementById('remote')?.textContent === id,
    remoteId,
  )
}

/** Both pages show `connected`, each to the other's current id. */
export async function connected(a: DemoTab, b: DemoTab): Promise<void> {
  const [idA, idB] = await Promise.all([selfId(a), selfId(b)])
  await Promise.all([connectedTo(a, idB), connectedTo(b, idA)])
}

async function hasMessage(tab: DemoTab, direction: 'in' | 'out', text: string): Promise<void> {
  await tab.waitFor(
    ([selector, wanted]) => Array.from(document.querySelectorAll(selector), (row) => row.textContent).includes(wanted),
    [`#log .msg.${direction}`, text] as const,
  )
}

/** Types into one page's UI and waits for the text in the other page's log. */
export async function chat(from: DemoTab, to: DemoTab, text: string, how: 'click' | 'enter' = 'click'): Promise<void> {
  await from.compose(text, how)
  await hasMessage(from, 'out', text)
  await hasMessage(to, 'in', text)
  expect(await from.evaluate(() => (document.getElementById('text') as HTMLInputElement).value, null)).toBe('')
}

/** A message each way, one sent by the button, the other by Enter. */
export async function chatBothWays(a: DemoTab, b: DemoTab, when: string): Promise<void> {
  await chat(a, b, `${when}: ${a.label} to ${b.label}`, 'click')
  await chat(b, a, `${when}: ${b.label} to ${a.label}`, 'enter')
}

/** Reloads one page: it comes back as a new peer (a new id), and both pages connect again. */
export async function reloadAndReconnect(tab: DemoTab, other: DemoTab): Promise<void> {
  const before = await selfId(tab)
  await tab.reload()
  expect(await selfId(tab)).not.toBe(before)
  await connected(tab, other)
}

/** What the page shows in red on its timeline (the demo's `error` rows). */
const badRows = (tab: DemoTab) =>
  tab.evaluate(() => Array.from(document.querySelectorAll('#timeline .bad'), (row) => row.textContent ?? ''), null)

/**
 * Everything that went wrong besides the assertions, for `afterEach`: red
 * timeline rows, uncaught exceptions, console errors and warnings, requests
 * off the server, and error answers from the server. Empty when all is well.
 */
export async function takeProblems(tabs: readonly DemoTab[], server: DemoServer): Promise<string[]> {
  const rows = await Promise.all(
    tabs.map((tab) =>
      badRows(tab).then(
        (texts) => texts.map((text) => `${tab.label} timeline: ${text}`),
        (error: Error) => [`${tab.label} timeline unreadable: ${error.message}`],
      ),
    ),
  )
  return [...rows.flat(), ...tabs.flatMap((tab) => tab.problems), ...server.takeFailures()]
}

/** The addresses of the local ICE candidates of the page's current connection. */
export const localCandidateAddresses = (tab: DemoTab) =>
  tab.evaluate(async () => {
    const { connection } = (window as unknown as { demoPeer: { connection?: RTCPeerConnection } }).demoPeer
    const stats = connection ? Array.from((await connection.getStats()).values()) : []
    return stats.filter((entry) => entry.type === 'local-candidate').map((entry) => String(entry.address ?? entry.ip))
  }, null)
