// Real Chromium for the browser suites: Debian's package driven by playwright-core
// (never `playwright install`, which would download a browser).
import { existsSync } from 'node:fs'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll } from 'vitest'
import { startStaticServer } from '../../src/server/static'
import { describeRequiring } from '../support/requires'

const INSTALL = 'sudo apt-get install chromium'

/** The Chromium binary: `CHROMIUM_PATH` if set, else Debian's or Ubuntu's. Undefined when none exists. */
export const chromiumPath: string | undefined = process.env.CHROMIUM_PATH
  ? process.env.CHROMIUM_PATH
  : ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path))

/** Whether {@link chromiumPath} points at a file that exists. */
export const hasChromium: boolean = chromiumPath !== undefined && existsSync(chromiumPath)

/**
 * Launches headless Chromium with nothing that talks to the internet. `executable`: a launcher
 * to run in its place, which starts {@link chromiumPath} itself (e.g. in a cgroup of its own).
 */
export async function launchChromium(executable?: string): Promise<Browser> {
  if (!hasChromium) throw new Error(`Chromium not found (set CHROMIUM_PATH or: ${INSTALL})`)
  return chromium.launch({
    executablePath: executable ?? chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      // Raw host candidates: mDNS names would need multicast and resolve nowhere useful here.
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      // No first-run pings, updaters or sync: a test must not reach the internet.
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // No DNS at all: tests use IP literals only, and even with the flags above Chromium looks up
      // accounts.google.com, update.googleapis.com, content-autofill.googleapis.com, … at start.
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  })
}

/** `describe` for suites that need Chromium: skipped loudly without it, a failure in CI. */
export function describeBrowser(name: string, fn: () => void): void {
  describeRequiring(
    {
      name: 'Chromium',
      present: hasChromium,
      install: INSTALL,
      override: 'CHROMIUM_PATH',
      looked: chromiumPath ?? '/usr/bin/chromium, /usr/bin/chromium-browser',
    },
    name,
    fn,
  )
}

/**
 * For a `describeBrowser` block: two tabs of one browser context (BroadcastChannel reaches
 * only pages of the same context) on `fixture` from test/browser/fixtures, with /dist/ served
 * next to it; console errors and page errors collected in `problems`. Closed after the block.
 */
export function useTwoTabs(fixture: string): { pages: () => [Page, Page]; problems: string[] } {
  let browser: Browser | undefined
  let server: { url: string; close(): Promise<void> } | undefined
  let pages: [Page, Page] | undefined
  const problems: string[] = []
  beforeAll(async () => {
    server = await startStaticServer({ '/': 'test/browser/fixtures', '/dist/': 'dist' })
    browser = await launchChromium()
    const context = await browser.newContext()
    pages = [await context.newPage(), await context.newPage()]
    for (const page of pages) {
      page.on('console', (message) => message.type() === 'error' && problems.push(message.text()))
      page.on('pageerror', (error) => problems.push(error.message))
      await page.goto(`${server.url}${fixture}`)
    }
  })
  afterAll(async () => {
    await browser?.close()
    await server?.close()
  })
  return { pages: () => pages as [Page, Page], problems }
}
