// Start → data channel open under hostile signaling: the bare W3C perfect-negotiation pattern
// (webrtc-pc §10.7) vs politely, alternating in one run, over the same in-process signaling
// that delays every message by a random 0–MAX_DELAY ms (so they arrive out of order); then the
// same with DROP of the messages lost as well, where the bare pattern has nothing to repeat a
// lost one with. Delays and drops come from a seeded PRNG (SEED). Node + @roamhq/wrtc, host
// candidates only: nothing leaves the machine. politely runs twice: with its default
// (firstOffer: 'impolite': no glare at start; its first offer, made in advance, travels with its
// hello, so waiting for the polite side costs no trip) and with firstOffer: 'either', the bare
// pattern's own rule (both offer as soon as they know of each other).
//
//   npm run bench:chaos        RUNS=50 MAX_DELAY=3000 DROP=0.2 DROP_DELAY=0 CAP=20000 CONCURRENCY=5 SEED=1 npm run bench:chaos
import wrtc from '@roamhq/wrtc'
import { PerfectNegotiationPeer } from '../dist/index.mjs'
import { legacyPeerConnection } from '../dist/legacy.mjs'

const RUNS = Number(process.env.RUNS ?? 20)
const MAX_DELAY = Number(process.env.MAX_DELAY ?? 3000)
const DROP = Number(process.env.DROP ?? 0.2)
/** The delay under the drops (DROP_DELAY=0: drops alone, in order). */
const DROP_DELAY = Number(process.env.DROP_DELAY ?? MAX_DELAY)
/** A pair not open on both sides by then counts as not connected. */
const CAP = Number(process.env.CAP ?? 20_000)
/** Pairs at a time: signaling dominates, the CPU mostly idles (one pair at a time takes RUNS × 2 × ~6 s). */
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 5)
const SEED = Number(process.env.SEED ?? 1)

// libwebrtc in Node lacks argument-less setLocalDescription() and implicit rollback, which the
// W3C pattern relies on: both contenders get the same wrapper politely uses (politely/legacy).
const RTCPeerConnection = legacyPeerConnection(wrtc.RTCPeerConnection)

/** mulberry32, as in test/support/chaos.ts: a seed replays the same delays and drops. */
function prng(seed) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Two ends of one signaling path; each message (JSON, as on any wire) reaches the other end
 * after its own random delay, or never (`drop`). Each receiving end has its own seeded stream.
 */
function link(seed, { maxDelay, drop }) {
  const ends = [0, 1].map((side) => ({ handlers: new Set(), random: prng(seed * 2 + side), closed: false }))
  return ends.map((self, side) => {
    const other = ends[1 - side]
    return {
      send(message) {
        if (self.closed) return
        const raw = JSON.stringify(message)
        if (other.random() < drop) return
        setTimeout(
          () => {
            if (!other.closed) for (const handler of other.handlers) handler(raw)
          },
          Math.floor(other.random() * maxDelay),
        )
      },
      subscribe(handler) {
        self.handlers.add(handler)
        return () => self.handlers.delete(handler)
      },
      close() {
        self.closed = true
        self.handlers.clear()
      },
    }
  })
}

/**
 * The W3C example, one side: a negotiated data channel (so both sides fire negotiationneeded and
 * offer at once: glare, which the pattern resolves), nothing else added but candidate buffering.
 */
