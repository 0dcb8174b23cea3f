// The track API on werift, which sends and receives RTP in Node: media flows after addTrack,
// replaceTrack (no renegotiation), mute and unmute (no renegotiation), removeTrack (the remote
// hears `track-removed`) and a new addTrack; and everything the app set is back, as last set,
// on the connection a rebuild makes. RTP written into a local werift track is what "media" is
// here: a packet counter on the remote's track proves it arrives.
import { afterEach, describe, expect, test } from 'vitest'
import { RtpHeader, RtpPacket, MediaStreamTrack as WeriftTrack } from 'werift'
import type { PerfectNegotiationPeer } from '../../src/index'
import { BroadcastChannelSignaler } from '../../src/index'
import { Room } from '../../src/room'
import { next, opened, uniqueRoom, useStack, weriftStack } from '../support/stacks'
import { until } from '../support/until'

type Peer = PerfectNegotiationPeer & { errors: Error[] }

/** A werift track of `kind`, and a pump that writes an RTP packet into it every 20 ms while on. */
function source(kind: 'audio' | 'video') {
  const track = new WeriftTrack({ kind })
  let sequenceNumber = 0
  const timer = setInterval(() => {
    const header = new RtpHeader({
      payloadType: kind === 'audio' ? 111 : 96,
      sequenceNumber: sequenceNumber++ & 0xffff,
      timestamp: sequenceNumber * 960,
      marker: true,
    })
    track.writeRtp(new RtpPacket(header, Buffer.alloc(40, sequenceNumber & 0xff)))
  }, 20)
  pumps.push(timer)
  return track as unknown as MediaStreamTrack
}
const pumps: ReturnType<typeof setInterval>[] = []
afterEach(() => {
  for (const timer of pumps.splice(0)) clearInterval(timer)
})

/** Counts the RTP packets that arrive on a remote werift track. */
function counter(track: MediaStreamTrack) {
  const counted = { packets: 0 }
  ;(track as unknown as WeriftTrack).onReceiveRtp.subscribe(() => counted.packets++)
  return counted
}

/** Resolves once `count` grew by `more` packets: media flows. */
async function flows(count: { packets: number }, what: string, more = 10): Promise<void> {
  const from = count.packets
  await until(() => count.packets >= from + more, `${what}: RTP arrives`)
}

/** Descriptions a peer sends from now on (a renegotiation sends one). */
function descriptions(peer: PerfectNegotiationPeer) {
  const sent = { count: 0 }
  peer.on('signal', ({ direction, message }) => direction === 'out' && message.kind === 'description' && sent.count++)
  return sent
}

