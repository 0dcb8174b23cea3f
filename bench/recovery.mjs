// Time from the peer-to-peer path being restored to data flowing again, after a cut
// of the path (UDP dropped by nftables) while signaling stays up: politely vs a bare
// libwebrtc RTCPeerConnection pair (no recovery logic: what ICE does by itself), in
// one run. Node + @roamhq/wrtc; needs root for nft. Nothing leaves the machine.
//
//   npm run bench:recovery            CUTS=3,8,20,40 npm run bench:recovery
import { execFileSync } from 'node:child_process'
import wrtc from '@roamhq/wrtc'
import { BroadcastChannelSignaler, PerfectNegotiationPeer } from '../dist/index.mjs'
import { legacyPeerConnection } from '../dist/legacy.mjs'
import { ReliablePeer } from '../dist/reliable.mjs'

const CUTS = (process.env.CUTS ?? '3,8,20,40').split(',').map(Number)
const GIVE_UP_MS = 60_000
const TICK_MS = 20
// Below Linux's ephemeral ports: no other socket of the machine can be caught by the cut.
const PORTS = { min: 21000, max: 21099 }
const TABLE = `politely_bench_${process.pid}`

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
function cut() {
  const ports = `${PORTS.min}-${PORTS.max}`
  const chain = (hook) =>
    `chain ${hook} {\n type filter hook ${hook} priority 0; policy accept;\n udp sport ${ports} drop\n udp dport ${ports} drop\n }`
  execFileSync('nft', ['-f', '-'], { input: `table inet ${TABLE} {\n${chain('input')}\n${chain('output')}\n}\n` })
}
function restore() {
  try {
    execFileSync('nft', ['delete', 'table', 'inet', TABLE], { stdio: 'ignore' })
  } catch {}
}
process.on('exit', restore)
process.on('SIGINT', () => process.exit(130))

const RTCPeerConnection = legacyPeerConnection(wrtc.RTCPeerConnection)
// libwebrtc moves to ICE-TCP when UDP is cut (its active TCP side uses ports outside the range):
// TCP candidates never leave, so the cut is a cut.
const isTcp = (candidate) => / tcp /i.test(candidate?.candidate ?? '')

/** politely (or politely/reliable): a → b over BroadcastChannel; `a` is the one whose ports get cut. */
async function politelyPair(Peer = PerfectNegotiationPeer) {
  const room = `bench-${Math.random().toString(36).slice(2)}`
  const signaler = () => {
    const inner = new BroadcastChannelSignaler({ room })
    return {
      connect: (id, events) => inner.connect(id, events),
      subscribe: (handler) => inner.subscribe(handler),
      close: () => inner.close(),
      send: (message) => (message.kind === 'candidate' && isTcp(message.candidate) ? undefined : inner.send(message)),
    }
  }
  const a = new Peer({ signaler: signaler(), RTCPeerConnection, rtcConfig: { portRange: PORTS } })
  const b = new Peer({ signaler: signaler(), RTCPeerConnection })
  const opened = (peer) => new Promise((resolve) => peer.on('open', resolve))
  const both = Promise.all([opened(a), opened(b)])
  await Promise.all([a.start(), b.start()])
  await both
  const how = []
  a.on('reconnecting', ({ reason, attempt }) => how.push(`${attempt}:${reason}`))
  a.on('rebuild', () => how.push('rebuild'))
  return {
    send: (text) => a.send(text),
    onMessage: (handler) => b.on('message', ({ data }) => handler(data)),
    how: () => (how.includes('rebuild') ? 'rebuilt' : how.length ? 'ICE restart' : 'ICE alone'),
    close: () => {
      a.close()
      b.close()
    },
  }
}

/** A bare pair, wired directly, one ordered channel: what ICE and SCTP do with no help. */
async function rawPair() {
  const a = new wrtc.RTCPeerConnection({ portRange: PORTS })
  const b = new wrtc.RTCPeerConnection()
  a.onicecandidate = ({ candidate }) => candidate && !isTcp(candidate) && b.addIceCandidate(candidate).catch(() => {})
  b.onicecandidate = ({ candidate }) => candidate && !isTcp(candidate) && a.addIceCandidate(candidate).catch(() => {})
  const channel = a.createDataChannel('bench', { negotiated: true, id: 0 })
  const remote = b.createDataChannel('bench', { negotiated: true, id: 0 })
  const open = new Promise((resolve) => remote.addEventListener('open', resolve))
  await a.setLocalDescription(await a.createOffer())
  await b.setRemoteDescription(a.localDescription)
  await b.setLocalDescription(await b.createAnswer())
  await a.setRemoteDescription(b.localDescription)
  await open
  return {
    send: (text) => channel.readyState === 'open' && channel.send(text),
    onMessage: (handler) => remote.addEventListener('message', ({ data }) => handler(data)),
    how: () => `ICE ${a.iceConnectionState}`,
    close: () => {
      a.close()
      b.close()
    },
  }
}

async function measure(make, cutMs) {
  const pair = await make()
  let sent = 0
  let received = 0
  let restoredAt = 0
  let flowingAt = 0
  pair.onMessage(() => {
    received++
    if (restoredAt && !flowingAt) flowingAt = performance.now()
  })
  let refused = 0
  const ticker = setInterval(() => {
    try {
      pair.send(`${sent + 1}`)
      sent++
    } catch {
      // politely's queue is full (a long cut, channels closed): refused, not lost.
      refused++
    }
  }, TICK_MS)
  try {
    await sleep(500)
    cut()
    await sleep(cutMs)
    restore()
    restoredAt = performance.now()
    for (const deadline = restoredAt + GIVE_UP_MS; !flowingAt && performance.now() < deadline; ) await sleep(10)
    await sleep(1000)
    return { ms: flowingAt ? flowingAt - restoredAt : undefined, how: pair.how(), sent, received, refused }
  } finally {
    clearInterval(ticker)
    restore()
    pair.close()
  }
}

console.log(`Path restored → data flowing. A sends a message every ${TICK_MS} ms; A's UDP ports are dropped by nftables for the cut,
signaling stays up. Node ${process.version}, @roamhq/wrtc (libwebrtc), 127.0.0.1 / host candidates only. Goal: ≤ 2 s.\n`)
const rows = []
for (const cutMs of CUTS.map((s) => s * 1000)) {
  for (const [name, make] of [
    ['politely', () => politelyPair()],
    ['politely/reliable', () => politelyPair(ReliablePeer)],
    ['bare RTCPeerConnection pair', rawPair],
  ]) {
    const result = await measure(make, cutMs)
    rows.push({ name, cutMs, ...result })
    console.log(
      `cut ${String(cutMs / 1000).padStart(3)} s  ${name.padEnd(28)} ${result.ms === undefined ? `not back in ${GIVE_UP_MS / 1000} s` : `${(result.ms / 1000).toFixed(2)} s`.padStart(8)}   (${result.how}; ${result.received} of ${result.sent} messages arrived${result.refused ? `, ${result.refused} refused: queue full` : ''})`,
    )
  }
}
process.exit(0)