function bareSide(end, polite) {
  const pc = new RTCPeerConnection()
  const channel = pc.createDataChannel('data', { negotiated: true, id: 0 })
  const errors = []
  const report = (err) => errors.push(err?.message ?? String(err)) // the example's console.error(err)
  let makingOffer = false
  let ignoreOffer = false
  let isSettingRemoteAnswerPending = false
  // Not in the example, and the minimum it needs to survive unordered delivery: a candidate that
  // outruns its description is kept until the description is applied. Without this the pattern
  // fails under reordering: addIceCandidate() rejects every early candidate (the example logs it)
  // and it is gone; the pair then connects only where ICE finds a path from the candidates that
  // happened to arrive late enough (on one host, by peer-reflexive discovery — measured: 20 of 20
  // here, with 317 rejected candidates — and across NATs often not at all).
  let early = []

  // pc.localDescription as JSON (null, as in the example, when the wrapper found an incoming
  // offer applied while ours was being made and set none).
  const local = () => pc.localDescription && { type: pc.localDescription.type, sdp: pc.localDescription.sdp }
  pc.onicecandidate = ({ candidate }) => candidate && end.send({ candidate: candidate.toJSON() })
  pc.onnegotiationneeded = async () => {
    try {
      makingOffer = true
      await pc.setLocalDescription()
      end.send({ description: local() })
    } catch (err) {
      report(err)
    } finally {
      makingOffer = false
    }
  }
  end.subscribe(async (raw) => {
    const { description, candidate } = JSON.parse(raw)
    try {
      if (description) {
        const readyForOffer = !makingOffer && (pc.signalingState === 'stable' || isSettingRemoteAnswerPending)
        const offerCollision = description.type === 'offer' && !readyForOffer
        ignoreOffer = !polite && offerCollision
        if (ignoreOffer) return
        isSettingRemoteAnswerPending = description.type === 'answer'
        await pc.setRemoteDescription(description)
        isSettingRemoteAnswerPending = false
        if (description.type === 'offer') {
          await pc.setLocalDescription()
          end.send({ description: local() })
        }
        const buffered = early
        early = []
        for (const c of buffered) await pc.addIceCandidate(c).catch((err) => ignoreOffer || report(err))
      } else if (candidate) {
        if (!pc.remoteDescription) return void early.push(candidate)
        try {
          await pc.addIceCandidate(candidate)
        } catch (err) {
          if (!ignoreOffer) throw err
        }
      }
    } catch (err) {
      if (pc.signalingState !== 'closed') report(err)
    }
  })
  const open = new Promise((resolve) => channel.addEventListener('open', resolve))
  return {
    open,
    errors: () => errors,
    close: () => {
      end.close()
      pc.close()
    },
  }
}

function bare(seed, chaos) {
  const ends = link(seed, chaos)
  const sides = [bareSide(ends[0], true), bareSide(ends[1], false)]
  return {
    opened: Promise.all(sides.map((s) => s.open)),
    stats: () => ({ errors: [...sides[0].errors(), ...sides[1].errors()], rebuilds: 0 }),
    close: () => {
      for (const s of sides) s.close()
    },
  }
}

/** politely with its defaults (firstOffer: 'impolite'), over a signaler made of one end of the link. */
function politely(seed, chaos, extra = {}) {
  const ends = link(seed, chaos)
  let rebuilds = 0
  const errors = []
  const peers = ends.map((end) => {
    const peer = new PerfectNegotiationPeer({
      ...extra,
      RTCPeerConnection,
      signaler: { connect: async () => {}, send: end.send, subscribe: end.subscribe, close: end.close },
    })
    peer.on('rebuild', () => rebuilds++)
    peer.on('error', (error) => errors.push(error.message))
    return peer
  })
  const opened = Promise.all(peers.map((peer) => new Promise((resolve) => peer.on('open', resolve))))
  for (const peer of peers) void peer.start()
  return {
    opened,
    stats: () => ({ errors, rebuilds }),
    close: () => {
      for (const peer of peers) peer.close()
    },
  }
}

// 'either': both sides may make the first offer, as in the bare pattern (glare is resolved).
const CONTENDERS = {
  'bare W3C pattern': bare,
  politely,
  'politely, either': (seed, chaos) => politely(seed, chaos, { firstOffer: 'either' }),
}

