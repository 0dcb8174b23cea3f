// Rooms in headless Chromium: politely's Room vs y-webrtc 10.3's rooms, side by side in one run.
//
//   1. Time to full mesh for N = 2, 4, 6, 8: from the moment every (already loaded) page is told
//      to join until every link carried a probe message over its data channel, both ways.
//      (a) one browser context: politely over BroadcastChannel, y-webrtc over its own signaling
//          server with filterBcConns: false (else it syncs those pages over its BroadcastChannel
//          and makes no WebRTC connection at all);
//      (b) one context per page: politely over its reference server (WebSocket), y-webrtc over
//          its own signaling server.
//      Next to it, a politely PerfectNegotiationPeer pair in the same setting (start → first
//      message both ways), so "full mesh / 1:1" says what the mesh costs over one link.
//      In every scenario, the floor: hand-written WebRTC with no library (raw() in bench/mesh.html)
//      over a bare relay (bench/server-runner.mjs floor-room) or a BroadcastChannel, so "raw /
//      y-webrtc" says how far under y-webrtc any library could get on this machine.
//   2. Reload: a mesh of 6 is up; one page reloads (it comes back as a new member); from the
//      reload() until every link of the mesh carried a probe again (the 5 surviving members
//      probe each other again at that moment; the reloaded one probes as its links open).
//   3. Late joiner: a mesh of 5 is up; a 6th (loaded) page joins; from its start until each of
//      its 5 links carried a probe both ways.
//
// Each member is a page, bench/mesh.html, loaded (library parsed) before its clock starts. politely's
// links are checked with room.send(probe, { to }) on 'peer-join' and its 'message' event; y-webrtc's
// on its room's webrtcConns: our own 'connect' and 'data' listeners on each conn's simple-peer
// instance send and pick out a probe that y-webrtc's own handler ignores. A failed run prints how
// far it got, with the library's own count of open links (and, for y-webrtc, how many of them
// carried its own Yjs sync). Times are Date.now() in the pages against Date.now() here (one clock).
// Medians and p90 over RUNS runs, contenders alternating; a run not done within CAP counts as
// failed (shown, never asserted). Nothing leaves the machine: pages, the y-webrtc bundle (built
// with vite into a temp dir at start), politely's reference server and y-webrtc's bin/server.js
// (each a child process of its own, via bench/server-runner.mjs) are all on 127.0.0.1, with no
// ICE servers; any request elsewhere is counted and printed.
//
//   npm run bench:mesh            (builds first)      RUNS=10 CAP=30000 npm run bench:mesh
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'vite'
import { listen, serveStatic } from '../dist/server.mjs'
import { launchChromium, offMachine, pageErrors, watch } from './chromium.mjs'
import { startServer } from './relay.mjs'

const RUNS = Number(process.env.RUNS ?? 5)
const CAP = Number(process.env.CAP ?? 30_000)
const SIZES = [2, 4, 6, 8]
/** ONLY='separate.*late' runs the rows whose "setting scenario" matches (all by default). */
const ONLY = new RegExp(process.env.ONLY ?? '')
const ROOT = new URL('..', import.meta.url).pathname
/**
 * TRACE=1 prints, for every run (mesh, reload, late joiner), each page's timeline (signals, states, probes, the main
 * thread's long tasks) from its start; with LAG=ms the servers print their event-loop stalls longer than that;
 * TRACE=phases prints, per politely reload, only where the reloaded page's time went (medians at the end).
 */
const TRACE = process.env.TRACE
/** How long a mesh is left up before a reload or a late join (ms). */
const SETTLE = Number(process.env.SETTLE ?? 1000)
/** With TRACE=1: only the runs slower than this (ms) are printed. */
const TRACE_OVER = Number(process.env.TRACE_OVER ?? 0)
/** CONTENDERS=room runs only politely's rows (comparing two builds of it); all by default. */
const CONTENDERS = new RegExp(process.env.CONTENDERS ?? '')

const SETTINGS = {
  shared: { label: 'one context', transport: 'broadcast', separate: false },
  separate: { label: 'separate contexts', transport: 'websocket', separate: true },
}
const LIBS = { room: 'politely', ywebrtc: 'y-webrtc', pair: 'politely 1:1', raw: 'raw WebRTC' }

const sorted = (values) => [...values].sort((a, b) => a - b)
const median = (values) => (values.length ? sorted(values)[Math.floor(values.length / 2)] : undefined)
const p90 = (values) => (values.length ? sorted(values)[Math.min(values.length - 1, Math.floor(values.length * 0.9))] : undefined)
const fmt = (ms) => (ms === undefined ? '-' : `${Math.round(ms)} ms`)
const ratio = (a, b) => (a === undefined || b === undefined ? '-' : `${(a / b).toFixed(2)}×`)

