// A peer that sends a track and one that has only channels, on both Node stacks and in both role
// orders. politely makes its first offer in advance only without tracks, so here one side answers
// the other's advance offer while the other one brings a media m-line the advance offer lacked
// (on werift, an offer created and not set used to keep its mids: the answer then described the
// data channels under the wrong mid). Tracks are re-added after a rebuild.
import wrtc from '@roamhq/wrtc'
import { describe, expect, test } from 'vitest'
import { MediaStreamTrack as WeriftTrack } from 'werift'
import { next, opened, roundTrip, STACKS, uniqueRoom, useStack } from '../support/stacks'

/** An audio track of the stack's own kind (the peer hands it to that stack's addTrack). */
function audioTrack(stack: string): MediaStreamTrack {
  if (stack === 'werift') return new WeriftTrack({ kind: 'audio' }) as unknown as MediaStreamTrack
  return new wrtc.nonstandard.RTCAudioSource().createTrack() as unknown as MediaStreamTrack
}

describe.each(STACKS)('$name', ({ name, make }) => {
  const { peer } = useStack(make)

  test.each([
    ['the polite side', 'a', 'b'],
    ['the impolite side', 'b', 'a'],
  ])('%s sends a track, the other has only channels: both open, the track arrives, data flows', async (_, withTrack, without) => {
    const room = uniqueRoom()
    // The lower id is polite.
    const sender = peer(room, { id: `${withTrack}-track` })
    const receiver = peer(room, { id: `${without}-track` })
    sender.addTrack(audioTrack(name))
    const track = next<{ track: MediaStreamTrack }>((h) => receiver.on('track', h))
    await Promise.all([sender.start(), receiver.start()])
    await Promise.all([opened(sender), opened(receiver)])
    expect((await track).track.kind).toBe('audio')
    await roundTrip(sender, receiver, 'with a track')
    await roundTrip(receiver, sender, 'without one')
    const [pcS, pcR] = [sender.connection, receiver.connection] as RTCPeerConnection[]
    expect(pcS?.getTransceivers().map((t) => t.mid)).toEqual(pcR?.getTransceivers().map((t) => t.mid))
    // After a rebuild (the receiver reloads), the track is sent again.
    receiver.close()
    const again = peer(room, { id: `${without}-track2` })
    const second = next<{ track: MediaStreamTrack }>((h) => again.on('track', h))
    await again.start()
    await Promise.all([opened(sender), opened(again)])
    expect((await second).track.kind).toBe('audio')
    await roundTrip(again, sender, 'after the reload')
    expect([...sender.errors, ...receiver.errors, ...again.errors]).toEqual([])
  })
})
