import type { RebuildReason } from './events'
import type { SignalMessage } from './protocol'

/**
 * What a peer knows when a signaling message arrives: the pure input of
 * {@link routeSignal}. A connection is "paired" with exactly one remote
 * session; both sides must agree on the pair before negotiating, so an
 * offer is never sent to a connection that no longer exists.
 */
export interface PairingState {
  /** This peer's id. */
  id: string
  /** Session (generation) of this peer's current connection. */
  session: number
  /** Remote session the current connection is paired with, if any. */
  paired?: number
  /** The remote peer, once one has been heard from. */
  remote?: {
    id: string
    /** Newest session seen from it. */
    latest: number
    /** Newest of its sessions that an earlier connection of ours was paired with. */
    used: number
  }
  /** Remote ids that left or were replaced: everything from them is stale. */
  retired: readonly string[]
}

/** What to do with a message, applied in this order: retire, rebuild, pair, deliver, reply. */
export type Route =
  | { drop: 'not-for-me' | 'stale-session' | 'retired-peer' }
  | {
      drop?: undefined
      /** Retire the current remote id (it left, or a new instance replaced it). */
      retire?: string
      /** Throw the current connection away first. */
      rebuild?: RebuildReason
      /** Pair the (possibly new) connection with this remote id and session. */
      pair?: { id: string; session: number }
      /** Hand the message to the negotiator of the current connection. */
      deliver: boolean
      /** Answer with a `hello` addressed to the sender. */
      reply: boolean
    }

const NOT_FOR_ME = { drop: 'not-for-me' } as const
const STALE = { drop: 'stale-session' } as const

/**
 * Decides what an incoming, already validated message means for the pairing
 * of connections. Pure, so every race can be tested without WebRTC.
 *
 * The rules, in short: a remote session newer than the paired one means the
 * remote rebuilt, so we rebuild too; a fresh connection pairs with a remote
 * session that no earlier connection of ours used, or with one that has
 * explicitly paired with it (a message whose `toSession` is our session);
 * a new remote id means the remote reloaded and replaces the old one.
 */
export function routeSignal(state: PairingState, message: SignalMessage): Route {
  const { from, session } = message
  if (from === state.id || (message.to !== undefined && message.to !== state.id)) return NOT_FOR_ME
  if (state.retired.includes(from)) return { drop: 'retired-peer' }
  const known = state.remote && state.remote.id === from ? state.remote : undefined
  const confirmsUs = 'toSession' in message && message.toSession === state.session

  if (message.kind === 'bye') {
    return known ? { retire: from, rebuild: 'remote-left', deliver: false, reply: false } : NOT_FOR_ME
  }
  if (!known) {
    // A stranger. Only an announcement (or a message proving it heard our
    // announcement) may replace the remote we have: anything else is a
    // leftover of some earlier exchange.
    if (message.kind !== 'hello' && !confirmsUs) return STALE
    const retire = state.remote?.id
    const rebuild = state.paired !== undefined ? 'remote-replaced' : undefined
    const deliver = message.kind !== 'hello' && !rebuild
    return { retire, rebuild, pair: { id: from, session }, deliver, reply: !(confirmsUs && !rebuild) }
  }
  // Descriptions and candidates are only ever for our current connection.
  if (session < known.latest || (message.kind !== 'hello' && !confirmsUs)) return STALE

  if (state.paired === session) {
    if (message.kind !== 'hello') return { deliver: true, reply: false }
    // A broadcast hello means the remote lost track of us (its signaling restarted): tell it again.
    return { deliver: false, reply: message.to === undefined }
  }
  if (state.paired !== undefined) {
    // The remote has a newer session than the one we are paired with: it rebuilt.
    // Our connection's counterpart is gone, so ours goes too.
    return { rebuild: 'remote-restarted', pair: { id: from, session }, deliver: false, reply: true }
  }
  // Our connection is fresh.
  if (confirmsUs || session > known.used) {
    return { pair: { id: from, session }, deliver: message.kind !== 'hello', reply: !confirmsUs }
  }
  // The remote's session was paired with an earlier connection of ours and
  // has not yet heard of our new one: announce it, and the remote rebuilds.
  return { deliver: false, reply: true }
}
