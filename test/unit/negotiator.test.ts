import { expect, test } from 'vitest'
import { Negotiator } from '../../src/negotiation'

// @roamhq/wrtc moves to have-local-offer on libwebrtc's thread and resolves setLocalDescription()
// later, on the JS thread: the answer to the offer that went with our hello can be applied in between.
test('an answer applied before our offer is recorded as sent is no round-trip sample', async () => {
  const offer = { type: 'offer', sdp: 'v=0 offer' } as const
  let resolveSet = () => {}
  const pc = {
    signalingState: 'stable' as RTCSignalingState,
    createOffer: async () => offer,
    setLocalDescription(description: RTCSessionDescriptionInit) {
      this.signalingState = description.type === 'offer' ? 'have-local-offer' : 'stable'
      return new Promise<void>((resolve) => (resolveSet = resolve))
    },
    async setRemoteDescription(description: RTCSessionDescriptionInit) {
      this.signalingState = description.type === 'offer' ? 'have-remote-offer' : 'stable'
    },
  }
  const samples: number[] = []
  const negotiator = new Negotiator(pc as unknown as RTCPeerConnection, {
    sendDescription: () => {},
    error: (error) => expect.unreachable(String(error)),
    stalled: () => {},
    sample: (ms) => samples.push(ms),
    rolledBack: () => {},
    negotiated: () => {},
    rtt: () => 10,
  })
  expect(await negotiator.prepare()).toBe(offer.sdp)
  negotiator.start(false, true)
  void negotiator.negotiate() // negotiationneeded, impolite side: sets the offer made in advance
  await new Promise((resolve) => setTimeout(resolve))
  expect(pc.signalingState).toBe('have-local-offer')
  await negotiator.handleDescription({ type: 'answer', sdp: 'v=0 answer' })
  resolveSet()
  await new Promise((resolve) => setTimeout(resolve))
  expect(pc.signalingState).toBe('stable')
  // Was [Date.now()]: a round trip of 56 years, kept as 20 s (every stall timeout a minute).
  expect(samples).toEqual([])
})
