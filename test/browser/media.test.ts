// The demo's video call in real Chromium, each page in a browser context of its own, through
// the reference server (127.0.0.1, a free port): Chromium's fake camera and microphone, and
// media that flows is media the receiver decodes (its getStats(), see call-harness.ts). After
// the start, a screen shared (getDisplayMedia: Chromium's fake screen, through the demo's
// button) and back, mute and camera off and back (no renegotiation for any of them), a track
// removed and another added, a reload of either side, the browser's UDP cut and restored,
// ten rounds of both sides adding and removing tracks at the same instant, and a room of four.
import type { Browser, BrowserContext } from 'playwright-core'
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest'
import { BrowserPathCut, canCutBrowserPaths } from '../support/browser-path-cut'
import { describeRequiring } from '../support/requires'
import {
  type CallMode,
  callReady,
  callUrl,
  flowing,
  type Kind,
  received,
  record,
  type Seen,
  seen,
  shownVideo,
} from './call-harness'
import { chromiumPath, describeBrowser, launchChromium } from './chromium'
import {
  connected,
  type DemoServer,
  type DemoTab,
  openPlaywrightTab,
  selfId,
  startDemoServer,
  TIMEOUT,
  type Transport,
  takeProblems,
  uniqueRoom,
} from './demo-harness'

