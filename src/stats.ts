/**
 * Connection numbers without reading `getStats()`: round-trip time, bitrates, packets lost, and
 * whether the path is direct or relayed.
 *
 * @module politely/stats
 */

/**
 * Numbers about one connection, cheap enough to poll every second. A number the WebRTC stack
 * does not report is `undefined`; so is every field while there is no connection, or once it
 * is closed.
 *
 * @example
 * const { rtt, bitrateIn, candidateType }: LinkStats = await stats(peer.connection)
 * if (candidateType === 'relay') console.log('through a TURN server')
 */
export interface LinkStats {
  /** Round-trip time of the selected candidate pair (ms), if known. */
  rtt?: number
  /** Bits per second received since the previous call for this connection (undefined on the first call). */
  bitrateIn?: number
  /** Bits per second sent since the previous call for this connection (undefined on the first call). */
  bitrateOut?: number
  /** Packets lost, summed over inbound RTP streams: 0 without media, undefined without a report. */
  packetsLost?: number
  /** Type of the selected pair's local candidate (`'relay'`: through TURN), if a pair is selected. */
  candidateType?: RTCIceCandidateType
}

/** The fields read here, of any stat: each stack reports its own subset. */
interface Stat {
  type: string
  timestamp?: number
  bytesSent?: number
  bytesReceived?: number
  packetsLost?: number
  selectedCandidatePairId?: string
  selected?: boolean
  nominated?: boolean
  state?: string
  currentRoundTripTime?: number
  localCandidateId?: string
  candidateType?: RTCIceCandidateType
}

/** Byte counters by where they come from: the transports, the candidate pairs, the RTP streams. */
const SOURCES = ['transport', 'candidate-pair', 'outbound-rtp', 'inbound-rtp']

/** When the previous call's counters were read (ms since the epoch), and its bytes sent and received. */
type Sample = [at: number, sent?: number, received?: number]

// Each connection's previous sample, keyed by the connection itself: it goes with the connection
// (closed, or replaced by a rebuild), and no two connections share anything.
const previous = new WeakMap<RTCPeerConnection, Sample>()

const add = (total: number | undefined, value: unknown) => (typeof value === 'number' ? (total ?? 0) + value : total)

/**
 * The first source that counted any bytes; else 0 if one reports the field, else undefined.
 * werift 0.24's transport reports bytesSent and bytesReceived, and keeps them at 0.
 */
const bytes = (sums: (number | undefined)[]) => sums.find(Boolean) ?? sums.find((sum) => sum !== undefined)

/**
 * Reads the connection's stats once. The selected pair is the one the transport names, else the
 * one the stack marks `selected` (Firefox), else a nominated, succeeded one. Bytes come from the
 * transports, else the candidate pairs, else the RTP streams. Bitrates cover the time since the
 * previous call for this connection, by any caller; a counter that went back (the pair changed)
 * gives no bitrate that time. Never rejects: no connection, a closed one, or a stack whose
 * `getStats()` fails resolves every field `undefined`.
 *
 * @param pc `peer.connection` of a `PerfectNegotiationPeer`, `room.connection(id)` of a `Room`
 *   (both replaced on every rebuild: read them at each call), or any `RTCPeerConnection`.
 * @example
 * import { stats } from 'politely/stats'
 *
 * setInterval(async () => {
 *   const { rtt, bitrateOut } = await stats(peer.connection) // a Room: stats(room.connection(memberId))
 *   console.log(`rtt ${rtt} ms, sending ${bitrateOut} bit/s`)
 * }, 1000)
 */
export async function stats(pc: RTCPeerConnection | undefined): Promise<LinkStats> {
  try {
    // Closed: wrtc's getStats() throws, Firefox's and werift's report the last numbers, Chromium's almost nothing.
    if (!pc || pc.signalingState === 'closed') return {}
    const report = await pc.getStats()
    let at = 0
    const sent: (number | undefined)[] = []
    const received: (number | undefined)[] = []
    let packetsLost = 0
    let pairId: string | undefined
    let marked: Stat | undefined
    report.forEach((stat: Stat) => {
      const source = Math.min(SOURCES.indexOf(stat.type), 2)
      if (source < 0) return
      // When the stack read the counters: libwebrtc (Chromium, wrtc) hands out the same report again
      // for 50 ms, and the time of our call would then stretch counters that did not move.
      at = Math.max(at, stat.timestamp ?? 0)
      sent[source] = add(sent[source], stat.bytesSent)
      received[source] = add(received[source], stat.bytesReceived)
      pairId ??= stat.selectedCandidatePairId
      packetsLost = add(packetsLost, stat.packetsLost) as number
      if (source === 1 && (stat.selected ?? (stat.nominated && stat.state === 'succeeded'))) marked ??= stat
    })
    const pair: Stat | undefined = (pairId && report.get(pairId)) || marked
    const now: Sample = [(at ||= Date.now()), bytes(sent), bytes(received)]
    const last = previous.get(pc)
    previous.set(pc, now)
    const rate = (i: 1 | 2) => {
      const [count, before] = [now[i], last?.[i]]
      if (!last || count === undefined || before === undefined || count < before || at <= last[0]) return undefined
      return Math.round((8000 * (count - before)) / (at - last[0]))
    }
    const rtt = pair?.currentRoundTripTime
    return {
      rtt: typeof rtt === 'number' ? rtt * 1000 : undefined,
      bitrateIn: rate(2),
      bitrateOut: rate(1),
      packetsLost,
      candidateType: pair?.localCandidateId ? (report.get(pair.localCandidateId) as Stat | undefined)?.candidateType : undefined,
    }
  } catch {
    return {}
  }
}
