// The demo's video call between Chromium and Firefox ESR through the reference server, each with
// its browser's fake camera and microphone: video both ways (each receiver decodes the other's
// frames: VP8 or H.264 as the two agree, Firefox's SDP and RTP against Chromium's), then after
// each side reloads once.
import type { Browser as ChromiumBrowser } from 'playwright-core'
import type { Browser as FirefoxBrowser } from 'puppeteer-core'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { callReady, callUrl, flowing, record, seen, shownVideo } from './call-harness'
import { describeBrowser, launchChromium } from './chromium'
import {
  connected,
  type DemoServer,
  type DemoTab,
  openPlaywrightTab,
  openPuppeteerTab,
  selfId,
  startDemoServer,
  takeProblems,
  uniqueRoom,
} from './demo-harness'
import { describeFirefox, launchFirefox } from './firefox'

/** Each page decodes the other's video, and hears its audio. */
async function bothWays(c: DemoTab, f: DemoTab): Promise<void> {
  await Promise.all([c, f].flatMap((tab) => [flowing(tab, 'video'), flowing(tab, 'audio')]))
}

describeBrowser('Chromium and Firefox', () => {
  describeFirefox('a video call between Chromium and Firefox ESR (the demo in call mode, the reference server)', () => {
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

    test('websocket: video and audio both ways; Chromium reloads, both ways again; Firefox reloads, both ways again', {
      timeout: 120_000,
    }, async () => {
      const url = callUrl(server, uniqueRoom('cross-browser-media'), 'websocket')
      const c = await openPlaywrightTab(await chromium.newPage(), url, 'Chromium')
      tabs.push(c)
      const f = await openPuppeteerTab(await firefox.newPage(), url, 'Firefox')
      tabs.push(f)
      expect(await f.evaluate(() => navigator.userAgent, null)).toMatch(/Firefox\//)
      await Promise.all([callReady(c), callReady(f)])
      await connected(c, f)
      await bothWays(c, f)

      for (const [reloading, other] of [
        [c, f],
        [f, c],
      ] as const) {
        await record(other)
        const old = await shownVideo(other)
        await reloading.reload()
        await callReady(reloading)
        await connected(reloading, other)
        await bothWays(c, f)
        // The other side dropped the old instance's tracks, and shows the new one's.
        expect((await seen(other)).filter((e) => e.type === 'track-ended').map((e) => e.id)).toContain(old)
        const id = await selfId(reloading)
        await other.waitFor((id) => {
          const tiles = [...(window as unknown as { demoCall: { tiles: Map<string, unknown> } }).demoCall.tiles.keys()]
          return tiles.length === 1 && tiles[0] === id
        }, id)
      }
    })
  })
})
