// Video calls in headless Chromium: politely's PerfectNegotiationPeer vs a hand-written RTCPeerConnection
// pair, side by side in one run, contenders alternating. Each side is a page (bench/media.html) with a
// fake camera track (640×480), in a browser of its own.
//
//   1. Start → first frame: both pages loaded, camera captured, politely's bundle parsed; from the moment
//      both are told to start until both presented a first decoded remote frame.
//   2. Reload → first frame: the call is up; one page reloads (even runs side 0, odd runs side 1: for the
//      hand-written pair that is the offerer, then the answerer) and rejoins by itself on load (capture and
//      bundle load included); from reload() until both sides presented a frame of a track that arrived
//      after the reload (the surviving side's old track gets nothing more once its remote is gone).
//   3. UDP cut → frames again: the call is up; every UDP packet from or to the two browsers' ICE ports is
//      dropped by nftables for CUT_MS (signaling stays up), then let through again; from the restore until
//      both sides presented a frame again. politely recovers by itself (ICE restart after a 1 s grace on
//      'disconnected', a rebuild if that does not help); the hand-written pair calls restartIce() on
//      'failed' only (the standard recovery; ICE alone otherwise). Needs root and nft, else "skipped".
//
// Signaling: politely's reference server in a child process (bench/server-runner.mjs), on 127.0.0.1. The
// hand-written pair uses the same server over a raw WebSocket of its own as a dumb relay (its wire format,
// no politely code in that page): both contenders pay the same hops, the same parsing, the same server.
//
// Frames are timed in the pages with requestVideoFrameCallback (metadata.presentationTime: when the
// decoded frame went to the compositor), a <video> per remote track; the clock here is Date.now(), the
// pages' performance.timeOrigin + presentationTime is the same wall clock. The fake camera runs at 30 fps.
//
// Why a browser per side, not two contexts of one: the UDP cut must hit only these browsers' ICE sockets
// (other work on the machine may use UDP), and Chromium only confines them to a port range through its
// profile preference webrtc.udp_port_range (the WebRtcUdpPortRange policy), which a persistent profile
// can carry and Playwright's fresh contexts cannot. So each side is launchPersistentContext() with
// its own profile and range, for all three scenarios and both contenders alike.
//
// Medians and p90 over RUNS runs; a run not done within CAP counts as failed (shown, never asserted).
// Nothing leaves the machine: pages, bundle and server on 127.0.0.1, no ICE servers; any request
// elsewhere is counted and printed.
//
//   npm run bench:media          RUNS=10 CAP=20000 CUT_MS=2000 ONLY='reload|cut' npm run bench:media
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { chromium } from 'playwright-core'
import { build } from 'vite'
import { listen, serveStatic } from '../dist/server.mjs'
import { CHROMIUM_ARGS, CHROMIUM_PATH, offMachine, pageErrors, watch } from './chromium.mjs'
import { startServer } from './relay.mjs'

const RUNS = Number(process.env.RUNS ?? 10)
const CAP = Number(process.env.CAP ?? 20_000)
const CUT_MS = Number(process.env.CUT_MS ?? 2000)
/** ONLY='reload' runs the rows whose key (start, reload, cut) matches. */
const ONLY = new RegExp(process.env.ONLY ?? '')
const ROOT = new URL('..', import.meta.url).pathname
/** Each side's ICE ports: below Linux's ephemeral range, apart from the tests' (20100–20499) and bench:recovery's (21000–21099). */
const PORT_RANGES = ['21400-21499', '21500-21599']
const CUT_PORTS = '21400-21599'
const TABLE = `politely_media_${process.pid}`

const LIBS = { politely: 'politely', hand: 'hand-written' }