// ---- setup: the y-webrtc bundle, the servers, the browser -----------------------------------

/**
 * Each contender's code as one browser ES module, built the same way (vite, minified) into a temp
 * dir (not the repo), as an app would ship it: a reloaded page loads one file for either. The
 * entries are virtual modules resolved from the repo root: politely from its build (dist/, with
 * mitt from node_modules), y-webrtc and yjs from node_modules. y-webrtc imports simple-peer's
 * prebuilt browser bundle (simplepeer.min.js), which carries its own Buffer/process/events shims:
 * `global` is the one Node global left to define.
 */
const BUNDLES = {
  'ywebrtc.js':
    "import * as Y from 'yjs'\nimport { WebrtcProvider } from 'y-webrtc'\nwindow.Y = Y\nwindow.WebrtcProvider = WebrtcProvider\n",
  'politely.js':
    ['index', 'room', 'websocket']
      .map((entry, i) => `import * as m${i} from '${join(ROOT, 'dist', `${entry}.mjs`)}'\n`)
      .join('') + 'window.Politely = { ...m0, ...m1, ...m2 }\n',
}

async function bundle(outDir, fileName) {
  const entry = `\0entry-${fileName}`
  await build({
    root: ROOT,
    configFile: false,
    logLevel: 'warn',
    define: { global: 'globalThis' },
    plugins: [
      {
        name: 'bench-entry',
        resolveId: (id) => (id === 'bench-entry' ? entry : null),
        load: (id) => (id === entry ? BUNDLES[fileName] : null),
      },
    ],
    build: {
      outDir,
      emptyOutDir: false,
      copyPublicDir: false,
      rolldownOptions: { input: 'bench-entry', output: { format: 'es', entryFileNames: fileName } },
    },
  })
}

/** The pages, the builds, mitt and the y-webrtc bundle, on one loopback port. */
async function startPageServer(bundleDir) {
  const files = serveStatic({
    '/': join(ROOT, 'bench'),
    '/bundles/': bundleDir,
  })
  const server = createServer(files)
  const port = await listen(server, 0, '127.0.0.1')
  return {
    url: `http://127.0.0.1:${port}/`,
    async close() {
      server.closeAllConnections()
      await new Promise((done) => server.close(done))
    },
  }
}

// ---- members: pages in contexts, joined and checked -----------------------------------------

let rooms = 0

/** `n` loaded, not yet joined pages of one new room: in one context, or one context each. */
async function openMembers(lib, setting, n) {
  const room = `mesh-${lib}-${process.pid}-${++rooms}`
  const query = new URLSearchParams({
    lib,
    room,
    transport: setting.transport,
    ysignal: ySignalUrl,
    psignal: pSignalUrl,
    rsignal: rSignalUrl,
  })
  if (TRACE) query.set('trace', '1')
  const contexts = []
  const pages = []
  for (let i = 0; i < n; i++) {
    if (setting.separate || !contexts.length) contexts.push(await browser.newContext())
    const page = await contexts.at(-1).newPage()
    watch(page, LIBS[lib])
    pages.push(page)
  }
  await Promise.all(pages.map((page) => page.goto(`${pageServer.url}mesh.html?${query}`)))
  // The library is loaded and parsed before the clock starts.
  await Promise.all(pages.map((page) => page.waitForFunction(() => window.mesh.loaded, null, { timeout: CAP, polling: 20 })))
  // Closing the contexts ends every connection of the run: nothing carries over to the next.
  return { pages, close: () => Promise.all(contexts.map((context) => context.close())) }
}

/** Joins each page (all at once); their member ids, in order. */
const joinAll = (pages) => Promise.all(pages.map((page) => page.evaluate(() => window.mesh.start())))

/** When `page` had heard from every one of `ids` at or after `since` (its latest first probe). */
async function heardAll(page, ids, since) {
  const arg = { ids, since }
  await page.waitForFunction(({ ids, since }) => ids.every((id) => window.mesh.heard[id]?.some((t) => t >= since)), arg, {
    timeout: CAP,
    polling: 50,
  })
  return page.evaluate(({ ids, since }) => Math.max(...ids.map((id) => window.mesh.heard[id].find((t) => t >= since))), arg)
}

/** Runs that failed, and how far they got: printed at the end. */
const failures = []

