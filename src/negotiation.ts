import { PolitelyError } from './errors'
import type { CandidateInit, DescriptionMessage } from './protocol'

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
}

const MAX_BUFFERED_CANDIDATES = 256
/** First wait for an answer before our offer goes again (then twice as long each time). */
const RESEND_MS = 500

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
  /** The remote offer we answered last, and our answer to it (sent again if the offer comes again). */
  #answered?: [string, Description]

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

  /** Begins negotiating with a known remote. */
  start(polite: boolean, politeWaitsForFirstOffer: boolean): void {
    this.#polite = polite
    this.#hold = polite && politeWaitsForFirstOffer
    if (this.#needed) void this.negotiate()
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
    if (this.#hold || this.#closed || this.#makingOffer || pc.signalingState !== 'stable') {
      this.#needed = true
      return
    }
    this.#needed = false
    try {
      this.#makingOffer = true
      await pc.setLocalDescription()
      const local = pc.localDescription
      // A colliding remote offer may have rolled ours back while we awaited (a fresh read: the
      // state changed under the await, whatever the guard above narrowed it to).
      if (local?.type === 'offer' && (pc.signalingState as RTCSignalingState) === 'have-local-offer') {
        // A copy: the stack adds candidates to its localDescription as it gathers them, and a
        // repeat must be the very offer the remote may already have (it drops it as a duplicate).
        const offer: Description = { type: 'offer', sdp: local.sdp }
        this.#offer = offer
        this.#send(offer)
        this.#resend(offer, RESEND_MS)
      }
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
    if (description.type === 'answer' && pc.signalingState !== 'have-local-offer') return // stale answer
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
    try {
      this.#isSettingRemoteAnswerPending = description.type === 'answer'
      // A colliding offer rolls ours back implicitly (polite side).
      await pc.setRemoteDescription(description)
      this.#isSettingRemoteAnswerPending = false
      if (description.type === 'offer') {
        // The browser fires `negotiationneeded` again after this answer if our side still needs it.
        this.#needed = this.#hold = false
        await pc.setLocalDescription()
        const local = pc.localDescription
        if (local?.type === 'answer') {
          const answer: Description = { type: 'answer', sdp: local.sdp }
          this.#answered = [description.sdp, answer]
          this.#send(answer)
        }
      }
      await this.#flushCandidates()
    } catch (cause) {
      this.#isSettingRemoteAnswerPending = false
      // Not applied after all: a duplicate may try again.
      seen[seen.indexOf(description.sdp)] = ''
      if (!this.#closed) this.#fail(`setRemoteDescription(${description.type})`, cause)
    }
  }

  /** Adds a remote candidate, or keeps it until the description it belongs to is applied. */
  async handleCandidate(candidate: CandidateInit): Promise<void> {
    // End-of-candidates (Firefox sends it as an empty string) only hastens
    // failure detection, and some stacks reject it: skip it.
    if (!candidate.candidate) return
    // A candidate can outrun its description (reordering, or an ICE restart's new ufrag): keep it for later.
    const lines = this.#pc.remoteDescription?.sdp.split(/\r?\n/)
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
   * growing intervals (the remote answers a repeat of an offer it already
   * answered with that answer again).
   */
  #resend(offer: Description, wait: number): void {
    setTimeout(() => {
      if (this.#pc.signalingState !== 'have-local-offer' || this.#offer !== offer) return
      this.#send(offer)
      this.#resend(offer, wait * 2)
    }, wait)
  }

  #send(description: Description): void {
    if (!this.#closed) this.#hooks.sendDescription(description)
  }

  #fail(step: string, cause: unknown): void {
    this.#hooks.error(new PolitelyError('negotiation-failed', `${step} failed: ${(cause as Error)?.message}`, { cause }))
  }
}
