import { describe, expect, test } from 'vitest'
import { decideCollision } from '../../src/negotiation'

type Input = {
  type: 'offer' | 'answer'
  polite: boolean
  makingOffer: boolean
  signalingState: RTCSignalingState
  isSettingRemoteAnswerPending: boolean
}
const decide = (i: Input) => decideCollision(i.type, i.polite, i.makingOffer, i.signalingState, i.isSettingRemoteAnswerPending)

// The decision table of the W3C perfect-negotiation example (webrtc-pc §10.7).
describe('decideCollision', () => {
  const states = ['stable', 'have-local-offer', 'have-remote-offer'] as const
  const cases = states.flatMap((signalingState) =>
    [false, true].flatMap((makingOffer) =>
      [false, true].flatMap((isSettingRemoteAnswerPending) =>
        [false, true].map((polite) => ({ signalingState, makingOffer, isSettingRemoteAnswerPending, polite })),
      ),
    ),
  )

  test.each(cases)('offer with %o', (input) => {
    const ready = !input.makingOffer && (input.signalingState === 'stable' || input.isSettingRemoteAnswerPending)
    const result = decide({ type: 'offer', ...input })
    expect(result.offerCollision).toBe(!ready)
    expect(result.ignoreOffer).toBe(!ready && !input.polite)
  })

  test.each(cases)('an answer never collides: %o', (input) => {
    expect(decide({ type: 'answer', ...input })).toEqual({ offerCollision: false, ignoreOffer: false })
  })

  test('named rows', () => {
    // Both sides offered at once: the impolite one ignores, the polite one rolls back.
    expect(
      decide({
        type: 'offer',
        polite: false,
        makingOffer: true,
        signalingState: 'stable',
        isSettingRemoteAnswerPending: false,
      }),
    ).toEqual({
      offerCollision: true,
      ignoreOffer: true,
    })
    expect(
      decide({
        type: 'offer',
        polite: true,
        makingOffer: false,
        signalingState: 'have-local-offer',
        isSettingRemoteAnswerPending: false,
      }),
    ).toEqual({
      offerCollision: true,
      ignoreOffer: false,
    })
    // An offer that arrives while our answer is being applied is not a collision.
    expect(
      decide({
        type: 'offer',
        polite: false,
        makingOffer: false,
        signalingState: 'have-local-offer',
        isSettingRemoteAnswerPending: true,
      }),
    ).toEqual({
      offerCollision: false,
      ignoreOffer: false,
    })
  })
})
