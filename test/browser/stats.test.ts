// politely/stats in real Chromium, from the <script> builds (the add-on extends the core's global):
// two tabs connected over a BroadcastChannelSignaler report a host pair, a round-trip time, and
// the bitrate of 100 KB sent between two calls. Needs the built dist/ (npm test builds first).
import { expect, test } from 'vitest'
import type { LinkStats } from '../../src/stats'
import { describeBrowser, useTwoTabs } from './chromium'

declare global {
  interface Window {
    // biome-ignore lint/suspicious/noExplicitAny: the UMD global, typed where it is used
    Politely: any
    linked?: { peer: { connection?: RTCPeerConnection; send(data: unknown): Promise<void> }; opened: Promise<unknown> }
  }
}

/** In the page: a peer over a BroadcastChannel, and a promise of its first `open`. */
function createPeer(room: string): Promise<void> {
  const { PerfectNegotiationPeer, BroadcastChannelSignaler } = window.Politely
  const peer = new PerfectNegotiationPeer({ signaler: new BroadcastChannelSignaler({ room }) })
  peer.on('error', (error: Error & { code: string }) => console.error(`politely error: ${error.code} ${error.message}`))
  window.linked = { peer, opened: new Promise((resolve) => peer.on('open', resolve)) }
  return peer.start()
}

/** In the page: `stats()` of the peer's connection. */
const read = (): Promise<LinkStats> => window.Politely.stats(window.linked?.peer.connection)

describeBrowser('politely/stats in Chromium', () => {
  const { pages: tabs, problems } = useTwoTabs('stats.html')

  test('two tabs over BroadcastChannel: a host pair with a round-trip time; the bitrate of 100 KB', async () => {
    const room = `stats-${process.pid}-${Date.now()}`
    await Promise.all(tabs().map((page) => page.evaluate(createPeer, room)))
    await Promise.all(tabs().map((page) => page.waitForFunction(() => window.linked?.opened.then(() => true))))
    for (const page of tabs()) {
      const first = await page.evaluate(read)
      expect(first).toMatchObject({ candidateType: 'host', packetsLost: 0, bitrateOut: undefined })
      expect(first.rtt).toBeGreaterThanOrEqual(0)
    }
    const [sender] = tabs()
    const second = await sender.evaluate(async (size) => {
      for (let sent = 0; sent < size; sent += 10_000) await window.linked?.peer.send(new Uint8Array(10_000))
      // Past the 50 ms for which Chromium hands out the same report.
      await new Promise((resolve) => setTimeout(resolve, 100))
      return window.Politely.stats(window.linked?.peer.connection) as Promise<LinkStats>
    }, 100_000)
    expect(second.bitrateOut).toBeGreaterThan(0)
    expect(second.candidateType).toBe('host')
    expect(problems).toEqual([])
  })
})
