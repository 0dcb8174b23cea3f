/**
 * A stack's RTCPeerConnection that records the data channels each connection creates
 * (the peer keeps them private): to watch `bufferedAmount`, or to kill a connection's channels.
 */
export function recording(Base: typeof RTCPeerConnection) {
  const created = new WeakMap<object, RTCDataChannel[]>()
  class Recording extends Base {
    override createDataChannel(label: string, init?: RTCDataChannelInit): RTCDataChannel {
      const channel = super.createDataChannel(label, init)
      created.set(this, [...(created.get(this) ?? []), channel])
      return channel
    }
  }
  return { RTCPeerConnection: Recording, channels: (pc?: RTCPeerConnection) => (pc && created.get(pc)) || [] }
}
