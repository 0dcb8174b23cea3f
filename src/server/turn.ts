import { createHmac } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Refusal } from './http-errors.js'
import type { Relay } from './relay.js'
import { bearer } from './target.js'

/**
 * A TURN server (coturn, or any server of the "TURN REST API" scheme) whose credentials the
 * signaling server mints for each admitted peer: `--use-auth-secret --static-auth-secret=<secret>`.
 *
 * @example
 * const turn: TurnOptions = { urls: ['turn:turn.example.org:3478'], secret: process.env.TURN_SECRET ?? '', ttl: 3600 }
 * createSignalingServer({ turn })
 */
export interface TurnOptions {
  /** The TURN server's URLs (`turn:`, `turns:`; `stun:` ones may come along), as clients reach them. */
  urls: string | string[]
  /** The secret shared with the TURN server (coturn's `static-auth-secret`). Never sent, never logged. */
  secret: string
  /**
   * How long (seconds) minted credentials may start new relays: coturn checks them when a client
   * allocates, not afterwards, so a call outlives them. Default 3600 ({@link TURN_DEFAULT_TTL}).
   */
  ttl?: number
}

/**
 * Default lifetime of minted credentials (seconds): an hour. A credential that leaks (a page's
 * memory, a log) can start relays for at most that long; clients fetch fresh ones once half of it
 * has passed, so a shorter one costs a request per half-life, and the other half is the margin for
 * the clocks of the signaling and TURN hosts to differ.
 *
 * @example
 * const turn = { urls: 'turn:turn.example.org:3478', secret, ttl: TURN_DEFAULT_TTL / 2 }
 */
export const TURN_DEFAULT_TTL = 3600

/** {@link TurnOptions} as checked: URLs as a list, the ttl filled in. */
export type CheckedTurn = Required<TurnOptions> & { urls: string[] }

/** The ICE servers a client gets, and for how long (seconds) their credentials are valid. */
export interface IceServersOffer {
  iceServers: Array<{ urls: string[]; username: string; credential: string }>
  ttl: number
}

/**
 * A TURN username and its password, as an `RTCIceServer` takes them.
 *
 * @example
 * const { username, credential }: TurnCredentials = mintTurnCredentials({ secret, user: peerId })
 * const server: RTCIceServer = { urls: 'turn:turn.example.org:3478', username, credential }
 */
export interface TurnCredentials {
  /** `<expiry in Unix seconds>:<user>`. */
  username: string
  /** The base64 HMAC-SHA1 of `username`, keyed with the shared secret. */
  credential: string
}

/**
 * Credentials of coturn's shared-secret scheme (the "TURN REST API"): `username` is
 * `<expiry in Unix seconds>:<user>`, `credential` the base64 HMAC-SHA1 of `username` keyed with
 * the secret. Nothing is stored: the TURN server recomputes the HMAC.
 *
 * @example
 * const { username, credential } = mintTurnCredentials({ secret: 'shared secret', user: 'alice', ttl: 600 })
 * const iceServers = [{ urls: 'turn:turn.example.org:3478', username, credential }]
 */
export function mintTurnCredentials(options: {
  /** The secret shared with the TURN server. */
  secret: string
  /** Who they are for (the peer id): after the expiry, for the TURN server's logs and quotas. */
  user: string
  /** Seconds they are valid for. Default {@link TURN_DEFAULT_TTL}. */
  ttl?: number
  /** Now, in ms since the epoch (default `Date.now()`). */
  now?: number
}): TurnCredentials {
  const { secret, user, ttl = TURN_DEFAULT_TTL, now = Date.now() } = options
  const username = `${Math.floor(now / 1000) + ttl}:${user}`
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') }
}

