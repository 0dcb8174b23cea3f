import type { IncomingMessage } from 'node:http'
import { Refusal } from './http-errors.js'
import type { Hub } from './hub.js'
import { RateLimiter } from './rate-limit.js'

/**
 * Which cross-origin pages may use the server: a list of origins (`'*'` for any) or a predicate.
 *
 * @example
 * createSignalingServer({ allowedOrigins: ['https://app.example', 'https://staging.app.example'] })
 * createSignalingServer({ allowedOrigins: (origin) => /^https:\/\/[\w-]+\.app\.example$/.test(origin) })
 */
export type AllowedOrigins = readonly string[] | ((origin: string) => boolean)

/** Limits on what one client address, and all of them together, may hold at once. */
export interface AdmissionLimits {
  maxConnections: number
  maxConnectionsPerAddress: number
  newRoomsPerMinute: number
  allowedOrigins: AllowedOrigins
  trustProxy: boolean
  /** With {@link Hub.hold} (Redis), an address's subscriptions also count across every process. */
  hub?: Pick<Hub, 'hold'>
}

/**
 * One request or connection let in by {@link Admission.enter}: counted until it leaves. An object
 * with methods, not closures: a held connection keeps it for its whole life, and two closures over
 * a shared scope cost twice what this does.
 */
export class Entry {
  /** Counted out already. */
  #left = false
  /** Counts it out across processes; set once the hub counted it in. */
  #release?: () => void
  /** What it let in (an event stream): ended when it leaves, with no listeners of its own. */
  holder?: { end(): void }

  constructor(
    readonly address: string,
    readonly admission: Admission,
  ) {}

  /** Counts it out (once, however often it is called), across processes too if it was {@link hold}ing. */
  leave(): void {
    if (this.#left) return
    this.#left = true
    this.admission.counted(this.address)
    this.#release?.()
    this.holder?.end()
  }

  /**
   * For a subscription (SSE stream, WebSocket): counts it against its address's cap across every
   * process of the hub as well, when the hub can. Rejects with a {@link Refusal}. If it left while
   * the hub was asked, its count there is given back as soon as the hub answers.
   */
  async hold(): Promise<void> {
    if (this.#left) return
    const counted = await this.admission.holdAcross(this.address)
    if (!counted) return
    if (this.#left) counted()
    else this.#release = counted
  }
}

/**
 * The client's address: the socket's peer, or with `trustProxy` the last hop
 * of `X-Forwarded-For` (the one the proxy in front of us appended; earlier
 * hops are whatever the client wrote). An IPv6 client is its /64: one host
 * commonly holds a whole /64, so a full address per client would be no limit.
 */
export function clientAddress(request: IncomingMessage, trustProxy: boolean): string {
  const header = trustProxy ? request.headers['x-forwarded-for'] : undefined
  const hops = header === undefined ? undefined : String(header).split(',')
  const address = hops?.[hops.length - 1]?.trim() || request.socket?.remoteAddress || 'unknown'
  return prefix64(address)
}

/** An IPv6 address's first 64 bits (`2001:db8:0:1::/64`); IPv4 and IPv4-mapped addresses as they are. */
export function prefix64(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return mapped[1] as string
  if (!address.includes(':')) return address
  const [head = '', tail] = address.toLowerCase().split('%')[0]?.split('::') ?? []
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group || '0', 16).toString(16))
    .join(':')}::/64`
}

/**
 * Whether the request's `Origin` may use the server. No `Origin` (a non-browser
 * client, or a same-origin GET) and the server's own origin (scheme and host,
 * as this request reached us) always may: the check stops other sites' pages
 * from acting in a visitor's name. (A page on a name that resolves to this
 * server — DNS rebinding — has the server's own host; a public server should
 * not answer for names it does not serve.)
 */
export function originAllowed(request: IncomingMessage, allowed: AllowedOrigins, trustProxy = false): boolean {
  const origin = request.headers.origin
  if (origin === undefined) return true
  if (typeof allowed === 'function' ? allowed(origin) : allowed.includes('*') || allowed.includes(origin)) return true
  const proto = trustProxy ? request.headers['x-forwarded-proto'] : undefined
  const forwarded = proto === undefined ? undefined : String(proto).split(',')[0]?.trim()
  const scheme = forwarded ?? ((request.socket as { encrypted?: boolean } | undefined)?.encrypted ? 'https' : 'http')
  return origin.toLowerCase() === `${scheme}://${request.headers.host ?? ''}`.toLowerCase()
}

