/**
 * Stack adapters for Node (`@roamhq/wrtc`, werift) and Safari before 15.4.
 *
 * @module politely/legacy
 */
// politely/legacy: adapters that make a WebRTC stack fit for perfect negotiation, for Node and old
// Safari. Browsers that follow the spec need none, and do not pay for them: this is its own entry.

/**
 * Makes an older WebRTC stack fit for perfect negotiation: politely relies
 * on argument-less `setLocalDescription()` and on implicit rollback, which
 * Node's `@roamhq/wrtc` (libwebrtc's binding) and Safari before 15.4 lack.
 * Browsers that have them (every current one) do not need this, and do not
 * pay for it: it is its own entry.
 *
 * @example
 * import wrtc from '@roamhq/wrtc'
 * import { legacyPeerConnection } from 'politely/legacy'
 * new PerfectNegotiationPeer({ signaler, RTCPeerConnection: legacyPeerConnection(wrtc.RTCPeerConnection) })
 */
export function legacyPeerConnection(Base: typeof RTCPeerConnection): typeof RTCPeerConnection {
  return class LegacyPeerConnection extends Base {
    /**
     * Without a description: creates the offer or answer the state calls for, as the spec's
     * argument-less form does, and resolves with it (`null` if nothing was set). The spec resolves
     * with nothing; the negotiator takes what it gets instead of reading `localDescription`, which
     * `@roamhq/wrtc` serializes on the JS thread while libwebrtc's signaling thread adds gathered
     * candidates to it: a data race that tears the SDP or crashes the process (SIGSEGV in SdpSerialize).
     */
    override async setLocalDescription(description?: RTCLocalSessionDescriptionInit): Promise<void> {
      if (description) return super.setLocalDescription(description)
      const answering = this.signalingState === 'have-remote-offer'
      const made = answering ? await this.createAnswer() : await this.createOffer()
      // An incoming offer was applied while ours was being created: ours is moot (the spec's
      // operations chain would not have let it through either).
      if (!answering && (this.signalingState as RTCSignalingState) === 'have-remote-offer') return null as unknown as undefined
      await super.setLocalDescription(made)
      return { type: made.type, sdp: made.sdp } as unknown as undefined
    }

    /** An offer that collides with ours rolls ours back first, as implicit rollback does. */
    override async setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void> {
      if (description.type === 'offer' && this.signalingState === 'have-local-offer') {
        await super.setLocalDescription({ type: 'rollback' })
      }
      return super.setRemoteDescription(description)
    }
  }
}

export { weriftPeerConnection } from './werift.js'
