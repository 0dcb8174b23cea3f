import type { Emitter, EventType } from 'mitt'
import type { Channel, ChannelSpec } from './channels.js'
import { PolitelyError } from './errors.js'
import type { Link } from './link.js'
import { isValidPeerId, parseSignal, type SignalMessage } from './protocol.js'
import type { Signaler } from './signalers/signaler.js'

// What a peer and a room share around their links: checking options, the channel layout,
// guarded subscriptions, the hello schedule and the validation of what the signaler brings.

export const DEFAULT_CHANNEL = 'default'

/** Whether the id and the stack are usable and no channel takes the default's name. */
export function validSetup(options: { RTCPeerConnection: unknown; channels: object }, id: string): boolean {
  return typeof options.RTCPeerConnection === 'function' && isValidPeerId(id) && !(DEFAULT_CHANNEL in options.channels)
}

/** The negotiated channels, identical on both sides: `default` first, then the others by name. */
export function channelSpecs(channels: Record<string, RTCDataChannelInit>): ChannelSpec[] {
  return [DEFAULT_CHANNEL, ...Object.keys(channels).sort()].map((name, id) => ({ name, id, init: channels[name] ?? {} }))
}

/** A link's queue for `channel`, or `unknown-channel`. */
export function queueOf(link: Link, channel: string): Channel {
  const queue = link.queues.get(channel)
  if (!queue) throw new PolitelyError('unknown-channel', `No channel "${channel}"`)
  return queue
}

/** Subscribes `handler` so that one that throws disturbs neither the emitter nor the other handlers. */
export function subscribe<Events extends Record<EventType, unknown>, K extends keyof Events>(
  emitter: Emitter<Events>,
  type: K,
  handler: (event: Events[K]) => void,
): () => void {
  const guarded = (event: Events[K]) => {
    try {
      handler(event)
    } catch (error) {
      setTimeout(() => {
        throw error
      })
    }
  }
  emitter.on(type, guarded)
  return () => emitter.off(type, guarded)
}

/** Validates a raw signal; an invalid one is reported as `report`ed and yields nothing. */
export function parse(raw: unknown, maxSize: number, report: (error: PolitelyError) => void): SignalMessage | undefined {
  try {
    return parseSignal(raw, maxSize)
  } catch (error) {
    report(error as PolitelyError)
  }
}

/**
 * Calls `announce` soon at first (a lost hello costs half a second, not `interval`), then
 * after 1 and 2 s, then every `interval` ms. Returns the function that stops it.
 */
export function repeat(interval: number, announce: () => unknown): () => void {
  let timer: ReturnType<typeof setTimeout>
  const next = (wait: number) => {
    timer = setTimeout(() => {
      announce()
      next(Math.min(wait * 2, interval))
    }, wait)
  }
  next(Math.min(500, interval))
  return () => clearTimeout(timer)
}

/**
 * Starts the WebRTC stack while signaling connects: a browser starts it (threads, network monitor)
 * with a page's first RTCPeerConnection, 20-45 ms in headless Chromium and several times that on a
 * busy page, and the first link would wait for it after the first hello. One connection, made now
 * and closed a second after `connected` settles: a stack that stops when its last connection
 * closes (node-webrtc) keeps running until the first real one is there.
 */
export function warmUp(RTCPeerConnection: typeof globalThis.RTCPeerConnection, connected: Promise<unknown>): void {
  try {
    const pc = new RTCPeerConnection()
    const close = () => setTimeout(() => pc.close(), 1000)
    connected.then(close, close)
  } catch {}
}

/** Calls `close` when the page goes away (no-op outside a browser). Returns the function that stops it. */
export function onPageHide(close: (event: PageTransitionEvent) => void): () => void {
  globalThis.addEventListener?.('pagehide', close)
  return () => globalThis.removeEventListener?.('pagehide', close)
}

/** Hands a message to the signaler: a `signal` event (out) if it took it, `signaling-failed` if it threw. */
export function sendSignal(
  signaler: Signaler,
  message: SignalMessage,
  emit: (type: 'signal' | 'error', event: unknown) => void,
): void {
  try {
    signaler.send(message)
    emit('signal', { direction: 'out', message })
  } catch (cause) {
    emit('error', new PolitelyError('signaling-failed', `Sending a ${message.kind} failed`, { cause }))
  }
}
