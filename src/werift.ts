/**
 * Makes werift (0.24, the pure-TypeScript stack for Node) fit for glare with new transceivers,
 * and for the offer politely makes in advance. Two of its shortcuts break perfect negotiation:
 *
 * - It gives a new transceiver (and the data channels' transport) its mid and m-line index when
 *   it *creates* an offer (SDPManager.buildOfferSdp), and its rollback, explicit or implicit
 *   (SDPManager.rollbackLocalDescription), keeps them. A remote offer then meets a transceiver
 *   that claims a mid it never negotiated: the remote's m-line with that mid is bound to ours,
 *   or a second transceiver gets the same mid and the answer describes the wrong one.
 * - A new transceiver takes the place, mid and m-line of any transceiver whose direction
 *   negotiated to `inactive` (TransceiverManager.addTransceiver), also for a new remote m-line
 *   while an offer is applied: "Transceiver with mid=1 not found".
 *
 * - After answering an offer that lacked one of our transceivers, it does not fire
 *   `negotiationneeded` again (it fired once, before that offer came): the transceiver is never sent.
 * - A transceiver added before the remote's BUNDLE is known gets an ICE/DTLS transport of its own
 *   (findOrCreateTransport), and keeps it when the answer or the remote's offer leaves its m-line
 *   out (the impolite side's offer made in advance has only the data channel). When an answer is
 *   set, ours or the remote's, werift starts every transport (connect()): that one has no remote
 *   parameters ("remoteParams missing"), and once the bundle is up werift reports connectionState
 *   `failed`; politely restarts ICE and renegotiates, and no RTP ever arrives.
 * - Its ICE pairs the candidates it has when an answer is set and fails at once without a pair:
 *   with trickle ICE the remote's candidates follow its answer (and a TURN allocation takes a
 *   round trip), so a relay-only connection often failed before it began.
 *
 * So before a remote offer is applied (where werift rolls back implicitly) and after an explicit
 * rollback, every mid the current local description does not hold is given up (werift never hands
 * out a mid twice), every new transceiver gets an m-line of its own, as in browsers, an answer
 * that leaves a transceiver unnegotiated is followed by `negotiationneeded`, and once the remote
 * bundles, every transceiver is on the bundle's transport (as in browsers, where an unnegotiated
 * transceiver has none); and ICE checks wait for a first candidate pair.
 *
 * @example
 * import { RTCPeerConnection } from 'werift'
 * import { weriftPeerConnection } from 'politely/legacy'
 * new PerfectNegotiationPeer({ signaler, RTCPeerConnection: weriftPeerConnection(RTCPeerConnection as unknown as typeof globalThis.RTCPeerConnection) })
 */
