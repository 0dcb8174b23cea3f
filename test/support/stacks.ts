import wrtc from '@roamhq/wrtc'
import { afterAll, beforeAll } from 'vitest'
import { RTCPeerConnection as WeriftPeerConnection } from 'werift'
import { BroadcastChannelSignaler, type PeerOptions, PerfectNegotiationPeer, type Signaler } from '../../src/index'
import { legacyPeerConnection, weriftPeerConnection } from '../../src/legacy'
import { startStunServer } from './stun-server'

/** A real WebRTC stack for Node, and the options a peer needs to run on it. */
export interface Stack {
  name: string
  options(): Pick<PeerOptions, 'RTCPeerConnection' | 'rtcConfig'>
  close(): Promise<void>
}

/** libwebrtc (the Chromium engine) bound to Node: no argument-less SLD, no implicit rollback, so wrapped by politely/legacy. */
export async function wrtcStack(): Promise<Stack> {
  return {
    name: 'wrtc',
    options: () => ({ RTCPeerConnection: legacyPeerConnection(wrtc.RTCPeerConnection as unknown as typeof RTCPeerConnection) }),
    close: async () => {},
  }
}

/**
 * werift (pure TypeScript, the full spec API), wrapped by politely/legacy's weriftPeerConnection
 * (its mids survive rollbacks and unset offers otherwise), with a STUN server of our own so
 * nothing leaves the machine.
 */
export async function weriftStack(): Promise<Stack> {
  const stun = await startStunServer()
  return {
    name: 'werift',
    options: () => ({
      RTCPeerConnection: weriftPeerConnection(WeriftPeerConnection as unknown as typeof RTCPeerConnection),
      rtcConfig: { iceServers: [{ urls: stun.url }] },
    }),
    close: () => stun.close(),
  }
}

/** Both Node stacks, for `describe.each(STACKS)('$name', ({ make }) => …)`. */
export const STACKS = [
  { name: 'wrtc', make: wrtcStack },
  { name: 'werift', make: weriftStack },
]

/** A unique room name per test, so tests never hear each other. */
export function uniqueRoom(): string {
  return `test-${Date.now()}-${Math.random().toString(36).slice(2)}`
}

/** A peer on a stack over Node's real BroadcastChannel, with every error collected. */
export function makePeer(
  stack: Stack,
  room: string,
  extra: Partial<PeerOptions> & { signaler?: Signaler } = {},
): PerfectNegotiationPeer & { errors: Error[] } {
  const peer = new PerfectNegotiationPeer({
    signaler: new BroadcastChannelSignaler({ room }),
    ...stack.options(),
    ...extra,
  }) as PerfectNegotiationPeer & { errors: Error[] }
  peer.errors = []
  peer.on('error', (error) => peer.errors.push(error))
  return peer
}

/** Resolves with the first event of a kind (optionally one that matches). */
export function next<T>(
  subscribe: (handler: (event: T) => void) => () => void,
  match: (event: T) => boolean = () => true,
): Promise<T> {
  return new Promise((resolve) => {
    const off = subscribe((event) => {
      if (!match(event)) return
      off()
      resolve(event)
    })
  })
}

/** Resolves when the peer reports `open` (or at once if it is already connected). */
export function opened(peer: PerfectNegotiationPeer): Promise<unknown> {
  if (peer.state === 'connected') return Promise.resolve()
  return next((h) => peer.on('open', h))
}

/**
 * Closes `remote` and resolves with what `local` reported until it rebuilt: the rebuild's
 * reason, every `close` reason and every recovery attempt (a `bye` that wins is
 * `remote-left`, `['remote-left']`, `[]`).
 */
export async function afterRemoteCloses(local: PerfectNegotiationPeer, remote: PerfectNegotiationPeer) {
  const closes: string[] = []
  const recoveries: string[] = []
  const offClose = local.on('close', ({ reason }) => closes.push(reason))
  const offRecovery = local.on('reconnecting', ({ reason }) => recoveries.push(reason))
  const rebuilt = next<{ reason: string }>((h) => local.on('rebuild', h))
  remote.close()
  const { reason } = await rebuilt
  offClose()
  offRecovery()
  return { rebuild: reason, closes, recoveries }
}

/** Sends `text` from `a` and resolves when `b` receives it. */
export async function roundTrip(a: PerfectNegotiationPeer, b: PerfectNegotiationPeer, text: string): Promise<void> {
  const received = next<{ data: unknown }>(
    (h) => b.on('message', h),
    (m) => m.data === text,
  )
  a.send(text)
  await received
}

/**
 * For a `describe.each(STACKS)` block: starts the stack before its tests,
 * closes every peer made with the returned `peer()` and the stack after them.
 */
export function useStack(make: () => Promise<Stack>) {
  let stack: Stack | undefined
  const peers: PerfectNegotiationPeer[] = []
  beforeAll(async () => {
    stack = await make()
  })
  afterAll(async () => {
    for (const p of peers) p.close()
    await stack?.close()
  })
  return {
    stack: () => stack as Stack,
    peer(room: string, extra: Partial<PeerOptions> & { signaler?: Signaler } = {}) {
      const created = makePeer(stack as Stack, room, extra)
      peers.push(created)
      return created
    },
  }
}