/** One pair: start → open on both sides (ms), or undefined if not within CAP. */
async function once(make, seed, chaos) {
  const started = performance.now()
  const pair = make(seed, chaos)
  let timer
  const ms = await Promise.race([
    pair.opened.then(() => performance.now() - started),
    new Promise((resolve) => (timer = setTimeout(resolve, CAP))),
  ])
  clearTimeout(timer)
  const stats = pair.stats()
  pair.close()
  return { ms, ...stats }
}

async function pool(jobs, limit) {
  let next = 0
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]()
  }
  await Promise.all(Array.from({ length: limit }, worker))
}

const sorted = (values) => [...values].sort((a, b) => a - b)
const median = (values) => sorted(values)[Math.floor(values.length / 2)]
const p90 = (values) => sorted(values)[Math.min(values.length - 1, Math.floor(values.length * 0.9))]
const fmt = (ms) => (ms === undefined ? '-' : `${Math.round(ms)} ms`)

async function scenario(title, chaos) {
  const results = Object.fromEntries(Object.keys(CONTENDERS).map((name) => [name, []]))
  const jobs = []
  for (let run = 0; run < RUNS; run++) {
    // Alternate the order, so neither contender always starts on a quieter machine.
    const names = Object.keys(CONTENDERS)
    for (const name of run % 2 ? names.reverse() : names) {
      jobs.push(async () =>
        results[name].push({ seed: SEED * 1000 + run, ...(await once(CONTENDERS[name], SEED * 1000 + run, chaos)) }),
      )
    }
  }
  const began = performance.now()
  await pool(jobs, CONCURRENCY)
  console.log(
    `\n${title}: ${RUNS} runs each, ${CONCURRENCY} pairs at a time, ${((performance.now() - began) / 1000).toFixed(0)} s`,
  )
  const medians = {}
  for (const [name, rows] of Object.entries(results)) {
    const times = rows.flatMap((r) => (r.ms === undefined ? [] : [r.ms]))
    medians[name] = { median: median(times), p90: p90(times) }
    const rebuilt = rows.filter((r) => r.rebuilds).length
    const errors = {}
    for (const r of rows) for (const e of r.errors) errors[e] = (errors[e] ?? 0) + 1
    console.log(
      `  ${name.padEnd(17)} connected ${String(times.length).padStart(3)}/${rows.length} within ${CAP / 1000} s   ` +
        `median ${fmt(medians[name].median).padStart(8)}  p90 ${fmt(medians[name].p90).padStart(8)}` +
        (name.startsWith('politely') ? `   rebuilds ${rows.reduce((sum, r) => sum + r.rebuilds, 0)} (in ${rebuilt} runs)` : '') +
        (times.length < rows.length
          ? `   not connected: seeds ${rows.filter((r) => r.ms === undefined).map((r) => r.seed)}`
          : '') +
        (Object.keys(errors).length ? `\n    errors: ${JSON.stringify(errors)}` : ''),
    )
  }
  const b = medians['bare W3C pattern']
  for (const name of Object.keys(CONTENDERS).filter((n) => n.startsWith('politely'))) {
    const p = medians[name]
    if (b.median && p.median)
      console.log(
        `  ratio ${name} / bare: median ${(p.median / b.median).toFixed(2)}×, p90 ${(p.p90 / b.p90).toFixed(2)}× (of the runs that connected)`,
      )
  }
}

console.log(
  `Start → data channel open on both sides. Node ${process.version}, @roamhq/wrtc (libwebrtc) wrapped by politely/legacy, ` +
    `in-process signaling, seed ${SEED}.`,
)
await scenario(`0–${MAX_DELAY} ms random delay per message (unordered)`, { maxDelay: MAX_DELAY, drop: 0 })
await scenario(
  `${Math.round(DROP * 100)} % of messages dropped, ${DROP_DELAY ? `plus 0–${DROP_DELAY} ms delay` : 'the rest in order, no delay'}`,
  {
    maxDelay: DROP_DELAY,
    drop: DROP,
  },
)
process.exit(0)
