// Start → data-channel-open time in headless Chromium: politely vs a hand-written
// RTCPeerConnection pair with the same in-page BroadcastChannel signaling, run
// alternately in one browser; then the time to reconnect after a tab reload.
//
//   npm run bench            (builds first)     RUNS=50 npm run bench
import { startStaticServer } from '../dist/server.mjs'
import { launchChromium } from './chromium.mjs'

const RUNS = Number(process.env.RUNS ?? 30)
const RELOADS = Number(process.env.RELOADS ?? 10)

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const p90 = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.9)]
const fmt = (ms) => `${ms.toFixed(1)} ms`

const server = await startStaticServer({ '/': 'bench', '/dist/': 'dist' })
const browser = await launchChromium()
const context = await browser.newContext()
const pages = [await context.newPage(), await context.newPage()]
await Promise.all(pages.map((page) => page.goto(`${server.url}page.html`)))

/** One connection of a contender; returns the slower side's start → open time. */
async function connectOnce(kind, run) {
  const room = `${kind}-${run}-${Date.now()}`
  await Promise.all(
    pages.map((page, side) =>
      page.evaluate(
        ({ kind, room, side }) => {
          window.current = kind === 'raw' ? window.bench.raw(room, side === 0) : window.bench.politely(room)
        },
        { kind, room, side },
      ),
    ),
  )
  // Both sides start at (almost) the same instant; each measures from its own start.
  await Promise.all(pages.map((page) => page.evaluate(() => window.current.start())))
  // Bounded: a pair that does not connect is a finding, not a hang.
  const times = await Promise.all(
    pages.map((page) =>
      page.evaluate(() =>
        Promise.race([
          window.current.opened,
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error(`no open after 10 s: state ${window.current.peer?.state}`)), 10_000),
          ),
        ]),
      ),
    ),
  )
  await Promise.all(pages.map((page) => page.evaluate(() => window.current.close())))
  return Math.max(...times)
}

const results = { raw: [], politely: [] }
for (let run = 0; run < 3; run++) for (const kind of ['raw', 'politely']) await connectOnce(kind, `warmup${run}`)
for (let run = 0; run < RUNS; run++) {
  // Alternate the order so neither contender always runs on a warmer browser.
  const order = run % 2 ? ['raw', 'politely'] : ['politely', 'raw']
  for (const kind of order) results[kind].push(await connectOnce(kind, run))
}

console.log(`start → channel open, ${RUNS} runs each, same Chromium, same BroadcastChannel signaling`)
for (const kind of ['raw', 'politely']) {
  console.log(`  ${kind.padEnd(9)} median ${fmt(median(results[kind]))}  p90 ${fmt(p90(results[kind]))}`)
}
const ratio = median(results.politely) / median(results.raw)
console.log(`  ratio politely / raw (median): ${ratio.toFixed(2)}×  (goal ≤ 1.15×)`)

// Reconnect after a reload: page A stays, page B reloads; time from the reload
// to A's next `open`, and from B's new peer start to its own `open`.
const room = `reload-${Date.now()}`
await pages[0].goto(`${server.url}page.html?room=${room}`)
await pages[1].goto(`${server.url}page.html?room=${room}`)
await pages[0].waitForFunction(() => window.auto.opens.length > 0)
const reloadToOpen = []
const startToOpen = []
for (let run = 0; run < RELOADS; run++) {
  const before = await pages[0].evaluate(() => window.auto.opens.length)
  const reloadedAt = Date.now()
  await pages[1].reload()
  await pages[0].waitForFunction((count) => window.auto.opens.length > count, before)
  const openedAt = await pages[0].evaluate(() => window.auto.opens.at(-1))
  reloadToOpen.push(openedAt - reloadedAt)
  startToOpen.push(await pages[1].evaluate(() => window.auto.contender.opened))
}
console.log(`reconnect after a tab reload, ${RELOADS} reloads`)
console.log(
  `  reload() → surviving tab open: median ${fmt(median(reloadToOpen))}  max ${fmt(Math.max(...reloadToOpen))}  (goal ≤ 1000 ms)`,
)
console.log(`  reloaded tab's start() → open: median ${fmt(median(startToOpen))}`)

await browser.close()
await server.close()