const sorted = (values) => [...values].sort((a, b) => a - b)
const median = (values) => (values.length ? sorted(values)[Math.floor(values.length / 2)] : undefined)
const p90 = (values) => (values.length ? sorted(values)[Math.min(values.length - 1, Math.floor(values.length * 0.9))] : undefined)
const fmt = (ms) => (ms === undefined ? '-' : `${Math.round(ms)} ms`)
const ratio = (a, b) => (a === undefined || b === undefined ? '-' : `${(a / b).toFixed(2)}×`)
const firstLine = (error) => error.message.split('\n')[0]

// ---- the UDP cut: nftables, as bench/recovery.mjs and test/support/path-cut.ts do it ----------

function cut() {
  const chain = (hook) =>
    `chain ${hook} {\n type filter hook ${hook} priority 0; policy accept;\n udp sport ${CUT_PORTS} drop\n udp dport ${CUT_PORTS} drop\n }`
  execFileSync('nft', ['-f', '-'], { input: `table inet ${TABLE} {\n${chain('input')}\n${chain('output')}\n}\n` })
}
function restore() {
  try {
    execFileSync('nft', ['delete', 'table', 'inet', TABLE], { stdio: 'ignore' })
  } catch {}
}
/** Why the path cannot be cut here, or undefined if it can (root, nft, netfilter). */
function cannotCut() {
  const probe = `politely_media_probe_${process.pid}`
  try {
    execFileSync('nft', ['add', 'table', 'inet', probe], { stdio: 'pipe' })
    execFileSync('nft', ['delete', 'table', 'inet', probe], { stdio: 'ignore' })
    return undefined
  } catch (error) {
    return `nft cannot add a table here (${(error.stderr?.toString() || error.message).trim().split('\n')[0]}); needs root and nftables`
  }
}
process.on('exit', restore)
process.on('SIGINT', () => process.exit(130))

// ---- setup: politely's bundle, the pages, the browsers -----------------------------------------

/** politely as one browser ES module, built with vite (minified) as an app would ship it, like bench/mesh.mjs. */
async function bundle(outDir) {
  const entry = '\0entry-politely'
  const source =
    ['index', 'websocket'].map((name, i) => `import * as m${i} from '${join(ROOT, 'dist', `${name}.mjs`)}'\n`).join('') +
    'window.Politely = { ...m0, ...m1 }\n'
  await build({
    root: ROOT,
    configFile: false,
    logLevel: 'warn',
    plugins: [
      {
        name: 'bench-entry',
        resolveId: (id) => (id === 'bench-entry' ? entry : null),
        load: (id) => (id === entry ? source : null),
      },
    ],
    build: {
      outDir,
      emptyOutDir: false,
      copyPublicDir: false,
      rolldownOptions: { input: 'bench-entry', output: { format: 'es', entryFileNames: 'politely.js' } },
    },
  })
}

async function startPageServer(bundleDir) {
  const server = createServer(serveStatic({ '/': join(ROOT, 'bench'), '/bundles/': bundleDir }))
  const port = await listen(server, 0, '127.0.0.1')
  return {
    url: `http://127.0.0.1:${port}/`,
    async close() {
      server.closeAllConnections()
      await new Promise((done) => server.close(done))
    },
  }
}

/** One side's browser: a persistent profile whose WebRTC UDP ports stay in `ports`, with a fake camera. */
async function launchSide(ports) {
  const dir = await mkdtemp(join(tmpdir(), 'politely-media-'))
  await mkdir(join(dir, 'Default'))
  await writeFile(join(dir, 'Default', 'Preferences'), JSON.stringify({ webrtc: { udp_port_range: ports } }))
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
  })
  return { context, dir }
}

// ---- a call: two pages, started, and their frames ----------------------------------------------

let calls = 0

