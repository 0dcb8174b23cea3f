// A remote that closes is reported as `remote-left`, once, with no recovery attempt — in real
// Chromium, where its channels close under us a moment before its `bye` arrives.
import { createServer } from 'node:http'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { createSignalingServer, listen, serveStatic } from '../../src/server/index'
import { describeBrowser, launchChromium } from './chromium'

describeBrowser('remote close in Chromium', () => {
  let browser: Browser
  let origin = ''
  let stop: () => Promise<void>
  beforeAll(async () => {
    browser = await launchChromium()
    const signaling = createSignalingServer()
    const files = serveStatic({ '/': 'test/browser/fixtures', '/dist/': 'dist' })
    const server = createServer((request, response) => signaling.handle(request, response) || files(request, response))
    server.on('upgrade', (request, socket, head) => signaling.upgrade(request, socket, head) || socket.destroy())
    origin = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`
    stop = async () => {
      await signaling.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
  afterAll(async () => {
    await browser?.close()
    await stop?.()
  })

  for (const transport of ['broadcast', 'sse', 'websocket'] as const) {
    test(`${transport}: close() on one side is remote-left on the other, and nothing is recovered`, async () => {
      const context = await browser.newContext()
      const a: Page = await context.newPage()
      const b: Page = await context.newPage()
      const room = `close-${transport}-${Date.now()}`
      for (const p of [a, b]) {
        await p.goto(`${origin}/adapters.html`)
        await p.evaluate((args) => (window as unknown as { startPeer(x: typeof args): Promise<string> }).startPeer(args), {
          url: '/signal',
          room,
          transport,
        })
      }
      for (const p of [a, b]) {
        await p.waitForFunction(() => (window as unknown as { peer: { state: string } }).peer.state === 'connected')
      }
      await b.evaluate(() => (window as unknown as { peer: { close(): void } }).peer.close())
      await a.waitForFunction(() => (window as unknown as { log: string[] }).log.includes('rebuild remote-left'))
      // Past the grace in which a trailing bye still counts: nothing else follows.
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const log = await a.evaluate(() => (window as unknown as { log: string[] }).log)
      expect(log.filter((line) => /^(close|reconnecting|error)/.test(line))).toEqual(['close remote-left'])
      await context.close()
    })
  }

  test('an RTCPeerConnection closed under its peer (by the app) is noticed there: connection-lost, rebuilt, open again', async () => {
    // Chromium fires no event on a connection closed by close(); only its data channels close.
    const context = await browser.newContext()
    const [a, b] = [await context.newPage(), await context.newPage()]
    const room = `closed-under-${Date.now()}`
    for (const [p, slowRecovery] of [
      [a, false],
      [b, true],
    ] as const) {
      await p.goto(`${origin}/adapters.html`)
      await p.evaluate((args) => (window as unknown as { startPeer(x: typeof args): Promise<string> }).startPeer(args), {
        room,
        transport: 'broadcast',
        slowRecovery,
      })
    }
    const connected = () => (window as unknown as { peer: { state: string } }).peer.state === 'connected'
    for (const p of [a, b]) await p.waitForFunction(connected)
    await a.evaluate(() => {
      const peer = (window as unknown as { peer: { connection: RTCPeerConnection } }).peer
      ;(window as unknown as { closedUnderIt: RTCPeerConnection }).closedUnderIt = peer.connection
      peer.connection.close()
    })
    // b's own recovery waits a minute: a is what brings the pair back.
    await a.waitForFunction(() => (window as unknown as { log: string[] }).log.filter((line) => line === 'open').length === 2)
    for (const p of [a, b]) await p.waitForFunction(connected)
    const log = await a.evaluate(() => (window as unknown as { log: string[] }).log)
    expect(log.filter((line) => /^(close|error)/.test(line))).toEqual(['close connection-lost'])
    expect(
      await a.evaluate(() => {
        const w = window as unknown as { peer: { connection: RTCPeerConnection }; closedUnderIt: RTCPeerConnection }
        return w.peer.connection !== w.closedUnderIt
      }),
    ).toBe(true)
    await context.close()
  })
})
