import { type ErrorCode, PolitelyError } from '../errors.js'
import type { SignalMessage } from '../protocol.js'
import { backoff, type ReconnectPolicy, Streak } from '../reconnect.js'
import type { Signaler, SignalerEvents } from './signaler.js'
import { randomToken } from './token.js'

/**
 * Options every adapter of the reference server takes.
 *
 * @example
 * const options: ServerSignalerOptions = { url: '/signal', room: 'abc', maxPeers: 2, maxQueued: 500 }
 * const signaler = new SseSignaler(options) // or new WebSocketSignaler(options)
 */
export interface ServerSignalerOptions {
  /** The server's signaling URL, e.g. `https://example.com/signal` (rooms live under it). May be relative in a page. */
  url: string
  /** The room to join: peers in the same room of one server find each other. 1–64 of `A–Z a–z 0–9 _ . : ~ -`. */
  room: string
  /**
   * Seats the room may have while this peer joins: `2` keeps a 1:1 room to its
   * pair (a third peer is refused with `room-full`). The server's own cap
   * applies when absent or larger.
   */
  maxPeers?: number
  /**
   * Reconnect policy ({@link ReconnectPolicy}): the wait (ms) before reconnect attempt `attempt`
   * (1, 2, … since the server last welcomed us), given why (`'disconnected'` for a network drop;
   * the code of a refusal the server said may be retried: `rate-limited`, `unavailable`, …;
   * `replaced`), or `undefined` to give up: the signaler reports the error and stops. A refusal
   * that retrying cannot help (`forbidden`, `room-full`, `id-taken`, …) never asks the policy.
   * Default: {@link backoff}, never gives up.
   */
  reconnectDelay?: ReconnectPolicy<SignalerTrouble>
  /** Most messages held while the server cannot be reached. */
  maxQueued?: number
  /** The fetch function, for fresh TURN credentials (and, in `SseSignaler`, everything); the global one by default. */
  fetch?: typeof fetch
}

/** The TURN credentials the server gave, when, and for how long (ms). */
interface HeldIceServers {
  servers: RTCIceServer[]
  at: number
  ttl: number
}

/** What a server's `welcome` (and its `ice-servers` route) says of TURN; null: it offers none. */
function iceServersOf(body: { iceServers?: unknown; ttl?: unknown } | undefined): HeldIceServers | null {
  const servers = body?.iceServers
  return Array.isArray(servers) ? { servers, at: Date.now(), ttl: Number(body?.ttl) * 1000 } : null
}

/** Server codes an app can act on, reported under their own {@link ErrorCode}; the others are `signaling-failed`. */
const NAMED: readonly string[] = [
  'forbidden',
  'origin-not-allowed',
  'room-full',
  'id-taken',
  'too-many-rooms',
  'too-many-connections',
  'rate-limited',
  'unavailable',
]

/** How many replacements by a connection with our secret, within a minute, before we stop. */
const MAX_REPLACED = 3

/**
 * The typed error for a server's refusal: its code when it has one of its own,
 * with the HTTP status and the server's code attached.
 */
export function refusalError(status: number, serverCode: string | undefined, detail = ''): PolitelyError {
  // A 502–504 without a code of ours is a proxy's answer: the server behind it is away (a restart).
  const away = !serverCode && status > 501 && status < 505
  const code = (serverCode && NAMED.includes(serverCode) ? serverCode : away ? 'unavailable' : 'signaling-failed') as ErrorCode
  return new PolitelyError(code, `The signaling server refused: ${serverCode ?? `HTTP ${status}`}${detail && ` (${detail})`}`, {
    status,
    serverCode,
  })
}

/** Whether retrying can help: too many requests, or the server is unavailable. */
export const retryable = (error: PolitelyError) => error.status === 429 || (error.status ?? 0) >= 500

/**
 * What the SSE and WebSocket adapters share: the peer's secret (made up
 * here, bound to the peer id by the server on first use), the resume
 * position, the outgoing queue, and reconnecting with backoff. A subclass
 * opens its transport, calls `welcome()` when the server has accepted it,
 * `deliver()` for each message, `dropped()` when the transport ends, and
 * sends the queue in `flush()`.
 */
/**
 * Why a server signaler reconnects: a network drop, or the code of what the server said.
 *
 * @example
 * // Quick after a network drop, slow when the server is busy; give up after 20 tries in a row.
 * const reconnectDelay: ReconnectPolicy<SignalerTrouble> = (attempt, trouble) =>
 *   attempt > 20 ? undefined : trouble === 'disconnected' ? backoff(attempt) : 5000
 * new SseSignaler({ url: 'https://example.com/signal', room: 'abc', reconnectDelay })
 */
export type SignalerTrouble = 'disconnected' | ErrorCode

