// A peer that sends a track and one that has only channels, on both Node stacks and in both role
// orders. politely makes its first offer in advance only without tracks, so here one side answers
// the other's advance offer while the other one brings a media m-line the advance offer lacked
// (on werift, an offer created and not set used to keep its mids: the answer then described the
// data channels under the wrong mid). Tracks are re-added after a rebuild.
import wrtc from '@roamhq/wrtc'
import { describe, expect, test } from 'vitest'
import { RtpHeader, RtpPacket, MediaStreamTrack as WeriftTrack } from 'werift'
import { next, opened, roundTrip, STACKS, uniqueRoom, useStack } from '../support/stacks'
import { until } from '../support/until'

/** An audio track of the stack's own kind (the peer hands it to that stack's addTrack). */
function audioTrack(stack: string): MediaStreamTrack {
  if (stack === 'werift') return new WeriftTrack({ kind: 'audio' }) as unknown as MediaStreamTrack
  return new wrtc.nonstandard.RTCAudioSource().createTrack() as unknown as MediaStreamTrack
}

/** A video track of the stack's own kind fed a frame (wrtc) or an RTP packet (werift) every 20 ms, until `stop()`. */
function videoSource(stack: string): { track: MediaStreamTrack; stop(): void } {
  let feed: () => void
  let track: unknown
  if (stack === 'werift') {
    const werift = new WeriftTrack({ kind: 'video' })
    let seq = 0
    feed = () => {
      seq++
      werift.writeRtp(
        new RtpPacket(
          new RtpHeader({ payloadType: 96, sequenceNumber: seq & 0xffff, timestamp: seq * 1800, marker: true }),
          Buffer.alloc(40, 1),
        ),
      )
    }
    track = werift
  } else {
    const source = new wrtc.nonstandard.RTCVideoSource()
    const frame = { width: 64, height: 48, data: new Uint8Array(64 * 48 * 1.5) }
    feed = () => source.onFrame(frame)
    track = source.createTrack()
  }
  const timer = setInterval(feed, 20)
  return { track: track as MediaStreamTrack, stop: () => clearInterval(timer) }
}

/** Counts what arrives on a received track: RTP packets (werift) or decoded frames (wrtc). */
function received(stack: string, track: MediaStreamTrack): { count(): number; stop(): void } {
  let n = 0
  if (stack === 'werift') {
    const { unSubscribe } = (track as unknown as WeriftTrack).onReceiveRtp.subscribe(() => n++)
    return { count: () => n, stop: unSubscribe }
  }
  const sink = new wrtc.nonstandard.RTCVideoSink(track as never)
  sink.onframe = () => n++
  return { count: () => n, stop: () => sink.stop() }
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

  // werift gave a transceiver added before the remote's BUNDLE was known a transport of its own, and
  // kept it when the remote's offer (the impolite side's, made in advance, with only the data
  // channel) left that m-line out: answering, it started ICE on that transport too, which failed, and
  // reported connectionState 'failed' once the bundle was up. The peer restarted ICE, renegotiated,
  // and no RTP ever arrived. The same for a track added before the first answer is applied (werift
  // has not bundled yet). And the renegotiations during the first ICE checks could leave both sides
  // ICE-controlled: both SCTP servers, channels never open, a rebuild as stalled. Media must flow
  // at once, the channels open, with no recovery, and signaling then be quiet.
  test.each([
    ['the polite side', 'before start', 'a', 'b'],
    ['the impolite side', 'before start', 'b', 'a'],
    ['the impolite side', 'while its first offer is answered', 'b', 'a'],
  ])('%s adds video %s: media flows, no recovery, then no more descriptions', async (_, when, withTrack, without) => {
    const room = uniqueRoom()
    const sender = peer(room, { id: `${withTrack}-video` })
    const receiver = peer(room, { id: `${without}-video` })
    const source = videoSource(name)
    if (when === 'before start') sender.addTrack(source.track)
    let added = when === 'before start'
    let descriptions = 0
    const recoveries: string[] = []
    for (const p of [sender, receiver]) {
      p.on('signal', ({ direction, message }) => {
        if (direction !== 'out' || message.kind !== 'description') return
        descriptions++
        // Synchronously as the answer leaves the receiver: the sender has not applied it yet.
        if (p === receiver && !added && message.description.type === 'answer') {
          added = true
          sender.addTrack(source.track)
        }
      })
      p.on('reconnecting', ({ reason }) => recoveries.push(reason))
    }
    let track: MediaStreamTrack | undefined
    receiver.on('track', (event) => {
      track ??= event.track
    })
    await Promise.all([sender.start(), receiver.start()])
    await until(() => !!track, 'the track', 5000)
    const media = received(name, track as MediaStreamTrack)
    try {
      await until(() => media.count() >= 10, 'media on the received track', 5000)
      // The data channels open too (a connection rebuilt as stalled opens only after the rebuild).
      await until(() => sender.state === 'connected' && receiver.state === 'connected', 'both open', 5000)
      await roundTrip(sender, receiver, 'with media')
      const [settled, arrived] = [descriptions, media.count()]
      await new Promise((resolve) => setTimeout(resolve, 1000))
      // Quiet, and the media still flowing.
      expect(descriptions).toBe(settled)
      expect(media.count()).toBeGreaterThan(arrived + 10)
    } finally {
      media.stop()
      source.stop()
    }
    expect(recoveries).toEqual([])
    expect([sender.connection?.connectionState, receiver.connection?.connectionState]).toEqual(['connected', 'connected'])
    expect([...sender.errors, ...receiver.errors]).toEqual([])
  })
})