/** ms from `since` until every [page, ids] expectation was met; undefined past CAP (noted in `failures`). */
async function linksUp(expectations, since, label) {
  try {
    const times = await Promise.all(expectations.map(([page, ids]) => heardAll(page, ids, since)))
    return Math.max(...times) - since
  } catch {
    failures.push(`${label}: ${(await Promise.all(expectations.map(([page, ids]) => progress(page, ids, since)))).join(', ')}`)
    return undefined
  }
}

/** "heard k/m, open l": how many of `ids` a page heard since `since`, and its open links by the library's own count. */
const progress = (page, ids, since) =>
  page
    .evaluate(
      ({ ids, since }) =>
        `heard ${ids.filter((id) => window.mesh.heard[id]?.some((t) => t >= since)).length}/${ids.length}, open ${window.mesh.openLinks?.()}`,
      { ids, since },
    )
    .catch((error) => `unreadable (${error.message.split('\n')[0]})`)

/** Every page hears every other: each link carried a probe both ways. */
const fullMesh = (pages, ids) => pages.map((page, i) => [page, ids.filter((_, j) => j !== i)])

/**
 * The mesh is up (any time since it started), and has been for SETTLE ms: the setup of the reload
 * and late-joiner runs, not timed. A reload or a join happens to a mesh in use, not one still
 * forming: on 2 cores, the pages just made are still busy for a while (and the processes of the
 * last run's closed contexts still going), and either contender's clock would start in that.
 */
async function meshUp(pages, ids, label) {
  if ((await linksUp(fullMesh(pages, ids), 0, `${label} (setup)`)) === undefined) return false
  await new Promise((resolve) => setTimeout(resolve, SETTLE))
  return true
}

// ---- the scenarios: one run each, ms or undefined -------------------------------------------

async function meshOnce(lib, setting, n) {
  const { pages, close } = await openMembers(lib, setting, n)
  try {
    const since = Date.now()
    const ids = await joinAll(pages)
    const label = `${LIBS[lib]}, ${setting.label}, N=${n}`
    const ms = await linksUp(fullMesh(pages, ids), since, label)
    if (TRACE && TRACE !== 'phases' && !(ms < TRACE_OVER)) await printTrace(`${label}: ${fmt(ms)}`, pages, ids, since)
    return ms
  } finally {
    await close()
  }
}

const RELOADED = 2

async function reloadOnce(lib, setting) {
  const label = `${LIBS[lib]}, ${setting.label}, reload`
  const { pages, close } = await openMembers(lib, setting, 6)
  try {
    const ids = await joinAll(pages)
    if (!(await meshUp(pages, ids, label))) return undefined
    const since = Date.now()
    const survivors = pages.filter((_, i) => i !== RELOADED)
    // The survivors' links to each other must carry a message again too: they probe now.
    await Promise.all([pages[RELOADED].reload(), ...survivors.map((page) => page.evaluate(() => window.mesh.probeAll()))])
    // The reloaded page joins by itself (mesh.html); its new id once it has one.
    ids[RELOADED] = await (await pages[RELOADED].waitForFunction(() => window.mesh.id, null, { timeout: CAP })).jsonValue()
    const ms = await linksUp(fullMesh(pages, ids), since, label)
    if (TRACE === 'phases') await notePhases(lib, pages[RELOADED], since, ms)
    else if (TRACE && !(ms < TRACE_OVER)) await printTrace(`${label}: ${fmt(ms)}`, pages, ids, since)
    return ms
  } catch (error) {
    failures.push(`${label}: ${error.message.split('\n')[0]}`)
    return undefined
  } finally {
    await close()
  }
}

async function lateJoinOnce(lib, setting) {
  const label = `${LIBS[lib]}, ${setting.label}, late joiner`
  const { pages, close } = await openMembers(lib, setting, 6)
  try {
    const members = pages.slice(0, 5)
    const ids = await joinAll(members)
    if (!(await meshUp(members, ids, label))) return undefined
    const since = Date.now()
    const [joinerId] = await joinAll([pages[5]])
    // The joiner's expectation first: a failure then reads "joiner, member 1, …, member 5".
    const ms = await linksUp([[pages[5], ids], ...members.map((page) => [page, [joinerId]])], since, label)
    if (TRACE) await printTrace(`${label}: ${fmt(ms)}`, pages, [...ids, joinerId], since)
    return ms
  } finally {
    await close()
  }
}

/** Every page's trace since `since` (ms from it), merged, member ids shown as m0…m5. */
async function printTrace(title, pages, ids, since) {
  const names = (text) => ids.reduce((out, id, i) => out.replaceAll(id, `m${i}`), text)
  const lines = []
  for (const [i, page] of pages.entries()) {
    const trace = await page.evaluate(() => window.mesh.trace).catch(() => [])
    for (const [at, what] of trace) if (at >= since - 5) lines.push([at - since, `m${i} ${names(what)}`])
  }
  console.log(`\n${title} (since ${since})`)
  for (const [ms, what] of lines.sort((a, b) => a[0] - b[0])) console.log(`${String(ms).padStart(6)}  ${what}`)
}