describe('the track API on werift', () => {
  const { peer, stack } = useStack(weriftStack)

  /** Two open peers; `sender` (the impolite side, by id) sends nothing yet. */
  async function pair(): Promise<[Peer, Peer, string]> {
    const room = uniqueRoom()
    const sender = peer(room, { id: 'b-sender' })
    const receiver = peer(room, { id: 'a-receiver' })
    await Promise.all([sender.start(), receiver.start()])
    await Promise.all([opened(sender), opened(receiver)])
    return [sender, receiver, room]
  }

  test('addTrack, replaceTrack, mute, unmute, removeTrack, addTrack again: media as set, no renegotiation for replace and mute', async () => {
    const [sender, receiver] = await pair()
    const camera = source('video')
    const arrived = next<{ track: MediaStreamTrack }>((h) => receiver.on('track', h))
    sender.addTrack(camera)
    const remote = (await arrived).track
    const count = counter(remote)
    await flows(count, 'after addTrack')

    const renegotiations = descriptions(sender)
    const otherSide = descriptions(receiver)
    const screen = source('video')
    await sender.replaceTrack(camera, screen)
    await flows(count, 'after replaceTrack')
    await sender.mute(screen)
    // Muted: what is in flight drains, then nothing comes for a while (10 pump periods).
    await new Promise((resolve) => setTimeout(resolve, 100))
    const muted = count.packets
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(count.packets).toBe(muted)
    await sender.mute(screen, false)
    await flows(count, 'after unmute')
    expect([renegotiations.count, otherSide.count]).toEqual([0, 0])
    // The app's tracks are its own: replaceTrack swapped what is sent, nothing was stopped.
    expect((camera as unknown as WeriftTrack).stopped).toBe(false)

    const removed = next<{ track: MediaStreamTrack }>((h) => receiver.on('track-removed', h))
    sender.removeTrack(screen)
    expect((await removed).track).toBe(remote)
    const mic = source('audio')
    const again = next<{ track: MediaStreamTrack }>(
      (h) => receiver.on('track', h),
      ({ track }) => track.kind === 'audio',
    )
    sender.addTrack(mic)
    await flows(counter((await again).track), 'a new track after the removal')
    expect([...sender.errors, ...receiver.errors]).toEqual([])
  })

  test('bad input: unknown tracks and a track of another kind are typed errors, nothing changes', async () => {
    const [sender] = await pair()
    const mic = source('audio')
    sender.addTrack(mic)
    const stranger = source('audio')
    expect(() => sender.removeTrack(stranger)).toThrow(expect.objectContaining({ code: 'unknown-track' }))
    expect(() => sender.replaceTrack(stranger, source('audio'))).toThrow(expect.objectContaining({ code: 'unknown-track' }))
    expect(() => sender.mute(stranger)).toThrow(expect.objectContaining({ code: 'unknown-track' }))
    expect(() => sender.replaceTrack(mic, source('video'))).toThrow(expect.objectContaining({ code: 'invalid-track' }))
    expect(() => sender.replaceTrack(mic, null as unknown as MediaStreamTrack)).toThrow(
      expect.objectContaining({ code: 'invalid-track' }),
    )
    // Still sent as it was: removable.
    sender.removeTrack(mic)
    expect(() => sender.removeTrack(mic)).toThrow(expect.objectContaining({ code: 'unknown-track' }))
  })

  test('after a rebuild (the receiver restarts) everything is back as last set: the replacement, the mute, the transceivers', async () => {
    const [sender, receiver, room] = await pair()
    const camera = source('video')
    const mic = source('audio')
    sender.addTrack(camera)
    sender.addTrack(mic)
    sender.addTransceiver('video', { direction: 'recvonly' })
    const screen = source('video')
    await sender.replaceTrack(camera, screen)
    await sender.mute(mic)
    const ended: string[] = []
    receiver.on('track-ended', ({ track }) => ended.push(track.kind))
    // Let the first connection carry it all once.
    await until(() => (receiver.connection?.getTransceivers().length ?? 0) >= 3, 'three transceivers on the first connection')
    receiver.close()
    expect(ended.sort()).toEqual(['audio', 'video'])

    const again = peer(room, { id: 'a-receiver' })
    const tracks: MediaStreamTrack[] = []
    again.on('track', ({ track }) => tracks.push(track))
    await again.start()
    await opened(sender)
    await opened(again)
    await until(
      () => tracks.some((track) => track.kind === 'video') && tracks.some((track) => track.kind === 'audio'),
      'both tracks again',
    )
    const video = counter(tracks.find((track) => track.kind === 'video') as MediaStreamTrack)
    const audio = counter(tracks.find((track) => track.kind === 'audio') as MediaStreamTrack)
    // The replacement is what is sent (the camera stopped pumping: only the screen can feed it).
    clearInterval(pumps[0])
    await flows(video, 'the replacement after the rebuild')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(audio.packets).toBe(0)
    // The receive-only transceiver is there again, as set.
    const directions = (sender.connection as RTCPeerConnection).getTransceivers().map((transceiver) => transceiver.direction)
    expect(directions).toContain('recvonly')
    await sender.mute(mic, false)
    await flows(audio, 'the unmuted microphone after the rebuild')
    expect([...sender.errors, ...again.errors]).toEqual([])
  })

  // werift rewrites each RTP packet in place for the connection it sends it on (SSRC, sequence
  // number), so one werift track cannot feed two connections at once: here a track goes to one
  // member at a time. Chromium's room test sends one camera to every member.
  test('a room sends a track to a member, replaces it, and a member joining later gets the replacement', async () => {
    const room = uniqueRoom()
    const { options } = stack()
    const errors: Error[] = []
    const member = (id: string) => {
      const made = new Room({ id, signaler: new BroadcastChannelSignaler({ room }), ...options() })
      made.on('error', (error) => errors.push(error))
      return made
    }
    // The host is the impolite side of its links (it started first; a tie goes by the ids).
    const [host, first] = [member('m9'), member('m2')]
    const members = [host, first]
    try {
      const camera = source('video')
      host.addTrack(camera)
      const arrived = next<{ track: MediaStreamTrack; from: string }>((h) => first.on('track', h))
      await Promise.all(members.map((m) => m.start()))
      const { track, from } = await arrived
      expect(from).toBe(host.id)
      const count = counter(track)
      await flows(count, 'the camera at the member')
      const screen = source('video')
      await host.replaceTrack(camera, screen)
      clearInterval(pumps[0])
      await flows(count, 'the replacement at the member')
      first.close()
      await until(() => host.peers.length === 0, 'the member gone')
      const late = member('m3')
      members.push(late)
      const lateTrack = next<{ track: MediaStreamTrack; from: string }>((h) => late.on('track', h))
      await late.start()
      await flows(counter((await lateTrack).track), 'the replacement at a later member')
      expect(errors).toEqual([])
    } finally {
      for (const m of members) m.close()
    }
  })
})
