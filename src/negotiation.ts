import { PolitelyError } from './errors'
import type { CandidateInit, DescriptionMessage } from './protocol'

type Description = DescriptionMessage['description']

/**
 * The "ignore this offer?" decision of the W3C perfect-negotiation example
 * (webrtc-pc §10.7): an incoming offer collides when we are making an offer
 * ourselves, or are not stable (unless only our remote answer is being
 * applied); the impolite peer then ignores it, the polite one rolls back.
 * Positional, not an options object: it runs on every description and
 * its property names would cost bytes in every bundle.
 */
export function decideCollision(
  type: 'offer' | 'answer',
  polite: boolean,
  makingOffer: boolean,
  signalingState: RTCSignalingState,
  isSettingRemoteAnswerPending: boolean,
): { offerCollision: boolean; ignoreOffer: boolean } {
  const readyForOffer = !makingOffer && (signalingState === 'stable' || isSettingRemoteAnswerPending)
  const offerCollision = type === 'offer' && !readyForOffer
  return { offerCollision, ignoreOffer: !polite && offerCollision }
}

/**
 * What a WebRTC stack can do, learnt by trying once per peer. Older Safari
 * and the libwebrtc binding for Node have neither argument-less
 * `setLocalDescription()` nor implicit rollback.
 */
export interface StackQuirks {
  argumentlessSld?: boolean
  implicitRollback?: boolean
}

/** What the negotiator needs from its owner. */
export interface NegotiatorHooks {
  sendDescription(description: Description): void
  error(error: PolitelyError): void
}

const MAX_BUFFERED_CANDIDATES = 256

/**
 * Perfect negotiation for one RTCPeerConnection: the W3C example, plus
 * what real signaling needs (buffered early candidates, duplicate and stale
 * descriptions, stacks without implicit rollback).
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

  readonly #pc: RTCPeerConnection
  readonly #quirks: StackQuirks
  readonly #hooks: NegotiatorHooks

  constructor(pc: RTCPeerConnection, quirks: StackQuirks, hooks: NegotiatorHooks) {
    this.#pc = pc
    this.#quirks = quirks
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

  /** Handler for the connection's `negotiationneeded` event. */
  async negotiate(): Promise<void> {
    if (this.#hold || this.#closed) {
      this.#needed = true
      return
    }
    this.#needed = false
    const pc = this.#pc
    try {
      this.#makingOffer = true
      await this.#setLocal('offer')
      const local = pc.localDescription
      // A colliding remote offer may have rolled ours back while we awaited.
      if (local?.type === 'offer' && pc.signalingState === 'have-local-offer') this.#send(local)
    } catch (cause) {
      // Losing the race to an incoming offer is expected; anything else is not.
      if (!this.#closed && pc.signalingState === 'stable') this.#fail('createOffer', cause)
    } finally {
      this.#makingOffer = false
    }
  }

  /** Applies a remote description (the body of the W3C example's `onmessage`). */
  async handleDescription(description: Description): Promise<void> {
    const pc = this.#pc
    // A duplicate is applied (or ignored) once, like the original.
    const seen = this.#seenRemoteSdp
    if (seen.includes(description.sdp)) return
    if (description.type === 'answer' && pc.signalingState !== 'have-local-offer') return // stale answer
    if (seen.push(description.sdp) > 8) seen.shift()
    const { offerCollision, ignoreOffer } = decideCollision(
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
      await this.#setRemote(description, offerCollision)
      this.#isSettingRemoteAnswerPending = false
      if (description.type === 'offer') {
        // The browser fires `negotiationneeded` again after this answer if our side still needs it.
        this.#needed = this.#hold = false
        await this.#setLocal('answer')
        const local = pc.localDescription
        if (local?.type === 'answer') this.#send(local)
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

  async #setLocal(type: 'offer' | 'answer'): Promise<void> {
    const pc = this.#pc
    if (this.#quirks.argumentlessSld !== false) {
      try {
        await pc.setLocalDescription()
        this.#quirks.argumentlessSld = true
        return
      } catch (error) {
        if (this.#quirks.argumentlessSld || (error as Error)?.name !== 'TypeError') throw error
        this.#quirks.argumentlessSld = false
      }
    }
    const description = type === 'offer' ? await pc.createOffer() : await pc.createAnswer()
    // Our offer lost the race to an incoming one while it was being created.
    if (type === 'offer' && pc.signalingState !== 'stable') return
    await pc.setLocalDescription(description)
  }

  async #setRemote(description: Description, offerCollision: boolean): Promise<void> {
    const pc = this.#pc
    const collided = offerCollision && description.type === 'offer'
    const rollBack = () => pc.setLocalDescription({ type: 'rollback' })
    if (collided && this.#quirks.implicitRollback === false && pc.signalingState === 'have-local-offer') await rollBack()
    const hadLocalOffer = pc.signalingState === 'have-local-offer'
    try {
      await pc.setRemoteDescription(description)
      if (collided && hadLocalOffer) this.#quirks.implicitRollback ??= true
    } catch (error) {
      // Without implicit rollback the offer fails in have-local-offer (also
      // when our own offer was applied while we awaited): roll back, retry.
      if (!collided || pc.signalingState !== 'have-local-offer') throw error
      if (hadLocalOffer) this.#quirks.implicitRollback = false
      await rollBack()
      await pc.setRemoteDescription(description)
    }
  }

  #send(description: RTCSessionDescription): void {
    // Sent as it is: RTCSessionDescription serializes to { type, sdp }.
    if (!this.#closed) this.#hooks.sendDescription(description as Description)
  }

  #fail(step: string, cause: unknown): void {
    this.#hooks.error(new PolitelyError('negotiation-failed', `${step} failed: ${(cause as Error)?.message}`, { cause }))
  }
}
