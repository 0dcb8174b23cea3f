/**
 * A stack's RTCPeerConnection that records the data channels each connection creates
 * (the peer keeps them private): to watch `bufferedAmount`, or to kill a connection's channels.
 */
export function recording(Base: typeof RTCPeerConnection) {
  const created = new WeakMap<object, RTCDataChannel[]>()
  const watchers = new Set<(pc: RTCPeerConnection, data: string | ArrayBuffer | ArrayBufferView) => void>()
  class Recording extends Base {
    override createDataChannel(label: string, init?: RTCDataChannelInit): RTCDataChannel {
      const channel = super.createDataChannel(label, init)
      created.set(this, [...(created.get(this) ?? []), channel])
      const send = channel.send.bind(channel) as (data: string | ArrayBuffer | ArrayBufferView) => void
      // Only what the stack took: a send it refuses throws before the watchers hear of it.
      Object.assign(channel, {
        send: (data: string | ArrayBuffer | ArrayBufferView) => {
          send(data)
          for (const watch of watchers) watch(this, data)
        },
      })
      return channel
    }
  }
  return {
    RTCPeerConnection: Recording,
    channels: (pc?: RTCPeerConnection) => (pc && created.get(pc)) || [],
    /** Calls `watch` with every message a channel of these connections took, and the connection. Returns the way to stop. */
    watchSends(watch: (pc: RTCPeerConnection, data: string | ArrayBuffer | ArrayBufferView) => void): () => void {
      watchers.add(watch)
      return () => watchers.delete(watch)
    },
  }
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
