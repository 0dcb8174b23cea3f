import { expect, test } from 'vitest'
import { describeBrowser, useTwoTabs } from './chromium'

declare global {
  interface Window {
    // biome-ignore lint/suspicious/noExplicitAny: the UMD global, typed where it is used
    Politely: any
    run?: { peer: { start(): Promise<void>; close(): void }; opened: Promise<void>; glare: boolean; rebuilds: string[] }
  }
}

const RUNS = 50

/** In the page: a peer that lets both sides make the first offer (the bare W3C pattern) and records what happened. */
function createPeer({ room, id }: { room: string; id: string }): void {
  const { PerfectNegotiationPeer, BroadcastChannelSignaler } = window.Politely
  const peer = new PerfectNegotiationPeer({ id, firstOffer: 'either', signaler: new BroadcastChannelSignaler({ room }) })
  const run = { peer, glare: false, rebuilds: [] as string[], opened: new Promise<void>((resolve) => peer.on('open', resolve)) }
  // biome-ignore lint/suspicious/noExplicitAny: event payloads from the UMD global
  peer.on('signal', ({ direction, message }: any) => {
    // An offer arriving while ours is out: the offers crossed.
    if (direction === 'in' && message.description?.type === 'offer' && peer.connection?.signalingState === 'have-local-offer')
      run.glare = true
  })
  peer.on('rebuild', ({ reason }: { reason: string }) => run.rebuilds.push(reason))
  peer.on('error', (error: Error) => console.error(`politely error: ${error.message}`))
  window.run = run
}

describeBrowser('tight glare in Chromium', () => {
  const { pages: tabs, problems: errors } = useTwoTabs('blank.html')

  test(`both tabs negotiate at the same instant, ${RUNS} times: every run connects`, { timeout: 300_000 }, async () => {
    const [politePage, impolitePage] = tabs()
    const outcomes: Array<{ glare: boolean; rebuilds: string[] }> = []
    for (let run = 0; run < RUNS; run++) {
      const room = `glare-${Date.now()}-${run}`
      // The lower id is polite. The impolite side starting first, the polite a few ms later,
      // is the order that makes Chromium's post-rollback gathering bug most likely (TOOLCHAIN.md).
      await politePage.evaluate(createPeer, { room, id: `a-${run}` })
      await impolitePage.evaluate(createPeer, { room, id: `b-${run}` })
      await impolitePage.evaluate(() => window.run?.peer.start())
      await new Promise((resolve) => setTimeout(resolve, 3))
      await politePage.evaluate(() => window.run?.peer.start())
      await Promise.all(
        tabs().map((page) => page.waitForFunction(() => window.run?.opened.then(() => true), null, { timeout: 30_000 })),
      )
      const [polite, impolite] = await Promise.all(
        tabs().map((page) => page.evaluate(() => ({ glare: !!window.run?.glare, rebuilds: window.run?.rebuilds ?? [] }))),
      )
      outcomes.push({
        glare: !!(polite?.glare || impolite?.glare),
        rebuilds: [...(polite?.rebuilds ?? []), ...(impolite?.rebuilds ?? [])],
      })
      await Promise.all(tabs().map((page) => page.evaluate(() => window.run?.peer.close())))
    }
    const glared = outcomes.filter((o) => o.glare).length
    const stalled = outcomes.filter((o) => o.rebuilds.includes('stalled')).length
    console.log(
      `tight glare: ${RUNS} runs connected; offers crossed in ${glared}, a stalled connection was rebuilt in ${stalled}`,
    )
    // The runs must really have glared, or this test would prove nothing.
    expect(glared).toBeGreaterThan(0)
    expect(errors).toEqual([])
  })
})