/** Two loaded, not yet started pages of a new room, one in each browser. */
async function openCall(lib) {
  const room = `media-${lib}-${process.pid}-${++calls}`
  const pages = await Promise.all(
    sides.map(async ({ context }, side) => {
      const page = await context.newPage()
      watch(page, LIBS[lib])
      const query = new URLSearchParams({ lib, side, room, psignal: signalUrl })
      await page.goto(`${pageServer.url}media.html?${query}`)
      return page
    }),
  )
  const close = () => Promise.all(pages.map((page) => page.close()))
  // Camera captured and library parsed before any clock starts (not timed: a loaded machine gets 30 s for it).
  try {
    await Promise.all(
      pages.map((page) => page.waitForFunction(() => window.media.loaded, null, { timeout: 30_000, polling: 20 })),
    )
  } catch (error) {
    await close()
    throw error
  }
  return { pages, close }
}

/** Starts both pages at once; returns when both were told to. */
const startAll = (pages) => Promise.all(pages.map((page) => page.evaluate(() => void window.media.start())))

/** The first frame `page` presented at or after `since`, on a track that arrived at or after `trackSince`. */
async function firstFrame(page, since, trackSince) {
  const arg = { since, trackSince }
  await page.waitForFunction(({ since, trackSince }) => window.media?.firstFrame?.(since, trackSince) < Infinity, arg, {
    timeout: CAP,
    polling: 20,
  })
  return page.evaluate(({ since, trackSince }) => window.media.firstFrame(since, trackSince), arg)
}

/** Runs that failed, and how far they got: printed at the end. */
const failures = []

/**
 * ms from `since` until both pages presented a frame (since `since`, of tracks since `trackSince`); undefined past CAP.
 * `sides`, if given, gets each page's own time.
 */
async function framesUp(pages, since, trackSince, label, sides = []) {
  try {
    const times = await Promise.all(pages.map((page) => firstFrame(page, since, trackSince)))
    sides.push(...times.map((time) => time - since))
    return Math.max(...times) - since
  } catch (error) {
    const states = await Promise.all(pages.map((page, side) => progress(page, side, since)))
    failures.push(`${label}: ${firstLine(error)}; ${states.join('; ')}`)
    return undefined
  }
}

/** "side 0: 2 tracks, 35 frames since, ICE connected": how far a page got. */
const progress = (page, side, since) =>
  page
    .evaluate(
      ({ since, side }) => {
        const { tracks, events, state } = window.media
        const frames = tracks.reduce((sum, entry) => sum + entry.frames.filter((t) => t >= since).length, 0)
        const recent = events.filter(([t]) => t >= since).map(([, what]) => what)
        return `side ${side}: ${tracks.length} tracks, ${frames} frames since, ${state?.() ?? 'not started'}${recent.length ? ` [${recent.join(', ')}]` : ''}`
      },
      { since, side },
    )
    .catch((error) => `side ${side}: unreadable (${firstLine(error)})`)

/** The call is up: both sides presented a frame (not timed). */
const callUp = async (pages, label) => (await framesUp(pages, 0, 0, `${label} (setup)`)) !== undefined

// ---- the scenarios: one run each, ms or undefined ----------------------------------------------

async function startOnce(lib, what = 'start') {
  const { pages, close } = await openCall(lib)
  try {
    const since = Date.now()
    await startAll(pages)
    return await framesUp(pages, since, since, `${LIBS[lib]}, ${what}`)
  } finally {
    await close()
  }
}

/** Where a reload's time went: the reloaded page ready (loaded, camera captured, bundle parsed), each side's first frame. */
const reloadNotes = { politely: [], hand: [] }

async function reloadOnce(lib, run) {
  const reloaded = run % 2
  const label = `${LIBS[lib]}, reload of side ${reloaded}`
  const { pages, close } = await openCall(lib)
  try {
    await startAll(pages)
    if (!(await callUp(pages, label))) return undefined
    const since = Date.now()
    await pages[reloaded].reload()
    const times = []
    const ms = await framesUp(pages, since, since, label, times)
    if (ms !== undefined) {
      const ready = await pages[reloaded].evaluate(() => window.media.loadedAt)
      reloadNotes[lib].push({ ready: ready - since, reloaded: times[reloaded], surviving: times[1 - reloaded] })
    }
    return ms
  } catch (error) {
    failures.push(`${label}: ${firstLine(error)}`)
    return undefined
  } finally {
    await close()
  }
}