export abstract class ServerSignaler implements Signaler {
  protected readonly token = randomToken()
  protected readonly queue: SignalMessage[] = []
  protected readonly options: ServerSignalerOptions
  protected peer = ''
  protected events?: SignalerEvents
  protected lastEventId?: string
  /** Closed by the app, or stopped by a refusal that retrying cannot help. */
  protected closed = false
  readonly #handlers = new Set<(message: unknown) => void>()
  /** Reconnect attempts since the server last welcomed us. */
  readonly #streak: Streak<SignalerTrouble>
  #retry?: ReturnType<typeof setTimeout>
  #connecting?: { resolve(): void; reject(error: PolitelyError): void }
  /** Welcomed once since connect(): from then on, a drop is a reconnect, not a failure to report. */
  #everWelcomed = false
  /** The current failure streak was reported already: one error per streak, not one per retry. */
  #reported = false
  /** When this signaler was last replaced by another connection holding its secret. */
  #replacedAt: number[] = []
  /** Welcomed, and the transport has not dropped since. */
  #online = false
  /** The server's TURN credentials (null: it offers none; undefined: no welcome yet). */
  #ice?: HeldIceServers | null
  /** Builds waiting for a welcome: it brings fresh credentials. */
  #iceWaiting: Array<() => void> = []
  /** The request for fresh credentials under way. */
  #refreshing?: Promise<RTCIceServer[] | undefined>

  constructor(options: ServerSignalerOptions, name: string) {
    if (!options?.url || !options.room) throw new PolitelyError('invalid-options', `${name} needs a url and a room`)
    this.options = options
    this.#streak = new Streak(options.reconnectDelay ?? backoff)
  }

  /**
   * Connects as `peerId`. Resolves when the server welcomed us; rejects with a
   * typed {@link PolitelyError} when it refuses for good (`forbidden`,
   * `room-full`, `id-taken`, `origin-not-allowed`, …) or the reconnect policy
   * gives up; resolves at once if `close()` comes first.
   */
  connect(peerId: string, events: SignalerEvents): Promise<void> {
    this.peer = peerId
    this.events = events
    // Again after a refusal stopped us (the app may retry a `room-full`, say): a fresh start.
    this.closed = false
    this.#replacedAt = []
    this.#streak.attempt = 0
    this.#everWelcomed = false
    return new Promise((resolve, reject) => {
      this.#connecting = { resolve, reject }
      this.open()
    })
  }

  send(message: SignalMessage): void {
    if (this.closed) return
    if (this.queue.length >= (this.options.maxQueued ?? 1000)) {
      this.events?.error(
        new PolitelyError('signaling-failed', 'The signaling queue is full: the server has been unreachable too long'),
      )
      return
    }
    this.queue.push(message)
    this.flush()
  }

  subscribe(handler: (message: unknown) => void): () => void {
    this.#handlers.add(handler)
    return () => this.#handlers.delete(handler)
  }

