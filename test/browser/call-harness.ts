// The demo's video call (demo/call.js) driven from the browser suites, whichever browser shows
// it: open a page in call mode, record its media events, and tell whether media flows, read from
// the receiver's own getStats(): inbound-rtp `framesDecoded` (video) and `packetsReceived`
// (audio; `totalSamplesReceived` would go on rising while nothing arrives: it counts concealment).
import { type DemoServer, type DemoTab, demoUrl, TIMEOUT, type Transport } from './demo-harness'

export type CallMode = 'call' | 'room-call'
export type Kind = 'audio' | 'video'

/** The demo's URL for a call (`call`: two pages; `room-call`: a room). */
export const callUrl = (server: DemoServer, room: string, transport: Transport, mode: CallMode = 'call') =>
  `${demoUrl(server, room, transport)}&mode=${mode}`

/** Waits until the page's camera and microphone are sent and its peer (or room) started. */
export const callReady = (tab: DemoTab) =>
  tab.evaluate(() => (window as unknown as { demoCall: { ready: Promise<void> } }).demoCall.ready, null)

/** One media or negotiation event a page saw, as {@link record} keeps it. */
export interface Seen {
  type: string
  /** The track's kind and id (media events), the description's type (signal), the error's code. */
  kind?: string
  id?: string
  from?: string
  direction?: string
}

/**
 * Keeps the media events of the page's peer (or room) from now on, with the descriptions it
 * sent and received (`signal` of kind description: a renegotiation), errors and recoveries.
 * Again after each reload (a reloaded page is a new peer).
 */
export const record = (tab: DemoTab) =>
  tab.evaluate(() => {
    const w = window as unknown as {
      demoPeer?: { on(type: string, handler: (event: never) => void): void }
      demoRoom?: { on(type: string, handler: (event: never) => void): void }
      seen: unknown[]
    }
    const peer = (w.demoPeer ?? w.demoRoom)!
    w.seen = []
    for (const type of ['track', 'track-removed', 'track-ended'])
      peer.on(type, ({ track, from }: { track: MediaStreamTrack; from?: string }) =>
        w.seen.push({ type, kind: track.kind, id: track.id, from }),
      )
    peer.on(
      'signal',
      ({ direction, message }: { direction: string; message: { kind: string; description?: { type: string } } }) => {
        if (message.kind === 'description') w.seen.push({ type: 'description', kind: message.description?.type, direction })
      },
    )
    peer.on('error', ({ code }: { code: string }) => w.seen.push({ type: 'error', kind: code }))
    for (const type of ['reconnecting', 'reconnected', 'rebuild'])
      peer.on(type, ({ reason, from }: { reason?: string; from?: string }) => w.seen.push({ type, kind: reason, from }))
  }, null)

/** What {@link record} kept so far. */
export const seen = (tab: DemoTab): Promise<Seen[]> => tab.evaluate(() => (window as unknown as { seen: Seen[] }).seen, null)

/** The id of the remote video track the page shows for `from` (1:1: its remote), if any. */
export const shownVideo = (tab: DemoTab, from?: string): Promise<string | undefined> =>
  tab.evaluate((member) => {
    const w = window as unknown as {
      demoPeer?: { remoteId?: string }
      demoCall: { tiles: Map<string, { tracks: MediaStreamTrack[] }> }
    }
    const id = member ?? w.demoPeer?.remoteId
    return w.demoCall.tiles.get(id ?? '')?.tracks.find((track) => track.kind === 'video')?.id
  }, from ?? null)

/** What to wait for in {@link flowing}. */
export interface Flow {
  /** A room member: its link's connection (default: the peer's connection). */
  from?: string
  /** Only the inbound stream of this remote track (its id: inbound-rtp `trackIdentifier`). */
  track?: string
  /** How many inbound streams must each grow (default 1). */
  streams?: number
  /** By how much (default 10: frames for video, packets for audio). */
  more?: number
}

/**
 * Waits until media of `kind` flows into the page: the receiver's counter of `streams` inbound
 * streams grew by `more` from when this was called. Read on the connection current at each
 * poll: a stream of a connection built since then counts from 0. Fails after `timeoutMs`.
 */
export async function flowing(tab: DemoTab, kind: Kind, flow: Flow = {}, timeoutMs = TIMEOUT): Promise<void> {
  const failure = await tab.evaluate(
    async ({ kind, from, track, streams, more, timeoutMs }) => {
      const w = window as unknown as {
        demoPeer?: { connection?: RTCPeerConnection }
        demoRoom?: { connection(id: string): RTCPeerConnection | undefined }
      }
      const connections = new Map<RTCPeerConnection, number>()
      const read = async () => {
        const counts = new Map<string, number>()
        const pc = from ? w.demoRoom?.connection(from) : w.demoPeer?.connection
        if (!pc) return counts
        // Stats ids repeat across connections: a stream is named by its connection too.
        if (!connections.has(pc)) connections.set(pc, connections.size)
        for (const stats of (await pc.getStats()).values())
          if (stats.type === 'inbound-rtp' && stats.kind === kind && (!track || stats.trackIdentifier === track))
            counts.set(
              `${connections.get(pc)}/${stats.id}`,
              (kind === 'video' ? stats.framesDecoded : stats.packetsReceived) ?? 0,
            )
        return counts
      }
      const baseline = await read()
      const deadline = Date.now() + timeoutMs
      let last = baseline
      while (Date.now() < deadline) {
        last = await read()
        const grown = [...last].filter(([id, count]) => count - (baseline.get(id) ?? 0) >= more)
        if (grown.length >= streams) return undefined
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      return `baseline ${JSON.stringify([...baseline])}, last ${JSON.stringify([...last])}`
    },
    { kind, from: flow.from, track: flow.track, streams: flow.streams ?? 1, more: flow.more ?? 10, timeoutMs },
  )
  if (failure)
    throw new Error(
      `${tab.label}: ${kind}${flow.from ? ` from ${flow.from}` : ''}${flow.track ? ` on ${flow.track}` : ''} did not flow: ${failure}`,
    )
}

/** The receiver's counter of `kind` summed over the inbound streams of the current connection. */
export const received = (tab: DemoTab, kind: Kind): Promise<number> =>
  tab.evaluate(async (kind) => {
    const pc = (window as unknown as { demoPeer: { connection?: RTCPeerConnection } }).demoPeer.connection
    let total = 0
    for (const stats of pc ? (await pc.getStats()).values() : [])
      if (stats.type === 'inbound-rtp' && stats.kind === kind)
        total += (kind === 'video' ? stats.framesDecoded : stats.packetsReceived) ?? 0
    return total
  }, kind)