export function weriftPeerConnection(Base: typeof RTCPeerConnection): typeof RTCPeerConnection {
  return class WeriftPeerConnection extends Base {
    constructor(...args: ConstructorParameters<typeof RTCPeerConnection>) {
      super(...args)
      // werift gives ICE the role of every local description it sets (offer: controlling, answer:
      // controlled), and keeps it only once a pair is nominated. A renegotiation during the first
      // checks (a track offered right after the first answer, or glare) can so leave both sides
      // controlled: each then runs SCTP as the server (its role follows ICE's), no INIT is ever sent,
      // the data channels never open and the connection is rebuilt as stalled. RFC 8445: the role
      // of a negotiated ICE session stays; an ICE restart (which drops the remote credentials) may
      // assign it anew.
      const manager = (this as unknown as { secureManager: RoleSetter }).secureManager
      const setLocalRole = manager.setLocalRole.bind(manager)
      manager.setLocalRole = (options) => {
        const kept = this.currentLocalDescription
          ? manager.dtlsTransports.map(({ iceTransport: { connection } }) => [connection, connection.iceControlling] as const)
          : []
        setLocalRole(options)
        for (const [connection, controlling] of kept) if (connection.remoteUsername) connection.iceControlling = controlling
      }
      // werift's ICE (a port of aioice, which gathers everything before it connects) pairs the
      // candidates it has when the answer is set and fails at once if there is no pair yet. With
      // trickle ICE there may be none: the remote's candidates follow its answer, ours may wait
      // for a TURN allocation. Relay-only through coturn, under load, 1 connection in 3 failed
      // so and was rebuilt (7 times in a row once). Its checks start once there is a pair (a
      // connection that never gets one is the stall watchdog's).
      const self = this as unknown as { connect(): Promise<void> }
      const connect = self.connect.bind(this)
      self.connect = async () => {
        const unpaired = () =>
          manager.dtlsTransports.some(
            ({ iceTransport }) =>
              !/^(connected|completed|closed)$/.test(iceTransport.state) && !iceTransport.connection.checkList.length,
          )
        while (unpaired() && this.connectionState !== 'closed') await new Promise((resolve) => setTimeout(resolve, PAIR_POLL_MS))
        return connect()
      }
    }

    override async setLocalDescription(description?: RTCLocalSessionDescriptionInit): Promise<void> {
      const result = await super.setLocalDescription(description)
      if (description?.type === 'rollback') this.#forgetUnsetMids()
      // Back in stable with a transceiver the remote's offer did not hold: the spec fires
      // negotiationneeded again; werift, which fired it once already (before that offer came), does not.
      else if (this.signalingState === 'stable' && this.getTransceivers().some((transceiver) => transceiver.mid == null))
        setTimeout(() => this.onnegotiationneeded?.(new Event('negotiationneeded')))
      return result
    }

    override async setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void> {
      // From have-local-offer werift rolls back in here; from stable, an offer created and not set may have left mids.
      if (description.type === 'offer' && this.signalingState !== 'have-remote-offer') this.#forgetUnsetMids()
      // werift starts every transport (connect()) when the answer is set, ours or the remote's: then
      // every transceiver must be on the bundle's. A remote answer: before werift connects in there.
      this.#bundle(description.sdp)
      await super.setRemoteDescription(description)
      // A remote offer: werift created what it holds that we lacked, and our answer connects.
      this.#bundle(description.sdp)
    }

    /**
     * Puts every transceiver on the transport of the description's first m-line, where werift puts
     * those the description holds when it bundles: one it leaves out, added before the remote's
     * BUNDLE was known, would otherwise keep a transport of its own, that werift fails to start.
     */
    #bundle(sdp = ''): void {
      const transceivers = this.getTransceivers() as unknown as Claim[]
      const first = midsOf(sdp)[0]
      const bundle = [...transceivers, this.#sctp].find((claim) => claim?.mid === first)?.dtlsTransport
      if (bundle && /^a=group:BUNDLE /m.test(sdp))
        for (const transceiver of transceivers) if (transceiver.dtlsTransport !== bundle) transceiver.setDtlsTransport!(bundle)
    }

    get #sctp(): Claim | undefined {
      return (this as unknown as { sctpTransport?: Claim }).sctpTransport
    }

    override addTransceiver(...args: Parameters<RTCPeerConnection['addTransceiver']>): RTCRtpTransceiver {
      // werift's own "never take this one's place" mark, on every transceiver for the moment of the call.
      const spared = (this.getTransceivers() as unknown as Claim[]).filter((transceiver) => !transceiver.usedForSender)
      for (const transceiver of spared) transceiver.usedForSender = true
      try {
        return super.addTransceiver(...args)
      } finally {
        for (const transceiver of spared) transceiver.usedForSender = false
      }
    }

    /** Gives up the mids (and m-line indexes) that only a created or rolled-back offer handed out. */
    #forgetUnsetMids(): void {
      const mids = midsOf(this.currentLocalDescription?.sdp)
      const sctp = this.#sctp
      for (const claim of [...(this.getTransceivers() as unknown as Claim[]), ...(sctp ? [sctp] : [])]) {
        if (claim.mid == null) continue
        const index = mids.indexOf(claim.mid)
        if (index >= 0) claim.mLineIndex = index
        else {
          claim.mid = claim === sctp ? undefined : null
          claim.mLineIndex = undefined
        }
      }
    }
  }
}

/** werift's SecureTransportManager, which gives the ICE transports their roles. */
interface RoleSetter {
  dtlsTransports: Array<{
    iceTransport: {
      state: string
      connection: { iceControlling: boolean; remoteUsername?: string; checkList: unknown[] }
    }
  }>
  setLocalRole(options: object): void
}

/** How often (ms) a connect waits to see whether its ICE has a candidate pair (werift polls its checks as often). */
const PAIR_POLL_MS = 20

/** What werift's transceivers and SCTP transport expose besides the standard. */
interface Claim {
  mid?: string | null
  mLineIndex?: number
  usedForSender?: boolean
  dtlsTransport?: object
  setDtlsTransport?(transport: object): void
}

/** The mids of a description's m-sections, in order. */
function midsOf(sdp = ''): Array<string | undefined> {
  return sdp
    .split(/^m=/m)
    .slice(1)
    .map((section) => /^a=mid:(\S+)/m.exec(section)?.[1])
}
