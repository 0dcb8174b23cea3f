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

/**
 * ICE over UDP only: a member's TCP candidates are not sent. libwebrtc (wrtc) also pairs TCP
 * candidates, and here every member of a mesh lives in one process: an 8-member mesh is 56
 * connections with five local addresses each, its TCP checks ran into the thousands, the kernel
 * answered them with SYN cookies ("Possible SYN flooding" on the candidates' ports), the process
 * reached its 20,000-fd hard limit and libevent inside wrtc aborted the test worker (seen on a
 * quiet machine, on this session's first commit too). A browser holds one end of each link.
 */
function udpOnly(signaler: Signaler): Signaler {
  return {
    connect: (id, events) => signaler.connect(id, events),
    send: (message) => {
      if (message.kind === 'candidate' && / tcp /i.test(message.candidate?.candidate ?? '')) return
      signaler.send(message)
    },
    subscribe: (handler) => signaler.subscribe(handler),
    close: () => signaler.close(),
    ...(signaler.iceServers && { iceServers: () => signaler.iceServers?.() }),
  }
}

/** A room member over Node's real BroadcastChannel (unless a signaler is given), on `stack`, ICE over UDP. */
export function makeMember(stack: Stack, room: string, extra: Partial<RoomOptions> & { signaler?: Signaler } = {}): Member {
  const signaler = udpOnly(extra.signaler ?? new BroadcastChannelSignaler({ room }))
  const member = new Room({ ...stack.options(), ...extra, signaler }) as Member
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