  close(): void {
    this.closed = true
    this.#online = false
    clearTimeout(this.#retry)
    this.#handlers.clear()
    for (const resolve of this.#iceWaiting.splice(0)) resolve()
    this.shutdown()
    // Closed before the server welcomed us: connect() settles (its caller checks whether it was closed).
    this.#connecting?.resolve()
    this.#connecting = undefined
  }

  /**
   * The ICE servers the server offers (TURN credentials it minted for this peer), for each new
   * connection: none (undefined, at once) from a server without TURN. Credentials past half of
   * their lifetime are replaced first: by the next welcome while the server cannot be reached, else
   * from `GET <url>/<room>/ice-servers` (if that fails, ones not yet expired still serve). Before
   * the first welcome it waits for it.
   */
  iceServers(): Promise<RTCIceServer[] | undefined> | undefined {
    return this.#ice === null ? undefined : this.#freshIceServers()
  }

  async #freshIceServers(): Promise<RTCIceServer[] | undefined> {
    const age = (held: HeldIceServers) => Date.now() - held.at
    const before = this.#ice
    if (before === undefined || (before && !this.#online && age(before) > before.ttl / 2))
      await new Promise<void>((resolve) => this.#iceWaiting.push(resolve))
    const held = this.#ice
    if (!held || age(held) <= held.ttl / 2) return held?.servers
    // One request for the builds that ask at once (a room's links after a network change).
    this.#refreshing ??= this.#refreshIceServers().finally(() => {
      this.#refreshing = undefined
    })
    try {
      return await this.#refreshing
    } catch (error) {
      if (age(held) < held.ttl) return held.servers
      throw error
    }
  }

  async #refreshIceServers(): Promise<RTCIceServer[] | undefined> {
    const url = this.endpoint({ peer: this.peer })
    url.pathname += '/ice-servers'
    const response = await this.fetcher(url.href, { headers: { authorization: `Bearer ${this.token}` }, cache: 'no-store' })
    const body = await response.json().catch(() => undefined)
    if (!response.ok) throw refusalError(response.status, body?.error, 'fresh TURN credentials')
    return (this.#ice = iceServersOf(body))?.servers
  }

  /**
   * The fetch function, to be called as a plain function: a browser's fetch throws "Illegal
   * invocation" when called as a method of anything but the window.
   */
  protected get fetcher(): typeof fetch {
    const chosen = this.options.fetch ?? globalThis.fetch
    return (input, init) => chosen(input, init)
  }

  /** Opens the transport (again). */
  protected abstract open(): void
  /** Sends what is queued, if the transport can take it. */
  protected abstract flush(): void
  /** Ends the transport for good (queued messages may still leave). */
  protected abstract shutdown(): void

  /**
   * The server accepted us (`body`: what its welcome said, TURN credentials if it offers them):
   * `connect()` resolves, the backoff resets, the queue goes out.
   */
  protected welcome(body?: { iceServers?: unknown; ttl?: unknown }): void {
    this.#online = true
    this.#ice = iceServersOf(body)
    for (const resolve of this.#iceWaiting.splice(0)) resolve()
    this.#streak.attempt = 0
    this.#everWelcomed = true
    this.#reported = false
    this.#connecting?.resolve()
    this.#connecting = undefined
    this.events?.online?.(true)
    this.flush()
  }

  /** Hands an incoming message to the peer and remembers where to resume. */
  protected deliver(message: unknown, id: string | undefined): void {
    if (id) this.lastEventId = id
    for (const handler of this.#handlers) handler(message)
  }

  /**
   * The transport ended. `refusal`: what the server said (final ones stop us);
   * none: a drop, or no answer at all (reported as `unavailable` if we were
   * never welcomed: a wrong URL or a CORS block must not look like a hang).
   * `after`: the server's `Retry-After`, in ms.
   */
  protected dropped(refusal?: PolitelyError, after = 0): void {
    this.#online = false
    if (this.closed) return
    this.events?.online?.(false)
    if (refusal && !retryable(refusal)) {
      this.#stop(refusal)
      return
    }
    const error =
      refusal ??
      (this.#everWelcomed
        ? undefined
        : new PolitelyError('unavailable', `No answer from the signaling server at ${this.options.url} (network, or CORS)`))
    const delay = this.#streak.next(error?.code ?? 'disconnected')
    if (delay === undefined) {
      this.#stop(error ?? new PolitelyError('signaling-failed', 'The reconnect policy gave up'))
      return
    }
    // A server that served us before and is briefly unavailable (a restart, its hub reconnecting)
    // is a reconnect like a drop; every other refusal is news, once per streak.
    const news = error && !(this.#everWelcomed && error.code === 'unavailable')
    if (news && !this.#reported) this.events?.error(error)
    this.#reported ||= !!news
    this.#reopen(Math.max(delay, after))
  }

  /**
   * Another connection with our secret took our place. We come back after a
   * growing delay, so two holders of one secret do not take turns forever; at
   * the third time within a minute we stop with `replaced`.
   */
  protected replaced(): void {
    this.#online = false
    if (this.closed) return
    this.events?.online?.(false)
    const now = Date.now()
    this.#replacedAt = [...this.#replacedAt.filter((at) => at > now - 60_000), now]
    const count = this.#replacedAt.length
    if (count >= MAX_REPLACED) {
      this.#stop(new PolitelyError('replaced', 'Another connection with this signaler’s secret keeps taking its place'))
      return
    }
    const replaced = new PolitelyError('replaced', 'Another connection with this signaler’s secret took its place')
    const delay = (this.options.reconnectDelay ?? backoff)(count + 1, 'replaced', now - (this.#replacedAt[0] as number))
    if (delay === undefined) this.#stop(replaced)
    else this.#reopen(delay)
  }

  /**
   * The server is restarting (it drains) and asked us to come back within `within` ms: we
   * reconnect after a random part of that (the clients of one process spread out), through the
   * same URL to whichever process answers, resuming where we stopped. Not a failure: the backoff
   * streak is left as it is.
   */
  protected restarting(within: number): void {
    if (this.closed) return
    this.events?.online?.(false)
    this.#reopen(Math.random() * Math.min(Math.max(within, 0), 30_000))
  }

  /** The room's URL, with `query` (undefined values left out). */
  protected endpoint(query: Record<string, string | number | undefined> = {}): URL {
    const url = new URL(
      `${this.options.url.replace(/\/$/, '')}/${encodeURIComponent(this.options.room)}`,
      globalThis.location?.href,
    )
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value))
    return url
  }

  /** The query that subscribes this peer (and resumes where it stopped). */
  protected subscription(): Record<string, string | number | undefined> {
    return { peer: this.peer, token: this.token, lastEventId: this.lastEventId, maxPeers: this.options.maxPeers }
  }

  #reopen(delay: number): void {
    clearTimeout(this.#retry)
    this.#retry = setTimeout(() => this.open(), delay)
  }

  /** Stops for good: reported, and `connect()` rejects if it has not resolved. */
  #stop(error: PolitelyError): void {
    this.closed = true
    clearTimeout(this.#retry)
    this.shutdown()
    this.events?.error(error)
    this.#connecting?.reject(error)
    this.#connecting = undefined
  }
}