/** CORS headers for an allowed cross-origin request (none for same-origin or non-browser ones). */
export function corsHeaders(request: IncomingMessage): Record<string, string> {
  const origin = request.headers.origin
  return origin === undefined
    ? {}
    : { 'access-control-allow-origin': origin, vary: 'Origin', 'access-control-expose-headers': 'Retry-After' }
}

/** The answer to a CORS preflight of the publish route (the subscription is a simple GET and needs none). */
export const PREFLIGHT_HEADERS = {
  'access-control-allow-methods': 'GET, POST',
  'access-control-allow-headers': 'authorization, content-type, last-event-id',
  'access-control-max-age': '600',
}

/**
 * Counts what each client address holds (streams, sockets, requests in
 * flight) and the rooms it creates, so one client cannot take the server's
 * memory or file descriptors from everyone else.
 */
export class Admission {
  readonly #limits: AdmissionLimits
  readonly #held = new Map<string, number>()
  /** Room credit per address: `newRoomsPerMinute` tokens, refilled over a minute. */
  readonly #rooms: RateLimiter
  #total = 0
  readonly #hubFailed: (error: unknown) => void

  /** `hubFailed` hears of a hub that could not count a connection (the client is asked to retry). */
  constructor(limits: AdmissionLimits, hubFailed: (error: unknown) => void = () => {}) {
    this.#limits = limits
    this.#hubFailed = hubFailed
    this.#rooms = new RateLimiter(limits.newRoomsPerMinute / 60, limits.newRoomsPerMinute)
  }

  close(): void {
    this.#rooms.close()
  }

  /**
   * Checks the origin and counts a connection of `address` in this process (its subscriptions
   * across processes too, with {@link Entry.hold}). Throws a {@link Refusal}.
   */
  enter(request: IncomingMessage, address: string): Entry {
    const { maxConnections, maxConnectionsPerAddress, allowedOrigins } = this.#limits
    if (!originAllowed(request, allowedOrigins, this.#limits.trustProxy))
      throw new Refusal('origin-not-allowed', 'This origin may not use the server')
    const held = this.#held.get(address) ?? 0
    if (held >= maxConnectionsPerAddress) throw this.#tooMany()
    if (this.#total >= maxConnections) throw new Refusal('unavailable', 'The server holds all the connections it may; try again')
    this.#held.set(address, held + 1)
    this.#total++
    return new Entry(address, this)
  }

  /** An {@link Entry} of `address` left: counted out of this process. */
  counted(address: string): void {
    this.#total--
    const now = (this.#held.get(address) ?? 1) - 1
    if (now) this.#held.set(address, now)
    else this.#held.delete(address)
  }

  /**
   * Counts a subscription of `address` across processes, when the hub can; resolves to the
   * function that counts it out again (none without such a hub). Rejects with a {@link Refusal}.
   */
  async holdAcross(address: string): Promise<(() => void) | undefined> {
    const { maxConnectionsPerAddress, hub } = this.#limits
    if (!hub?.hold) return undefined
    let counted: (() => void) | undefined
    try {
      counted = await hub.hold(address, maxConnectionsPerAddress)
    } catch (error) {
      // As when the hub fails a publish (or the claim that would follow): 503, the client retries.
      this.#hubFailed(error)
      throw new Refusal('unavailable', 'Could not count the connection; try again')
    }
    if (!counted) throw this.#tooMany()
    return counted
  }

  #tooMany(): Refusal {
    const { maxConnectionsPerAddress } = this.#limits
    return new Refusal('too-many-connections', `At most ${maxConnectionsPerAddress} connections per client address`)
  }

  /** Whether `address` may create a room now (checked before a claim; {@link roomCreated} spends it). */
  mayCreateRoom(address: string): boolean {
    return this.#rooms.has(address)
  }

  /** `address` created a room. */
  roomCreated(address: string): void {
    this.#rooms.spend(address)
  }
}
