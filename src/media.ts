import { PolitelyError } from './errors.js'

/** One sender's worth of what the app sends, as it last set it. */
interface Sent {
  /** Sent now (after any `replaceTrack`); null: a transceiver added by kind, with no track. */
  track: MediaStreamTrack | null
  kind: string
  streams: MediaStream[]
  /** `addTransceiver`'s direction and encodings; none for `addTrack`. */
  init?: RTCRtpTransceiverInit
  muted?: boolean
  /** Its sender on each connection it was put on. */
  senders: WeakMap<RTCPeerConnection, RTCRtpSender>
}

/**
 * The media a peer or a room sends. Every change goes to the connections there are now and
 * is remembered as it was last made, so a fresh connection (a rebuild, a new member) gets
 * everything back: the tracks, what replaced them, the transceivers' settings, the mutes.
 * Adding and removing renegotiate (through perfect negotiation: glare-safe); replacing and
 * muting do not.
 */
export class Media {
  readonly #sent: Sent[] = []
  readonly #connections: () => Iterable<RTCPeerConnection>

  /** `connections`: the connections to change now (each link's current one). */
  constructor(connections: () => Iterable<RTCPeerConnection>) {
    this.#connections = connections
  }

  /** Whether anything is sent (a connection with media makes no offer in advance). */
  get sending(): boolean {
    return this.#sent.length > 0
  }

  /** Puts everything sent on a fresh connection. */
  attach(pc: RTCPeerConnection): void {
    for (const sent of this.#sent) this.#put(sent, pc)
  }

  addTrack(track: MediaStreamTrack, streams: MediaStream[]): void {
    this.#add({ track, kind: track.kind, streams, senders: new WeakMap() })
  }

  addTransceiver(trackOrKind: MediaStreamTrack | string, { streams = [], ...init }: RTCRtpTransceiverInit = {}): void {
    const track = typeof trackOrKind === 'string' ? null : trackOrKind
    this.#add({ track, kind: track?.kind ?? (trackOrKind as string), streams, init, senders: new WeakMap() })
  }

  removeTrack(track: MediaStreamTrack): void {
    const sent = this.#find(track)
    this.#sent.splice(this.#sent.indexOf(sent), 1)
    for (const pc of this.#connections()) {
      const sender = sent.senders.get(pc)
      if (sender && pc.signalingState !== 'closed') pc.removeTrack(sender)
    }
  }

  replaceTrack(track: MediaStreamTrack, next: MediaStreamTrack): Promise<void> {
    const sent = this.#find(track)
    if (next?.kind !== sent.kind) throw new PolitelyError('invalid-track', `Not a ${sent.kind} track`)
    sent.track = next
    return this.#switch(sent)
  }

  mute(track: MediaStreamTrack, muted: boolean): Promise<void> {
    const sent = this.#find(track)
    sent.muted = muted
    return this.#switch(sent)
  }

  #add(sent: Sent): void {
    this.#sent.push(sent)
    for (const pc of this.#connections()) this.#put(sent, pc)
  }

  #put(sent: Sent, pc: RTCPeerConnection): void {
    const { track, streams, init } = sent
    const sender = init
      ? pc.addTransceiver(track ?? sent.kind, { ...init, streams }).sender
      : pc.addTrack(track as MediaStreamTrack, ...streams)
    sent.senders.set(pc, sender)
    // Nothing is sent before the connection is negotiated: muting now loses no frame.
    if (sent.muted) sender.replaceTrack(null).catch(() => {})
  }

  /** Hands every sender of `sent` what it must send now (nothing while muted): no renegotiation. */
  #switch(sent: Sent): Promise<void> {
    const sending = []
    for (const pc of this.#connections()) sending.push(sent.senders.get(pc)?.replaceTrack(sent.muted ? null : sent.track))
    return Promise.all(sending).then(() => {})
  }

  /** What is sent as `track` now; `unknown-track` if nothing is. */
  #find(track: MediaStreamTrack): Sent {
    const sent = this.#sent.find((sent) => sent.track === track && track)
    if (!sent) throw new PolitelyError('unknown-track', 'That track is not sent')
    return sent
  }
}