const TURN_URL = /^(stuns?|turns?):[^\s?#]+(\?transport=(udp|tcp))?$/

/**
 * Checks `turn` (the option, or the CLI's flags: `names` are how the errors call its fields): a
 * clear error naming what is wrong, never the secret. Returns it with its URLs as a list and its
 * ttl filled in.
 */
export function checkTurnOptions(
  turn: TurnOptions,
  names: Record<keyof TurnOptions, string> = { urls: 'turn.urls', secret: 'turn.secret', ttl: 'turn.ttl' },
): CheckedTurn {
  const urls = typeof turn?.urls === 'string' ? [turn.urls] : turn?.urls
  if (!Array.isArray(urls) || !urls.length) throw new TypeError(`${names.urls}: give one or more TURN URLs`)
  for (const url of urls)
    if (typeof url !== 'string' || !TURN_URL.test(url))
      throw new TypeError(
        `${names.urls}: ${JSON.stringify(url)} is not a URL like turn:turn.example.org:3478 (turn:, turns:, stun:)`,
      )
  if (typeof turn.secret !== 'string' || !turn.secret) throw new TypeError(`${names.secret}: the shared secret must not be empty`)
  const ttl = turn.ttl ?? TURN_DEFAULT_TTL
  if (!Number.isSafeInteger(ttl) || ttl < 1)
    throw new TypeError(`${names.ttl}: ${JSON.stringify(ttl)} is not a whole number of seconds, 1 or more`)
  return { urls, secret: turn.secret, ttl }
}

/**
 * The `turn` option from politely-server's flags or environment (`--turn-url` or `TURN_URL`,
 * comma-separated; `--turn-secret` or `TURN_SECRET`; `--turn-ttl` or `TURN_TTL`, seconds):
 * undefined when none is given, a clear error when they do not make a whole (the secret is never
 * in it).
 */
export function turnFromFlags(flags: { urls: string[]; secret?: string; ttl?: string }): CheckedTurn | undefined {
  const urls = flags.urls.map((url) => url.trim()).filter(Boolean)
  if (!urls.length && !flags.secret && !flags.ttl) return undefined
  if (!urls.length || !flags.secret) throw new TypeError('--turn-url and --turn-secret (or TURN_URL and TURN_SECRET) go together')
  const names = { urls: '--turn-url (TURN_URL)', secret: '--turn-secret (TURN_SECRET)', ttl: '--turn-ttl (TURN_TTL)' }
  const ttl = flags.ttl?.trim() || undefined
  if (ttl && !/^\d+$/.test(ttl)) throw new TypeError(`${names.ttl}: ${JSON.stringify(ttl)} is not a whole number of seconds`)
  return checkTurnOptions({ urls, secret: flags.secret, ttl: ttl === undefined ? undefined : Number(ttl) }, names)
}

/** What a client admitted as `peer` gets: fresh credentials for every URL. */
export function iceServersFor(turn: CheckedTurn, peer: string): IceServersOffer {
  return { iceServers: [{ urls: turn.urls, ...mintTurnCredentials({ ...turn, user: peer }) }], ttl: turn.ttl }
}

/** The route of fresh credentials under a room's URL. */
export const ICE_SERVERS_ROUTE = '/ice-servers'

/**
 * `GET <path>/<room>/ice-servers?peer=<id>` with `Authorization: Bearer <token>`: fresh credentials
 * for a peer whose token holds its id in the room (it subscribed), as `{ iceServers, ttl }`.
 * 404 `not-found` when the server offers no TURN, 401 `unauthorized` for a missing token or one
 * that does not hold the id.
 */
export async function serveIceServers(
  request: IncomingMessage,
  response: ServerResponse,
  room: string,
  url: URL,
  relay: Relay,
  turn: CheckedTurn | undefined,
  headers: Record<string, string>,
): Promise<void> {
  if (!turn) throw new Refusal('not-found', 'This server offers no TURN')
  const token = bearer(request)
  const peer = url.searchParams.get('peer') ?? ''
  if (!token || !(await relay.verify(room, peer, token)))
    throw new Refusal('unauthorized', 'Send `Authorization: Bearer <token>` of a subscription that holds `peer` in this room')
  response
    .writeHead(200, { ...headers, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    .end(JSON.stringify(iceServersFor(turn, peer)))
}
