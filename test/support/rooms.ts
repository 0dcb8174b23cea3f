import { BroadcastChannelSignaler, type Signaler } from '../../src/index'
import { type LeaveReason, Room, type RoomOptions } from '../../src/room'
import type { Stack } from './stacks'
import { until } from './until'

/** A room member on a stack, recording what the tests look at. */
export type Member = Room & {
  errors: Error[]
  /** Every message received, as `from:data`. */
  received: string[]
  /** `id:reason` of every peer-leave. */
  leaves: string[]
  /** `from:reason` of every rebuild and every recovery attempt. */
  rebuilds: string[]
  recoveries: string[]
}

/** A room member over Node's real BroadcastChannel (unless a signaler is given), on `stack`. */
export function makeMember(stack: Stack, room: string, extra: Partial<RoomOptions> & { signaler?: Signaler } = {}): Member {
  const member = new Room({ signaler: new BroadcastChannelSignaler({ room }), ...stack.options(), ...extra }) as Member
  Object.assign(member, { errors: [], received: [], leaves: [], rebuilds: [], recoveries: [] })
  member.on('error', (error) => member.errors.push(error))
  member.on('message', ({ from, data }) => member.received.push(`${from}:${String(data)}`))
  member.on('peer-leave', ({ id, reason }) => member.leaves.push(`${id}:${reason}`))
  member.on('rebuild', ({ from, reason }) => member.rebuilds.push(`${from}:${reason}`))
  member.on('reconnecting', ({ from, reason }) => member.recoveries.push(`${from}:${reason}`))
  return member
}

/** Whether every member has an open link to every other one (and to no one else). */
export function isFullMesh(members: readonly Room[]): boolean {
  return members.every((member) => {
    const open = member.peers.filter((peer) => peer.state === 'connected').map((peer) => peer.id)
    return open.length === members.length - 1 && members.every((other) => other === member || open.includes(other.id))
  })
}

/**
 * Waits for a full mesh, then proves every link carries data: each member sends one message
 * to each other member (`to`), and every one of them arrives.
 */
export async function fullMesh(members: readonly Member[], what: string, timeoutMs = 30_000): Promise<void> {
  await until(() => isFullMesh(members), `${what}: full mesh of ${members.length}`, timeoutMs)
  const tag = Math.random().toString(36).slice(2, 8)
  for (const from of members) for (const to of members) if (to !== from) void from.send(`${tag}>${to.id}`, { to: to.id })
  await until(
    () => members.every((to) => members.every((from) => from === to || to.received.includes(`${from.id}:${tag}>${to.id}`))),
    `${what}: a message over every link`,
    timeoutMs,
  )
}

/** Members that left with `reason`, as `peer-leave` reported them. */
export function leftWith(member: Member, id: string, reason: LeaveReason): boolean {
  return member.leaves.includes(`${id}:${reason}`)
}