/** The reloaded page's milestones, ms from the reload: the first of each (the last, for `done`). */
const PHASES = {
  script: /^script$/,
  loaded: /^loaded$/,
  'signaling up': /^signaling up$/,
  'offer in': /^in (hello\+offer|description)/,
  'answer out': /^out description/,
  joined: /^join /,
}
const phaseTimes = {}

async function notePhases(lib, page, since, ms) {
  const trace = await page.evaluate(() => window.mesh.trace).catch(() => [])
  const row = {}
  for (const [name, pattern] of Object.entries(PHASES)) {
    const times = trace.filter(([at, what]) => at >= since && pattern.test(what)).map(([at]) => at - since)
    if (times.length) row[name] = `${Math.min(...times)}-${Math.max(...times)}`
    for (const [key, value] of [
      [`${name} first`, Math.min(...times)],
      [`${name} last`, Math.max(...times)],
    ])
      if (times.length) ((phaseTimes[lib] ??= {})[key] ??= []).push(value)
  }
  console.log(
    `${LIBS[lib]} reload ${fmt(ms)}: ${Object.entries(row)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  )
}

function printPhases() {
  for (const [lib, phases] of Object.entries(phaseTimes))
    console.log(
      `${LIBS[lib]} reload phases (median ms from reload()): ${Object.entries(phases)
        .map(([k, v]) => `${k} ${median(v)}`)
        .join(', ')}`,
    )
}

// ---- running and printing -------------------------------------------------------------------

/** Rows of the table: a name, and per contender what one run of it does. */
function rows() {
  const list = []
  for (const [key, setting] of Object.entries(SETTINGS)) {
    list.push({ setting: key, what: '1:1', runs: { pair: () => meshOnce('pair', setting, 2) } })
    for (const n of SIZES) {
      list.push({
        setting: key,
        what: `mesh N=${n}`,
        n,
        runs: {
          room: () => meshOnce('room', setting, n),
          ywebrtc: () => meshOnce('ywebrtc', setting, n),
          raw: () => meshOnce('raw', setting, n),
        },
      })
    }
    list.push({
      setting: key,
      what: 'reload, N=6',
      runs: {
        room: () => reloadOnce('room', setting),
        ywebrtc: () => reloadOnce('ywebrtc', setting),
        raw: () => reloadOnce('raw', setting),
      },
    })
    list.push({
      setting: key,
      what: 'late joiner, 5+1',
      runs: {
        room: () => lateJoinOnce('room', setting),
        ywebrtc: () => lateJoinOnce('ywebrtc', setting),
        raw: () => lateJoinOnce('raw', setting),
      },
    })
  }
  return list.filter((row) => ONLY.test(`${row.setting} ${row.what}`))
}

/** RUNS runs of every row, one at a time (2 cores: meshes of 8 must not overlap), contenders alternating. */
async function measure(list) {
  for (const row of list) {
    row.results = Object.fromEntries(Object.keys(row.runs).map((lib) => [lib, []]))
    for (let run = 0; run < RUNS; run++) {
      const libs = Object.keys(row.runs).filter((lib) => CONTENDERS.test(lib))
      // Alternate the order, so neither contender always runs on a warmer browser.
      for (const lib of run % 2 ? libs.reverse() : libs) row.results[lib].push(await row.runs[lib]())
    }
    process.stderr.write(`  ${SETTINGS[row.setting].label}, ${row.what}: done\n`)
  }
}

function summary(values) {
  const ok = values.filter((v) => v !== undefined)
  return { median: median(ok), p90: p90(ok), ok: `${ok.length}/${values.length}` }
}

function print(list) {
  const pad = (text, width) => String(text).padStart(width)
  console.log(
    `\nRooms in headless Chromium (${browser.version()}), ${RUNS} runs per cell, failed = not done within ${CAP / 1000} s.`,
  )
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const mine = list.filter((row) => row.setting === key)
    if (!mine.length) continue
    const signaling =
      setting.transport === 'broadcast'
        ? 'politely over BroadcastChannel, y-webrtc over its server (filterBcConns: false)'
        : 'politely over its reference server (WebSocket), y-webrtc over its server'
    console.log(`\n${setting.label}: ${signaling}`)
    console.log(
      `  ${'scenario'.padEnd(17)}${pad('politely', 10)}${pad('p90', 9)}${pad('ok', 6)}` +
        `${pad('y-webrtc', 10)}${pad('p90', 9)}${pad('ok', 6)}${pad('raw', 10)}${pad('ok', 6)}` +
        `${pad('pol/y-w', 9)}${pad('raw/y-w', 9)}${pad('pol/raw', 9)}${pad('pol mesh/1:1', 14)}${pad('y-w mesh/1:1', 14)}`,
    )
    const oneToOne = summary(mine.find((row) => row.what === '1:1')?.results.pair ?? [])
    for (const row of mine) {
      const p = summary(row.results.room ?? row.results.pair)
      const y = row.results.ywebrtc ? summary(row.results.ywebrtc) : undefined
      const r = row.results.raw ? summary(row.results.raw) : undefined
      const label = row.what === '1:1' ? '1:1 (PNPeer pair)' : row.what
      console.log(
        `  ${label.padEnd(17)}${pad(fmt(p.median), 10)}${pad(fmt(p.p90), 9)}${pad(p.ok, 6)}` +
          (y ? `${pad(fmt(y.median), 10)}${pad(fmt(y.p90), 9)}${pad(y.ok, 6)}` : ' '.repeat(25)) +
          (r ? `${pad(fmt(r.median), 10)}${pad(r.ok, 6)}` : ' '.repeat(16)) +
          (y
            ? `${pad(ratio(p.median, y.median), 9)}${pad(ratio(r?.median, y.median), 9)}${pad(ratio(p.median, r?.median), 9)}`
            : ' '.repeat(27)) +
          (row.n ? `${pad(ratio(p.median, oneToOne.median), 14)}${pad(ratio(y?.median, oneToOne.median), 14)}` : ''),
      )
    }
  }
  console.log(`
  pol/y-w: politely median / y-webrtc median (below 1: politely faster).
  raw: the floor, hand-written WebRTC with no library over a bare relay (separate contexts) or a
  BroadcastChannel (one context), the lower id of each pair offering at once (bench/mesh.html):
  raw/y-w is the least any library's ratio to y-webrtc can be on this machine; pol/raw what politely
  costs over it.
  mesh/1:1: that contender's full-mesh median / the politely pair's 1:1 median in the same setting.
  mesh: start → every link carried a probe both ways. reload: reload() → every link of the 6 carried
  a probe again (page load included). late joiner: its start → its 5 links carried a probe both ways.`)
  console.log(
    `\nrequests off 127.0.0.1: ${offMachine.length}${offMachine.length ? ` (${[...new Set(offMachine)].join(', ')})` : ''}`,
  )
  if (failures.length) {
    console.log('failed runs (per page, joiner first: probes heard since the start, and open links as the library counts them):')
    for (const failure of failures) console.log(`  ${failure}`)
  }
  if (pageErrors.size) {
    console.log('page errors (count × text):')
    for (const [text, count] of pageErrors) console.log(`  ${count} × ${text}`)
  }
}

// ---- main -----------------------------------------------------------------------------------

const bundleDir = await mkdtemp(join(tmpdir(), 'politely-mesh-'))
for (const fileName of Object.keys(BUNDLES)) await bundle(bundleDir, fileName)
// y-webrtc's own bin/server.js, in a process of its own, pinned to 127.0.0.1 and a free port (bench/server-runner.mjs).
const yServer = await startServer('y-webrtc')
const ySignalUrl = `ws://127.0.0.1:${yServer.port}`
// politely's reference server likewise in a process of its own (the same footing as y-webrtc's:
// not sharing a core with this script and Playwright). Every page comes from 127.0.0.1: the
// per-address room credit (60 a minute) would meter the bench; the pages' origin is another port.
const pServer = await startServer('politely', { newRoomsPerMinute: 1_000_000, allowedOrigins: '*' })
const pSignalUrl = `http://127.0.0.1:${pServer.port}/signal`
// The floor's bare relay (raw WebRTC, separate contexts), likewise.
const rServer = await startServer('floor-room')
const rSignalUrl = `ws://127.0.0.1:${rServer.port}`
const pageServer = await startPageServer(bundleDir)
const browser = await launchChromium()
try {
  // Warm-up, not counted: the first pages of a fresh browser are slower for everyone.
  for (const lib of ['room', 'ywebrtc', 'pair', 'raw'])
    for (const setting of Object.values(SETTINGS)) await meshOnce(lib, setting, 2)
  const list = rows()
  await measure(list)
  print(list)
  printPhases()
} finally {
  await browser.close()
  await pageServer.close()
  await yServer.stop()
  await pServer.stop()
  await rServer.stop()
  await rm(bundleDir, { recursive: true, force: true })
}
process.exit(0)
