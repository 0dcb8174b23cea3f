import type { RebuildReason } from './events.js'
import type { SignalMessage } from './protocol.js'

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
  /** Whether the current connection's channels are open. */
  open: boolean
  /** The remote peer, once one has been heard from. */
  remote?: RemoteRecord
  /** Instances that said `bye`: nothing more comes from them. */
  retired: readonly Instance[]
}

/** A running peer: its id and when it started (`since` of its hellos). */
export interface Instance {
  id: string
  since: number
}

/** What the peer knows of its remote. */
export interface RemoteRecord extends Instance {
  /** Newest session seen from it. */
  latest: number
  /** Newest of its sessions that belongs to an earlier connection of ours: never pair with it again. */
  used: number
}

/** What to do with a message, applied in this order: retire, rebuild, remember, pair, deliver, reply. */
export type Route =
  | { drop: 'not-for-me' | 'stale-session' | 'retired-peer' | 'other-peer' }
  | {
      drop?: undefined
      /** Retire the remote (it said `bye`). */
      retire?: Instance
      /** Throw the current connection away first. */
      rebuild?: RebuildReason
      /** What to remember of the remote from now on. */
      remote?: RemoteRecord
      /** Pair the (possibly new) connection with this remote session. */
      pair?: number
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
 * The rules: a new instance (new id, or an id started again) replaces the
 * remote unless a live connection is open with a remote that started later;
 * a remote session newer than the paired one means the remote rebuilt,
 * so we rebuild too; a fresh connection pairs with a remote session that
 * paired with it (`toSession` is our session) or that no connection of ours
 * has claimed; a remote session that names an older session of ours belongs
 * to that dead connection, so we announce our current one instead.
 */
export function routeSignal(state: PairingState, message: SignalMessage): Route {
  const { from, session, kind } = message
  if (from === state.id || (message.to !== undefined && message.to !== state.id)) return NOT_FOR_ME
  const since = (kind === 'hello' && message.since) || 0
  let known = state.remote?.id === from ? state.remote : undefined
  // A peer that said bye never speaks again; only a new instance under the same id (started later)
  // may: its hello, and once we know it, the rest of what it sends (which has no start time).
  const gone = state.retired.find((instance) => instance.id === from)
  if (gone && since <= gone.since && !(known && known.since > gone.since)) return { drop: 'retired-peer' }
  // The same id from a later start: the app reuses ids, and this is a new instance. A record
  // made from a description or candidate that outran its hello has no start time (0): the hello
  // that follows fills it in — the same instance, unless its session went back (a restart).
  if (known && since > known.since && (known.since || session < known.latest)) known = undefined
  if (kind === 'bye') return known ? { retire: known, rebuild: 'remote-left', deliver: false, reply: false } : NOT_FOR_ME
  const toSession = 'toSession' in message ? message.toSession : undefined
  // Descriptions and candidates are only ever for our current connection.
  if ((kind !== 'hello' && toSession !== state.session) || (known && session < known.latest)) return STALE
  // A room is for two. Another id never breaks a pair that is open or negotiating (a third
  // peer waits for a seat); it replaces the remote only once our connection is unpaired (the
  // remote left, or went silent and the connection was rebuilt), and only if it started later
  // or answers our current session (alive now: a late message of a dead tab cannot).
  // A newer instance under the remote's own id (a reload that kept its id) replaces it at once.
  if (
    !known &&
    state.remote &&
    from !== state.remote.id &&
    (state.open || state.paired !== undefined || (since <= state.remote.since && toSession !== state.session))
  )
    return { drop: 'other-peer' }

  let { paired } = state
  let { latest, used } = known ?? { latest: session, used: 0 }
  let rebuild: RebuildReason | undefined
  if (!known) {
    // First contact, or the remote reloaded and this is its new instance.
    if (paired !== undefined) rebuild = 'remote-replaced'
  } else if (paired !== undefined && paired !== session) {
    // A newer session than the paired one: the remote rebuilt, our counterpart is gone.
    rebuild = 'remote-restarted'
    used = Math.max(used, paired)
  }
  if (rebuild) paired = undefined
  latest = Math.max(latest, session)
  const confirmsUs = toSession === state.session && !rebuild
  if (toSession !== undefined && !confirmsUs) used = Math.max(used, session)
  const same = paired === session
  const pair = !same && (confirmsUs || session > used) ? session : undefined
  return {
    rebuild,
    remote: { id: from, since: known ? known.since || since : since, latest, used },
    pair,
    deliver: kind !== 'hello' && (same || pair !== undefined),
    // Paired already: answer only a broadcast hello (the remote lost track of us, e.g. its signaling
    // restarted). Otherwise answer unless the remote has already paired with us.
    reply: same ? message.to === undefined && kind === 'hello' : !confirmsUs || pair === undefined,
  }
}
