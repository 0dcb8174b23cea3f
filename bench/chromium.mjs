// Headless Chromium for the browser benchmarks: Debian's, driven by playwright-core, with
// nothing that talks to the internet (the same flags as test/browser/chromium.ts).
import { chromium } from 'playwright-core'

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  // Raw host candidates: mDNS names would need multicast.
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // No DNS at all: the pages are on 127.0.0.1.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
]

export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS })
}

/** Requests that tried to leave 127.0.0.1, and page errors (text → count): a bench prints them at the end, never fatal. */
export const offMachine = []
export const pageErrors = new Map()

/** Records what `page` requests off 127.0.0.1 and the errors it shows, under the contender's `label`. */
export function watch(page, label) {
  const local = (url) => /^(data|about|blob):/.test(url) || new URL(url).hostname === '127.0.0.1'
  page.on('request', (request) => local(request.url()) || offMachine.push(request.url()))
  page.on('websocket', (socket) => local(socket.url()) || offMachine.push(socket.url()))
  const note = (text) => {
    const key = `${label}: ${text.slice(0, 160)}`
    pageErrors.set(key, (pageErrors.get(key) ?? 0) + 1)
  }
  page.on('pageerror', (error) => note(`uncaught ${error.message}`))
  page.on('console', (message) => message.type() === 'error' && note(`console.error ${message.text()}`))
}
