import { type PeerOptions, type PeerState, PerfectNegotiationPeer } from 'politely'
import { onScopeDispose, type Ref, ref, shallowRef } from 'vue'

/** What {@link usePeer} gives a component. */
export interface UsePeer {
  /** The peer's state: `connected` once the remote is there. */
  state: Ref<PeerState>
  /** Text messages received so far. */
  messages: Ref<string[]>
  /** Sends a text message (queued until connected). */
  send(text: string): void
}

/**
 * A composable: one `PerfectNegotiationPeer` for the life of the component (or effect scope)
 * that calls it, started at once and closed when the scope ends (its `bye` tells the remote).
 *
 * @example
 * const { state, messages, send } = usePeer({ signaler: new BroadcastChannelSignaler({ room: 'chat' }) })
 */
export function usePeer(options: PeerOptions): UsePeer {
  const state = ref<PeerState>('idle')
  const messages = shallowRef<string[]>([])
  const peer = new PerfectNegotiationPeer(options)
  peer.on('state', (event) => {
    state.value = event.state
  })
  peer.on('message', ({ data }) => {
    if (typeof data === 'string') messages.value = [...messages.value, data]
  })
  peer.start().catch((error: unknown) => console.warn('politely: signaling did not start', error))
  onScopeDispose(() => peer.close())
  return { state, messages, send: (text) => void peer.send(text) }
}