/** The demo's globals (read inside the page: a function run there cannot use this file's names, only types). */
type Demo = {
  demoPeer: import('../../src/index').PerfectNegotiationPeer
  demoRoom: import('../../src/room').Room
  demoCall: {
    camera: MediaStreamTrack
    microphone: MediaStreamTrack
    stream: MediaStream
    screen: MediaStreamTrack | null
    present(track: MediaStreamTrack): Promise<void>
    tiles: Map<string, { figure: HTMLElement; tracks: MediaStreamTrack[] }>
  }
  seen: Seen[]
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Both pages receive video and audio from the other. */
async function flowsBothWays(a: DemoTab, b: DemoTab): Promise<void> {
  await Promise.all([a, b].flatMap((tab) => (['video', 'audio'] as const).map((kind) => flowing(tab, kind))))
}

/**
 * Nothing of `kind` arrives any more: the counter first stands still for a second (what was in
 * flight has drained), then for a two-second observation window.
 */
async function stopped(tab: DemoTab, kind: Kind): Promise<void> {
  const deadline = Date.now() + TIMEOUT
  let before = await received(tab, kind)
  for (;;) {
    await sleep(1000)
    const now = await received(tab, kind)
    if (now === before) break
    if (Date.now() > deadline) throw new Error(`${tab.label}: ${kind} still arrives (${before} → ${now})`)
    before = now
  }
  await sleep(2000)
  expect(await received(tab, kind), `${tab.label}: ${kind} while muted`).toBe(before)
}

describeBrowser('video calls in Chromium (the demo in call mode, separate contexts, the reference server)', () => {
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

  /** A call page in a context of its own (only the server links it to the others), its media sent. */
  async function open(room: string, transport: Transport, label: string, mode: CallMode = 'call', on = browser) {
    const context = await on.newContext()
    contexts.push(context)
    const tab = await openPlaywrightTab(await context.newPage(), callUrl(server, room, transport, mode), label)
    tabs.push(tab)
    await callReady(tab)
    return tab
  }

  async function pair(transport: Transport): Promise<[DemoTab, DemoTab]> {
    const room = uniqueRoom(`media-${transport}`)
    const a = await open(room, transport, 'A')
    const b = await open(room, transport, 'B')
    await connected(a, b)
    return [a, b]
  }

  test('websocket: video and audio both ways; share screen and back; mute and camera off and back: no renegotiation', {
    timeout: 120_000,
  }, async () => {
    const [a, b] = await pair('websocket')
    await flowsBothWays(a, b)
    await Promise.all([record(a), record(b)])
    const shown = await shownVideo(b)
    expect(shown).toBeDefined()

    // The demo's button: getDisplayMedia (Chromium's fake screen, accepted by the fake UI), then replaceTrack.
    await a.click('#share')
    await a.waitFor(() => (window as unknown as Demo).demoCall.screen !== null, null)
    /** The track A's video sender has now ('screen', 'camera'), waited for: replaceTrack resolves after the click. */
    const sends = (what: 'screen' | 'camera') =>
      a.waitFor((what) => {
        const { demoPeer, demoCall } = window as unknown as Demo
        const track = demoPeer.connection?.getSenders().find((sender) => sender.track?.kind === 'video')?.track
        return track !== undefined && track === (what === 'screen' ? demoCall.screen : demoCall.camera)
      }, what)
    await sends('screen')
    expect(await a.evaluate(() => (window as unknown as Demo).demoCall.screen?.label, null)).toMatch(/^screen:/)
    // Same remote track (nothing renegotiated), the screen's frames on it.
    await flowing(b, 'video', { track: shown })
    expect(await shownVideo(b)).toBe(shown)
    await a.click('#share')
    await sends('camera')
    await flowing(b, 'video', { track: shown })

    await a.click('#mic')
    await stopped(b, 'audio')
    await flowing(b, 'video')
    await a.click('#mic')
    await flowing(b, 'audio')

    await a.click('#camera')
    await stopped(b, 'video')
    // The preview keeps playing the camera: its own track was not touched.
    const playing = () => a.evaluate(() => (document.querySelector('.tile.self video') as HTMLVideoElement).currentTime, null)
    const at = await playing()
    await a.waitFor((then) => (document.querySelector('.tile.self video') as HTMLVideoElement).currentTime > then + 1, at)
    expect(await a.evaluate(() => (window as unknown as Demo).demoCall.camera.readyState, null)).toBe('live')
    await a.click('#camera')
    await flowing(b, 'video', { track: shown })

    for (const tab of [a, b]) expect(await seen(tab)).toEqual([])
  })

  test('sse: removeTrack, then addTrack of another camera track: the remote sees track-removed, then track; frames flow on the new one', {
    timeout: 120_000,
  }, async () => {
    const [a, b] = await pair('sse')
    await flowsBothWays(a, b)
    await Promise.all([record(a), record(b)])
    const old = await shownVideo(b)
    await a.evaluate(() => {
      const { demoPeer, demoCall } = window as unknown as Demo
      demoPeer.removeTrack(demoCall.camera)
    }, null)
    await b.waitFor((id) => (window as unknown as Demo).seen.some((e) => e.type === 'track-removed' && e.id === id), old)
    // The demo's tile keeps the member, without the video.
    await b.waitFor(() => document.querySelector('.tile:not(.self)')?.classList.contains('empty') === true, null)
    // Another track of the same camera (a clone: a track of its own).
    await a.evaluate(() => {
      const { demoPeer, demoCall } = window as unknown as Demo
      demoPeer.addTrack(demoCall.camera.clone(), demoCall.stream)
    }, null)
    await b.waitFor(() => (window as unknown as Demo).seen.some((e) => e.type === 'track'), null)
    const events = (await seen(b)).filter((e) => e.type.startsWith('track'))
    expect(events.map((e) => [e.type, e.kind])).toEqual([
      ['track-removed', 'video'],
      ['track', 'video'],
    ])
    const fresh = events[1]?.id
    await b.waitFor((id) => document.querySelector('.tile:not(.self)')?.classList.contains('empty') === false && !!id, fresh)
    expect(await shownVideo(b)).toBe(fresh)
    await flowing(b, 'video', { track: fresh })
    await flowing(b, 'audio')
    expect((await seen(a)).filter((e) => e.type === 'error')).toEqual([])
  })

  for (const transport of ['websocket', 'sse'] as const)
    test(`${transport}: either side reloads: it rejoins by itself, media flows both ways again, the other side saw track-ended for the old tracks`, {
      timeout: 120_000,
    }, async () => {
      const [a, b] = await pair(transport)
      await flowsBothWays(a, b)
      for (const [reloading, other] of [
        [a, b],
        [b, a],
      ] as const) {
        await record(other)
        const old = await shownVideo(other)
        const oldId = await selfId(reloading)
        await reloading.reload()
        await callReady(reloading)
        const newId = await selfId(reloading)
        expect(newId).not.toBe(oldId)
        await connected(reloading, other)
        await flowsBothWays(a, b)
        const ended = (await seen(other)).filter((e) => e.type === 'track-ended')
        expect(ended.map((e) => e.kind).sort()).toEqual(['audio', 'video'])
        expect(ended.map((e) => e.id)).toContain(old)
        // The old instance's tile went with its tracks; the new one's shows.
        await other.waitFor((id) => {
          const tiles = [...(window as unknown as Demo).demoCall.tiles.keys()]
          return tiles.length === 1 && tiles[0] === id
        }, newId)
      }
    })

  test('websocket: both sides add a track and remove the previous one at the same instant, 10 rounds without waiting: stable, same transceivers, no error, frames flow', {
    timeout: 120_000,
  }, async () => {
    const [a, b] = await pair('websocket')
    await flowsBothWays(a, b)
    await Promise.all([record(a), record(b)])
    // Both pages run the same rounds at the same instants of the machine's clock, 20 ms apart: far
    // less than a negotiation through the server, so each round starts before the last settled.
    const at = Date.now() + 500
    await Promise.all(
      [a, b].map((tab) =>
        tab.evaluate(async (at) => {
          const { demoPeer, demoCall } = window as unknown as Demo
          let previous: MediaStreamTrack | undefined
          for (let round = 0; round < 10; round++) {
            await new Promise((resolve) => setTimeout(resolve, at + round * 20 - Date.now()))
            const next = demoCall.camera.clone()
            demoPeer.addTrack(next, demoCall.stream)
            if (previous) demoPeer.removeTrack(previous)
            previous = next
          }
        }, at),
      ),
    )
    /** Signaling state, transceivers, and the video sent and received as negotiated. */
    const state = (tab: DemoTab) =>
      tab.evaluate(() => {
        const pc = (window as unknown as Demo).demoPeer.connection as RTCPeerConnection
        const video = pc.getTransceivers().filter((t) => t.receiver.track.kind === 'video')
        return {
          signaling: pc.signalingState,
          transceivers: pc.getTransceivers().length,
          sending: video.filter((t) => t.sender.track && /send/.test(t.currentDirection ?? '')).length,
          receiving: video.filter((t) => /recv/.test(t.currentDirection ?? '')).length,
        }
      }, null)
    // Settled: both stable, as many transceivers on each side, each sending and receiving its
    // camera and the last round's track.
    const deadline = Date.now() + TIMEOUT
    let last: unknown
    for (;;) {
      const [sa, sb] = await Promise.all([state(a), state(b)])
      last = [sa, sb]
      const settled = (s: typeof sa) => s.signaling === 'stable' && s.sending === 2 && s.receiving === 2
      if (settled(sa) && settled(sb) && sa.transceivers === sb.transceivers) break
      if (Date.now() > deadline) throw new Error(`never settled: ${JSON.stringify(last)}`)
      await sleep(100)
    }
    await Promise.all([a, b].map((tab) => flowing(tab, 'video', { streams: 2 })))
    await Promise.all([a, b].map((tab) => flowing(tab, 'audio')))
    for (const tab of [a, b]) {
      const events = await seen(tab)
      expect(events.filter((e) => e.type === 'error' || e.type === 'rebuild')).toEqual([])
      // Both sides offered: the rounds really negotiated from both ends.
      expect(
        events.filter((e) => e.type === 'description' && e.direction === 'out' && e.kind === 'offer').length,
      ).toBeGreaterThan(0)
    }
  })

  test("websocket: a room of 4, each sending video: every member decodes every other member's frames, a tile each; one leaves, its tile goes", {
    timeout: 180_000,
  }, async () => {
    const room = uniqueRoom('media-room')
    const pages: DemoTab[] = []
    for (let i = 0; i < 4; i++) pages.push(await open(room, 'websocket', `P${i}`, 'room-call'))
    const ids = await Promise.all(pages.map(selfId))
    const others = (i: number) => ids.filter((_, j) => j !== i)
    await Promise.all(pages.flatMap((tab, i) => others(i).map((from) => flowing(tab, 'video', { from }))))
    for (const [i, tab] of pages.entries())
      await tab.waitFor((want: string[]) => {
        const captions = Array.from(document.querySelectorAll('.tile:not(.self) figcaption'), (caption) => caption.textContent)
        return captions.length === want.length && want.every((id) => captions.includes(id))
      }, others(i))
    // A member closes its page: the others drop its tile (on peer-leave, or as its tracks end).
    const [leaving, gone] = [ids[3] as string, pages[3] as DemoTab]
    // Its problems now: afterEach cannot read a closed page.
    expect(await takeProblems(tabs.splice(tabs.indexOf(gone), 1), server)).toEqual([])
    await gone.close()
    for (const tab of pages.slice(0, 3)) await tab.waitFor((id) => !(window as unknown as Demo).demoCall.tiles.has(id), leaving)
  })

  describeRequiring(
    {
      name: 'nft and cgroup v2 (as root)',
      present: canCutBrowserPaths(),
      install: 'sudo apt-get install nftables, run the tests as root, with cgroup v2 mounted under /sys/fs/cgroup',
      override: 'PATH',
      looked: 'nft on the PATH, allowed to add a table; a writable cgroup v2 mount',
    },
    'the UDP of one browser cut while signaling stays up',
    () => {
      let cut: BrowserPathCut
      let cutBrowser: Browser

      beforeAll(async () => {
        cut = new BrowserPathCut(chromiumPath as string)
        cutBrowser = await launchChromium(cut.executable)
      })

      afterAll(async () => {
        cut?.restore()
        await cutBrowser?.close()
        cut?.dispose()
      })

      // A short cut, restored as soon as the pair notices: ICE restarts, and the connection comes
      // back, or (if the restart stalled first) is rebuilt. A long one, until the connection is
      // rebuilt: the remote's tracks end and come again as new ones.
      for (const until of ['reconnecting', 'rebuild'] as const)
        test(`websocket: A's UDP dropped both ways until the pair ${until === 'rebuild' ? 'rebuilds its connection' : 'notices'}, then restored: media flows both ways again`, {
          timeout: 120_000,
        }, async () => {
          const room = uniqueRoom('media-cut')
          const a = await open(room, 'websocket', 'A', 'call', cutBrowser)
          const b = await open(room, 'websocket', 'B')
          await connected(a, b)
          await flowsBothWays(a, b)
          await Promise.all([record(a), record(b)])
          const old = await shownVideo(b)
          cut.cut()
          try {
            // The pair notices (ICE consent fails), and recovers.
            await b.waitFor((type) => (window as unknown as Demo).seen.some((e) => e.type === type), until)
            // Nothing arrives meanwhile (long enough to watch only in the long cut).
            if (until === 'rebuild') await stopped(b, 'video')
          } finally {
            cut.restore()
          }
          await Promise.all([a, b].flatMap((tab) => (['video', 'audio'] as const).map((kind) => flowing(tab, kind, {}, 60_000))))
          const events = await seen(b)
          const ended = events.filter((e) => e.type === 'track-ended').map((e) => e.id)
          if (events.some((e) => e.type === 'rebuild')) {
            // The old remote tracks ended; the tile shows A's tracks of the new connection.
            expect(ended).toContain(old)
            await b.waitFor((old) => {
              const tracks = [...(window as unknown as Demo).demoCall.tiles.values()].flatMap((tile) => tile.tracks)
              return tracks.length === 2 && !tracks.some((track) => track.id === old)
            }, old)
          } else {
            // An ICE restart: the same connection, the same remote tracks.
            expect(ended).toEqual([])
            expect(await shownVideo(b)).toBe(old)
          }
          await flowing(b, 'video', { track: await shownVideo(b) })
        })
    },
  )
})
