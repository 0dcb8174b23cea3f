// Chromium and Firefox ESR chat over WebRTC through the demo and the reference
// server, and come back after each side reloads. Different stacks on each side:
// Firefox's SDP, its candidates (end-of-candidates as an empty string) and its
// ICE against Chromium's.
import type { Browser as ChromiumBrowser } from 'playwright-core'
import type { Browser as FirefoxBrowser } from 'puppeteer-core'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { describeBrowser, launchChromium } from './chromium'
import {
  chatBothWays,
  connected,
  type DemoServer,
  type DemoTab,
  demoUrl,
  localCandidateAddresses,
  openPlaywrightTab,
  openPuppeteerTab,
  reloadAndReconnect,
  startDemoServer,
  takeProblems,
  uniqueRoom,
} from './demo-harness'
import { describeFirefox, launchFirefox } from './firefox'

describeBrowser('Chromium and Firefox', () => {
  describeFirefox('Chromium ↔ Firefox ESR through the demo and the reference server', () => {
    let server: DemoServer
    let chromium: ChromiumBrowser
    let firefox: FirefoxBrowser
    const tabs: DemoTab[] = []

    beforeAll(async () => {
      server = await startDemoServer()
      ;[chromium, firefox] = await Promise.all([launchChromium(), launchFirefox()])
    })

    afterEach(async () => {
      const problems = await takeProblems(tabs, server)
      await Promise.all(tabs.splice(0).map((tab) => tab.close()))
      expect(problems).toEqual([])
    })

    afterAll(async () => {
      await Promise.all([chromium?.close(), firefox?.close()])
      await server?.close()
    })

    for (const transport of ['websocket', 'sse'] as const) {
      test(`${transport}: connect, chat both ways, reload Chromium, chat, reload Firefox, chat`, {
        timeout: 120_000,
      }, async () => {
        const room = uniqueRoom(`cross-browser-${transport}`)
        const url = demoUrl(server, room, transport)
        const c = await openPlaywrightTab(await chromium.newPage(), url, 'Chromium')
        tabs.push(c)
        const f = await openPuppeteerTab(await firefox.newPage(), url, 'Firefox')
        tabs.push(f)
        // The Firefox side really is Firefox (a misconfigured launcher could hand us another browser).
        expect(await f.evaluate(() => navigator.userAgent, null)).toMatch(/Firefox\//)

        await connected(c, f)
        await chatBothWays(c, f, 'first')
        // Raw host addresses on both sides: an mDNS name (`<uuid>.local`) would mean a launcher lost its setting.
        for (const tab of [c, f]) {
          const addresses = await localCandidateAddresses(tab)
          expect(addresses.length, `${tab.label} local candidates`).toBeGreaterThan(0)
          expect(addresses.filter((address) => address.endsWith('.local'))).toEqual([])
        }

        await reloadAndReconnect(c, f)
        await chatBothWays(c, f, 'after reloading Chromium')

        await reloadAndReconnect(f, c)
        await chatBothWays(c, f, 'after reloading Firefox')
      })
    }
  })
})
