import { PolitelyError } from './errors.js'
import type { CandidateInit, DescriptionMessage } from './protocol.js'

type Description = DescriptionMessage['description']

/**
 * The "ignore this offer?" decision of the W3C perfect-negotiation example
 * (webrtc-pc §10.7): an incoming offer collides when we are making an offer
 * ourselves, or are not stable (unless only our remote answer is being
 * applied); the impolite peer then ignores it (the polite one lets implicit
 * rollback take its own offer back). Positional, not an options object: it
 * runs on every description and property names would cost bytes in every bundle.
 */
export function shouldIgnoreOffer(
  type: 'offer' | 'answer',
  polite: boolean,
  makingOffer: boolean,
  signalingState: RTCSignalingState,
  isSettingRemoteAnswerPending: boolean,
): boolean {
  const readyForOffer = !makingOffer && (signalingState === 'stable' || isSettingRemoteAnswerPending)
  return !polite && type === 'offer' && !readyForOffer
}

/** What the negotiator needs from its owner. */
export interface NegotiatorHooks {
  sendDescription(description: Description): void
  error(error: PolitelyError): void
  /** Offers kept coming without the connection ever settling: it is not making progress. */
  stalled(): void
  /** A remote description, and our answer to it if it was an offer, are applied: the directions are settled. */
  negotiated(): void
  /** Our offer was answered this long (ms) after it first left. */
  sample(ms: number): void
  /** We answered a remote offer that took our own offer back (glare, polite side). */
  rolledBack(): void
  /** The signaling round trip so far (ms), or a guess before any. */
  rtt(): number
}

const MAX_BUFFERED_CANDIDATES = 256
/** Longest first wait for an answer before our offer goes again (then twice as long each time). */
const RESEND_MS = 500
/** Offers are paced by a token bucket: this many at once, then this many a second. */
const OFFER_BURST = 8
const OFFERS_PER_SECOND = 4
/** Offers less than a second apart make a storm; one that lasts this long (ms) never settles: a stall. */
const STORM_MS = 20_000

/**
 * Perfect negotiation for one RTCPeerConnection: the W3C example, plus
 * what real signaling needs (buffered early candidates, duplicate and stale
 * descriptions). It relies on argument-less `setLocalDescription()` and
 * implicit rollback; stacks without them are wrapped by `politely/legacy`.
 */
export class Negotiator {
  #makingOffer = false
  #ignoreOffer = false
  #isSettingRemoteAnswerPending = false
  #polite = false
  /** `negotiationneeded` fired while we could not act on it. */
  #needed = false
  /**
   * Offers wait until the remote is known, and on the polite side until the
   * impolite side's first offer arrived, so a fresh pair does not glare.
   */
  #hold = true
  /** The last few remote SDPs, to apply a duplicate once (bounded: a long call renegotiates often). */
  readonly #seenRemoteSdp: string[] = []
  #bufferedCandidates: CandidateInit[] = []
  /** Our offer now on its way (repeated while unanswered). */
  #offer?: Description
  /** Offers the bucket holds, and when it was last filled. */
  #tokens = OFFER_BURST
  #filled = 0
  /** When our last offer left (for a round-trip sample), and when the storm it belongs to (offers less than a second apart) began. */
  #lastOffer = 0
  #offerAt = 0
  #storm = 0
  #paced?: ReturnType<typeof setTimeout>
  /** A remote description is being applied. */
  #applying = false
  /** The remote offer we answered last, and our answer to it (sent again if the offer comes again). */
  #answered?: [string, Description]
  /** The SDP of the remote description applied last: kept, not read back from the connection (see #setLocal). */
  #remoteSdp?: string
  /** Our offer made in advance ({@link prepare}) and not set; null once anything was set, local or remote (too late for it). */
  #early?: RTCSessionDescriptionInit | null
  /** The offer made in advance is being set. */
  #settingEarly = false
  /** The offer made in advance went to the remote with a hello addressed to it: setting it sends nothing. */
  #earlyDelivered = false
  /** An answer that outran our setting of the offer it answers (the one that went with our hello). */
  #earlyAnswer?: Description

