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

/** A stack's RTCPeerConnection that records every connection made and every one closed, in order. */
export function counting(Base: typeof RTCPeerConnection) {
  const made: RTCPeerConnection[] = []
  const closed: RTCPeerConnection[] = []
  // A constructor that hands back the stack's own connection (`new` returns what a constructor returns).
  class Counting {
    constructor(config?: RTCConfiguration) {
      const pc = new Base(config)
      made.push(pc)
      const close = pc.close.bind(pc)
      pc.close = () => {
        closed.push(pc)
        close()
      }
      // biome-ignore lint/correctness/noConstructorReturn: the point of this wrapper
      return pc
    }
  }
  return { Counting: Counting as unknown as typeof RTCPeerConnection, made, closed }
}
