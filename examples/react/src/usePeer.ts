import { type PeerOptions, type PeerState, PerfectNegotiationPeer } from 'politely'
import { useCallback, useEffect, useRef, useState } from 'react'

/** What {@link usePeer} gives a component. */
export interface UsePeer {
  /** The peer's state: `connected` once the remote is there. */
  state: PeerState
  /** Text messages received so far. */
  messages: string[]
  /** Sends a text message (queued until connected). */
  send(text: string): void
}

/**
 * One `PerfectNegotiationPeer` for the life of the component: made on mount, closed on unmount
 * (its `bye` tells the remote at once). `options` is read once, on mount: a signaler is a
 * connection, not a value to compare. Under StrictMode, React mounts twice in development: the
 * first peer closes and the second one connects.
 *
 * @example
 * const { state, messages, send } = usePeer(() => ({ signaler: new BroadcastChannelSignaler({ room: 'chat' }) }))
 */
export function usePeer(options: () => PeerOptions): UsePeer {
  const [state, setState] = useState<PeerState>('idle')
  const [messages, setMessages] = useState<string[]>([])
  const peer = useRef<PerfectNegotiationPeer | undefined>(undefined)
  const create = useRef(options)
  useEffect(() => {
    const current = new PerfectNegotiationPeer(create.current())
    peer.current = current
    current.on('state', (event) => setState(event.state))
    current.on('message', ({ data }) => {
      if (typeof data === 'string') setMessages((previous) => [...previous, data])
    })
    current.start().catch((error: unknown) => console.warn('politely: signaling did not start', error))
    return () => current.close()
  }, [])
  const send = useCallback((text: string) => void peer.current?.send(text), [])
  return { state, messages, send }
}