  readonly #pc: RTCPeerConnection
  readonly #hooks: NegotiatorHooks

  constructor(pc: RTCPeerConnection, hooks: NegotiatorHooks) {
    this.#pc = pc
    this.#hooks = hooks
  }

  /** Its connection was closed: nothing may be sent or reported any more. */
  get #closed(): boolean {
    return this.#pc.signalingState === 'closed'
  }

  /**
   * Makes our first offer in advance, without setting it: it travels with our
   * first hello, before we know the remote or our role, and a polite remote
   * answers it at once; if we turn out to be the impolite side, it is the offer
   * we set. One signaling trip less than offering after the remote's hello.
   * Resolves with its SDP (undefined if the stack could not make one, or too late).
   */
  prepare(): Promise<string | undefined> {
    return this.#pc.createOffer().then(
      (offer) => (this.#early === null ? undefined : (this.#early = offer).sdp),
      () => undefined,
    )
  }

  /**
   * Our offer made in advance went to the remote in a hello addressed to it (a room member, whose
   * role we know): once set, it is not sent again as a description; only a repeat goes if it
   * stays unanswered (the remote may have paired from another hello of ours and missed it).
   */
  delivered(): void {
    this.#earlyDelivered = true
  }

  /** Begins negotiating with a known remote; the polite side answers the offer that came with the remote's hello. */
  start(polite: boolean, politeWaitsForFirstOffer: boolean, offer?: string): void {
    this.#polite = polite
    this.#hold = polite && politeWaitsForFirstOffer
    if (polite && offer && this.#early !== null) void this.handleDescription({ type: 'offer', sdp: offer })
    else if (this.#needed) void this.negotiate()
  }

  /**
   * Handler for the connection's `negotiationneeded` event. Offers leave only
   * from `stable`, one at a time: some stacks (libwebrtc in Node) fire the event
   * while an offer of the remote is being answered, where an argument-less
   * `setLocalDescription()` would make an answer nobody sends. Otherwise it is
   * remembered, and acted on when the connection is stable again ({@link settled}).
   */
  async negotiate(): Promise<void> {
    const pc = this.#pc
    const wait = ((1 - this.#fill()) * 1000) / OFFERS_PER_SECOND
    if (this.#hold || this.#closed || this.#makingOffer || this.#applying || pc.signalingState !== 'stable' || wait > 0) {
      this.#needed = true
      if (wait > 0)
        this.#paced ??= setTimeout(() => {
          this.#paced = undefined
          this.settled()
        }, wait)
      return
    }
    this.#needed = false
    try {
      this.#makingOffer = true
      await this.#setLocal()
    } catch (cause) {
      // Losing the race to an incoming offer is expected; anything else is not.
      if (!this.#closed && pc.signalingState === 'stable') this.#fail('createOffer', cause)
    } finally {
      this.#makingOffer = false
    }
  }

  /** The connection is `stable` again (an answer applied or sent, a rollback): a remembered need is acted on now. */
  settled(): void {
    if (this.#needed && !this.#hold) void this.negotiate()
  }

  /** Applies a remote description (the body of the W3C example's `onmessage`). */
  async handleDescription(description: Description): Promise<void> {
    const pc = this.#pc
    // A duplicate is applied (or ignored) once, like the original.
    const seen = this.#seenRemoteSdp
    if (seen.includes(description.sdp)) {
      // The offer we answered last, again: the remote did not get our answer (see #resend).
      // The same answer once more (a remote that has it drops it as a duplicate).
      if (this.#answered?.[0] === description.sdp) this.#send(this.#answered[1])
      return
    }
    if (description.type === 'answer' && pc.signalingState !== 'have-local-offer') {
      // The answer to the offer that went with our hello can outrun our setting that offer: kept
      // until it is set. Any other answer here is stale.
      if (this.#early || this.#settingEarly) this.#earlyAnswer = description
      return
    }
    if (seen.push(description.sdp) > 8) seen.shift()
    const ignoreOffer = shouldIgnoreOffer(
      description.type,
      this.#polite,
      this.#makingOffer,
      pc.signalingState,
      this.#isSettingRemoteAnswerPending,
    )
    this.#ignoreOffer = ignoreOffer
    if (ignoreOffer) return
    // Our own offer is out or being made: applying theirs takes ours back.
    const rollback = this.#makingOffer || pc.signalingState === 'have-local-offer'
    this.#early = null
    try {
      // werift passes through `stable` inside an implicit rollback: no offer may start in there.
      this.#applying = true
      this.#isSettingRemoteAnswerPending = description.type === 'answer'
      // A colliding offer rolls ours back implicitly (polite side).
      await pc.setRemoteDescription(description)
      this.#remoteSdp = description.sdp
      this.#isSettingRemoteAnswerPending = false
      // Not without the time our offer left: the answer to the offer that went with our hello can
      // land between the stack's taking our offer (have-local-offer) and the resumption of
      // #setLocal that records it (@roamhq/wrtc, under load). `now - 0` made a 20 s round trip,
      // so every stall timeout of the peer was a minute (recovery-test flake). The hello's reply sampled that trip.
      if (description.type === 'answer' && this.#offerAt) this.#hooks.sample(Date.now() - this.#offerAt)
      if (description.type === 'offer') {
        // The browser fires `negotiationneeded` again after this answer if our side still needs it.
        this.#needed = this.#hold = false
        await this.#setLocal(description.sdp)
        if (rollback) this.#hooks.rolledBack()
      }
      // Read after the answer is applied, not at `stable`: werift updates directions only after that event.
      this.#hooks.negotiated()
      await this.#flushCandidates()
    } catch (cause) {
      this.#isSettingRemoteAnswerPending = false
      // Not applied after all: a duplicate may try again.
      seen[seen.indexOf(description.sdp)] = ''
      if (!this.#closed) this.#fail(`setRemoteDescription(${description.type})`, cause)
    } finally {
      this.#applying = false
      this.settled()
    }
  }

  /**
   * Makes the next local description and sends it, offer or answer, whatever
   * the state was when the stack made it: nothing is ever created that is not sent.
   */
  async #setLocal(offer?: string): Promise<void> {
    const pc = this.#pc
    // Our first offer is the one made in advance, if the stack still takes it (the remote may have answered it already).
    const early = this.#early
    this.#early = null
    this.#settingEarly = !!early
    // politely/legacy resolves with what it set (null: nothing), because @roamhq/wrtc's
    // localDescription getter races libwebrtc's signaling thread (see legacy.ts). Browsers resolve
    // with undefined and werift with a parsed description (no `sdp`): theirs is read.
    const set = (await (early
      ? pc.setLocalDescription(early).then(
          () => early,
          () => pc.setLocalDescription(),
        )
      : pc.setLocalDescription())) as unknown as Description | null | undefined
    this.#settingEarly = false
    const earlySet = !!early && set === early
    const local = set === null ? null : typeof set?.sdp === 'string' ? set : pc.localDescription
    // An offer that a colliding remote offer rolled back while we awaited is not sent (a fresh
    // read: the state changes under the await).
    if (!local || (local.type === 'offer' && pc.signalingState !== 'have-local-offer')) return
    // A copy: the stack adds candidates to its localDescription as it gathers them, and a repeat
    // must be the very description the remote may already have (it drops it as a duplicate).
    const made = { type: local.type, sdp: local.sdp } as Description
    if (!(earlySet && this.#earlyDelivered)) this.#send(made)
    if (made.type === 'offer') {
      const now = Date.now()
      // Offer after offer for a long while, never settling: no pace will end it, a rebuild may.
      this.#offerAt = now
      if (now - this.#lastOffer > 1000) this.#storm = now
      else if (now - this.#storm > STORM_MS) this.#hooks.stalled()
      this.#lastOffer = now
      this.#fill()
      this.#tokens--
      this.#offer = made
      // A lost offer or answer costs about one round trip: the first repeat follows two of them
      // (100 ms at least, 500 ms at most: on a slow path the answer may only be late).
      this.#resend(made, Math.min(RESEND_MS, Math.max(2 * this.#hooks.rtt(), 100)))
      const answer = this.#earlyAnswer
      this.#earlyAnswer = undefined
      if (answer && earlySet) void this.handleDescription(answer)
    }
    // Keyed by the offer as it arrived (`offer`): libwebrtc rewrites its remoteDescription.
    else this.#answered = [offer ?? (this.#remoteSdp as string), made]
  }

  /**
   * Refills the offer bucket for the time passed and returns what it holds: a
   * stack that keeps asking (werift after every remote ICE restart) cannot
   * flood signaling, and a burst of real changes still goes at once.
   */
  #fill(): number {
    const now = Date.now()
    this.#tokens = Math.min(OFFER_BURST, this.#tokens + ((now - this.#filled) * OFFERS_PER_SECOND) / 1000)
    this.#filled = now
    return this.#tokens
  }

  /** Adds a remote candidate, or keeps it until the description it belongs to is applied. */
  async handleCandidate(candidate: CandidateInit): Promise<void> {
    // End-of-candidates (Firefox sends it as an empty string) only hastens
    // failure detection, and some stacks reject it: skip it.
    if (!candidate.candidate) return
    // A candidate can outrun its description (reordering, or an ICE restart's new ufrag): keep it for later.
    const lines = this.#remoteSdp?.split(/\r?\n/)
    const ufrag = candidate.usernameFragment
    if (!lines || (ufrag && !lines.includes(`a=ice-ufrag:${ufrag}`))) {
      this.#bufferedCandidates.push(candidate)
      if (this.#bufferedCandidates.length > MAX_BUFFERED_CANDIDATES) this.#bufferedCandidates.shift()
      return
    }
    // Read before the await: the W3C example reads it after, and reports
    // failures of candidates that belonged to an offer it ignored.
    const ignoring = this.#ignoreOffer
    try {
      await this.#pc.addIceCandidate(candidate)
    } catch (cause) {
      if (!ignoring && !this.#closed) this.#fail('addIceCandidate', cause)
    }
  }

  async #flushCandidates(): Promise<void> {
    const pending = this.#bufferedCandidates
    this.#bufferedCandidates = []
    for (const candidate of pending) await this.handleCandidate(candidate)
  }

  /**
   * A lost offer, or a lost answer to it, would leave the connection waiting
   * for the stall watchdog: while our offer is unanswered, it goes again, at
   * growing intervals up to a second (or two round trips on a slow path); the
   * remote answers a repeat of an offer it already answered with that answer again.
   */
  #resend(offer: Description, wait: number): void {
    setTimeout(() => {
      if (this.#pc.signalingState !== 'have-local-offer' || this.#offer !== offer) return
      this.#send(offer)
      // Twice as long each time, but never much longer than the stall timeout's share: a second
      // loss in a row must not leave the remote without a copy for a whole stall timeout.
      this.#resend(offer, Math.min(wait * 2, Math.max(1000, 2 * this.#hooks.rtt())))
    }, wait)
  }

  #send(description: Description): void {
    if (!this.#closed) this.#hooks.sendDescription(description)
  }

  #fail(step: string, cause: unknown): void {
    this.#hooks.error(new PolitelyError('negotiation-failed', `${step} failed: ${(cause as Error)?.message}`, { cause }))
  }
}
