import { describe, expect, test } from 'vitest'
import { shouldIgnoreOffer } from '../../src/negotiation'

type Input = {
  type: 'offer' | 'answer'
  polite: boolean
  makingOffer: boolean
  signalingState: RTCSignalingState
  isSettingRemoteAnswerPending: boolean
}
const ignores = (i: Input) => shouldIgnoreOffer(i.type, i.polite, i.makingOffer, i.signalingState, i.isSettingRemoteAnswerPending)

// The decision table of the W3C perfect-negotiation example (webrtc-pc §10.7).
describe('shouldIgnoreOffer', () => {
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
    // A collision (not ready) is ignored by the impolite side; the polite side rolls back.
    expect(ignores({ type: 'offer', ...input })).toBe(!ready && !input.polite)
  })

  test.each(cases)('an answer is never ignored: %o', (input) => {
    expect(ignores({ type: 'answer', ...input })).toBe(false)
  })

  test('named rows', () => {
    // Both sides offered at once: the impolite one ignores, the polite one rolls back.
    expect(
      ignores({
        type: 'offer',
        polite: false,
        makingOffer: true,
        signalingState: 'stable',
        isSettingRemoteAnswerPending: false,
      }),
    ).toBe(true)
    expect(
      ignores({
        type: 'offer',
        polite: true,
        makingOffer: false,
        signalingState: 'have-local-offer',
        isSettingRemoteAnswerPending: false,
      }),
    ).toBe(false)
    // An offer that arrives while our answer is being applied is not a collision.
    expect(
      ignores({
        type: 'offer',
        polite: false,
        makingOffer: false,
        signalingState: 'have-local-offer',
        isSettingRemoteAnswerPending: true,
      }),
    ).toBe(false)
  })
})
