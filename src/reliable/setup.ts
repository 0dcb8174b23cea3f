import type { Emitter, EventType } from 'mitt'
import { PolitelyError } from '../errors.js'
import { subscribe } from '../host.js'
import { type ChannelOptions, DEFAULTS } from '../peer.js'
import { DATA_HEADER } from './frames.js'
import type { StreamLimits } from './stream.js'
import type { ReliablePeerOptions } from './types.js'

/**
 * Defaults of the options {@link ReliablePeer} adds, each given in its field's documentation
 * (`chunkSize`'s depends on the connection, so it has none here). Frozen.
 *
 * @example
 * // Twice the default window.
 * const peer = new ReliablePeer({ signaler, windowSize: 2 * RELIABLE_DEFAULTS.windowSize })
 */
export const RELIABLE_DEFAULTS: Readonly<Required<Pick<ReliablePeerOptions, 'windowSize' | 'maxTransferSize'>>> = Object.freeze({
  windowSize: 8 * 1024 * 1024,
  maxTransferSize: 1024 * 1024 * 1024,
})

/** Largest frame by default: 64 KiB crosses every browser and keeps the resend unit small. */
const FRAME_LIMIT = 64 * 1024

/**
 * What a reliable peer or room derives from its options: its stream identity (`nonce`), the
 * bounds of a stream over the connection `connection(member)` returns, and the managed channels
 * (ordered and fully reliable: those whose delivery the streams can make exact).
 */
export function setup(
  options: ReliablePeerOptions,
  connection: (member: string) => RTCPeerConnection | undefined,
): { nonce: number; limits: (member?: string) => StreamLimits; managed: string[] } {
  const {
    chunkSize = FRAME_LIMIT - DATA_HEADER,
    windowSize = RELIABLE_DEFAULTS.windowSize,
    maxTransferSize = RELIABLE_DEFAULTS.maxTransferSize,
    maxMessageSize = DEFAULTS.maxMessageSize,
  } = options
  // A frame must pass the core's own bound.
  const chunk = Math.floor(Math.min(chunkSize, maxMessageSize - DATA_HEADER))
  if (!(chunk > 0 && windowSize > 0 && maxTransferSize >= 0)) throw new PolitelyError('invalid-options', 'Bad sizes')
  const [high, low] = crypto.getRandomValues(new Uint32Array(2))
  return {
    // 53 random bits, never 0 (0 means "none" on the wire).
    nonce: (high! & 0x1fffff) * 2 ** 32 + low! + 1,
    limits: (member = '') => ({
      windowSize,
      maxTransferSize,
      chunkSize: () => Math.min(chunk, ((connection(member)?.sctp?.maxMessageSize || Infinity) as number) - DATA_HEADER),
    }),
    managed: Object.entries<ChannelOptions>({ default: {}, ...options.channels })
      .filter(([, init]) => init.ordered !== false && init.maxRetransmits == null && init.maxPacketLifeTime == null)
      .map(([name]) => name),
  }
}

/**
 * Subscribes to an event of a reliable peer or room: `message` and `progress` come from its
 * streams alone (`emitter`), `error` from both, the rest from the core (`core`). Returns the
 * function that unsubscribes.
 */
export function subscribeBoth<Events extends Record<EventType, unknown>>(
  core: (type: string, handler: (event: unknown) => void) => () => void,
  emitter: Emitter<Events>,
  type: string,
  handler: (event: unknown) => void,
): () => void {
  const own = type === 'message' || type === 'progress'
  const offs = own ? [] : [core(type, handler)]
  if (own || type === 'error') offs.push(subscribe(emitter, type, handler as (event: Events[string]) => void))
  return () => {
    for (const off of offs) off()
  }
}