/** How each cut run recovered, and frames presented while cut (after its first 0.5 s: should be 0). */
const cutNotes = { politely: [], hand: [] }

async function cutOnce(lib) {
  const label = `${LIBS[lib]}, UDP cut`
  const { pages, close } = await openCall(lib)
  try {
    await startAll(pages)
    if (!(await callUp(pages, label))) return undefined
    await sleep(1000)
    const cutAt = Date.now()
    cut()
    await sleep(CUT_MS)
    restore()
    const restoredAt = Date.now()
    const ms = await framesUp(pages, restoredAt, 0, label)
    const leaked = await Promise.all(
      pages.map((page) => page.evaluate(([from, to]) => window.media.framesBetween(from, to), [cutAt + 500, restoredAt])),
    )
    const done = restoredAt + (ms ?? CAP)
    const what = await Promise.all(
      pages.map((page) =>
        page.evaluate(
          ([from, to]) => window.media.events.filter(([t]) => t >= from && t <= to).map(([, what]) => what),
          [cutAt, done],
        ),
      ),
    )
    cutNotes[lib].push({ leaked: leaked[0] + leaked[1], what: what.flat() })
    return ms
  } finally {
    restore()
    await close()
  }
}

// ---- running and printing ----------------------------------------------------------------------

const ROWS = [
  { key: 'start', what: 'start → first frame', run: (lib) => startOnce(lib) },
  { key: 'reload', what: 'reload → first frame', run: (lib, run) => reloadOnce(lib, run) },
  { key: 'cut', what: `UDP cut ${CUT_MS / 1000} s → frames`, run: (lib) => cutOnce(lib) },
]

/** One run; a run that threw (a page that would not load, say) is a failure, shown like the others. */
async function attempt(label, run) {
  try {
    return await run()
  } catch (error) {
    failures.push(`${label}: ${firstLine(error)}`)
    return undefined
  }
}

async function measure(rows) {
  for (const row of rows) {
    row.results = { politely: [], hand: [] }
    if (row.skipped) continue
    for (let run = 0; run < RUNS; run++) {
      // Alternate the order, so neither contender always runs on a warmer browser.
      const libs = run % 2 ? ['hand', 'politely'] : ['politely', 'hand']
      for (const lib of libs) row.results[lib].push(await attempt(`${LIBS[lib]}, ${row.key}`, () => row.run(lib, run)))
    }
    process.stderr.write(`  ${row.what}: done\n`)
  }
}

function summary(values) {
  const ok = values.filter((v) => v !== undefined)
  return { median: median(ok), p90: p90(ok), ok: `${ok.length}/${values.length}` }
}

/** "ICE restart ×3, ICE alone ×7": how the cut runs of a contender recovered. */
function how(notes) {
  const counts = new Map()
  for (const { what } of notes) {
    const kind = what.some((w) => w.startsWith('rebuild'))
      ? 'rebuilt'
      : what.some((w) => w.startsWith('reconnecting'))
        ? 'ICE restart'
        : what.includes('restartIce()')
          ? 'restartIce()'
          : what.includes('ICE disconnected')
            ? 'ICE alone (was disconnected)'
            : 'ICE alone (stayed connected)'
    counts.set(kind, (counts.get(kind) ?? 0) + 1)
  }
  const leaked = notes.reduce((sum, { leaked }) => sum + leaked, 0)
  return `${[...counts].map(([kind, n]) => `${kind} ×${n}`).join(', ') || '-'}; frames presented while cut: ${leaked}`
}

function print(rows, version) {
  const pad = (text, width) => String(text).padStart(width)
  console.log(
    `\nVideo calls in headless Chromium (${version}), fake camera 640×480 at 30 fps, one browser per side,` +
      `\nsignaling over politely's reference server (WebSocket) for both; ${RUNS} runs per cell, failed = not done within ${CAP / 1000} s.\n`,
  )
  console.log(
    `  ${'scenario'.padEnd(24)}${pad('politely', 10)}${pad('p90', 9)}${pad('ok', 7)}` +
      `${pad('hand-written', 14)}${pad('p90', 9)}${pad('ok', 7)}${pad('pol/hand', 10)}`,
  )
  for (const row of rows) {
    if (row.skipped) {
      console.log(`  ${row.what.padEnd(24)}skipped: ${row.skipped}`)
      continue
    }
    const p = summary(row.results.politely)
    const h = summary(row.results.hand)
    console.log(
      `  ${row.what.padEnd(24)}${pad(fmt(p.median), 10)}${pad(fmt(p.p90), 9)}${pad(p.ok, 7)}` +
        `${pad(fmt(h.median), 14)}${pad(fmt(h.p90), 9)}${pad(h.ok, 7)}${pad(ratio(p.median, h.median), 10)}`,
    )
  }
  console.log(`
  pol/hand: politely median / hand-written median (below 1: politely faster; the issue's bar for the first frame: ≤ 1.10×).
  A time is until both sides presented a decoded remote frame (requestVideoFrameCallback).`)
  if (rows.some((row) => row.key === 'reload')) {
    const part = (lib, key) => fmt(median(reloadNotes[lib].map((note) => note[key])))
    console.log(
      `  reload, medians from reload(): reloaded page ready (load, camera, bundle) politely ${part('politely', 'ready')}, hand-written ${part('hand', 'ready')};` +
        `\n    first frame on the reloaded side ${part('politely', 'reloaded')} / ${part('hand', 'reloaded')}, on the surviving side ${part('politely', 'surviving')} / ${part('hand', 'surviving')}`,
    )
  }
  if (rows.some((row) => row.key === 'cut' && !row.skipped)) {
    console.log(`  UDP cut, how it came back: politely ${how(cutNotes.politely)}`)
    console.log(`                             hand-written ${how(cutNotes.hand)}`)
  }
  console.log(
    `\nrequests off 127.0.0.1: ${offMachine.length}${offMachine.length ? ` (${[...new Set(offMachine)].join(', ')})` : ''}`,
  )
  if (failures.length) {
    console.log('failed runs (per side: remote tracks, frames since the clock started, connection state, recovery events):')
    for (const failure of failures) console.log(`  ${failure}`)
  }
  if (pageErrors.size) {
    console.log('page errors (count × text):')
    for (const [text, count] of pageErrors) console.log(`  ${count} × ${text}`)
  }
}

// ---- main --------------------------------------------------------------------------------------

const bundleDir = await mkdtemp(join(tmpdir(), 'politely-media-'))
await bundle(bundleDir)
// Every page comes from 127.0.0.1: the per-address room credit (60 a minute) would meter the bench.
const server = await startServer('politely', { newRoomsPerMinute: 1_000_000, allowedOrigins: '*' })
const signalUrl = `http://127.0.0.1:${server.port}/signal`
const pageServer = await startPageServer(bundleDir)
const sides = await Promise.all(PORT_RANGES.map(launchSide))
try {
  const rows = ROWS.filter((row) => ONLY.test(row.key))
  const why = cannotCut()
  for (const row of rows) if (row.key === 'cut' && why) row.skipped = why
  // Warm-up, not counted: the first calls of a fresh browser are slower for everyone.
  for (const lib of Object.keys(LIBS)) await attempt(`${LIBS[lib]}, warm-up`, () => startOnce(lib, 'warm-up start (not counted)'))
  const version = sides[0].context.browser()?.version()
  await measure(rows)
  print(rows, version)
} finally {
  restore()
  for (const { context, dir } of sides) {
    await context.close()
    await rm(dir, { recursive: true, force: true })
  }
  await pageServer.close()
  await server.stop()
  await rm(bundleDir, { recursive: true, force: true })
}
process.exit(0)
