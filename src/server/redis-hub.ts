/**
 * The Redis hub: several server processes behind one address share rooms.
 *
 * @module politely/redis
 */
import { randomUUID } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import type { ClaimResult, Hub, RoomEvent } from './hub.js'
import { Digests, sameDigest } from './secret.js'
import { peerKey } from './target.js'

/**
 * Options of {@link RedisHub}.
 *
 * @example
 * const options: RedisHubOptions = { ...SERVER_DEFAULTS, redis: { host: 'redis.internal', port: 6379 }, prefix: 'staging' }
 * const hub = new RedisHub(options)
 * await hub.connect()
 */
export interface RedisHubOptions {
  /** `redis://host:port/db`, or ioredis options. */
  redis: string | RedisOptions
  /** Rooms this process serves at once; a claim that would add another is refused (`too-many-rooms`). */
  maxRooms: number
  /** Replay buffer per room: about this many events kept (the stream is trimmed approximately). */
  replayMessages: number
  /** Replay buffer per room: how long an event is kept (ms); an idle room's stream expires after twice that. */
  replayAgeMs: number
  /**
   * How long a peer id stays bound after its last connection ended (ms), so it can resume; also
   * how long the ids of a process that crashed stay taken, and at most how long its connections
   * still count against their client addresses' caps.
   */
  releaseMs: number
  /** Key prefix, so several deployments can share one Redis. */
  prefix?: string
  /** Told when Redis becomes unreachable (ioredis keeps reconnecting); a warning on the console by default. */
  onError?: (error: Error) => void
}

// Presence is kept on Redis's clock: a peer is present until its score (Redis's time when its
// process last refreshed it, plus releaseMs), whatever the processes' own clocks say.
const NOW = `
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
`

// Claim a peer id: the same secret may claim again; another is refused while the binding lives;
// a new binding needs a free seat among the peers connected now. A key per peer names its
// newest connection (the relay names them), for releaseMs after its last refresh: a process
// holding an older one ends it, told on the room's channel when a claim resumes (and by KEEP,
// should that message be lost). KEYS: binding, live set, channel, newest.
// ARGV: hash, releaseMs, maxPeers, peer, connection.
const CLAIM = `${NOW}
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 'id-taken' end
local result = 'resumed'
if not current then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ms)
  local connected = redis.call('ZCARD', KEYS[2])
  if connected >= tonumber(ARGV[3]) then return 'room-full' end
  if connected == 0 then result = 'created' else result = 'claimed' end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ms + tonumber(ARGV[2]), ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[2])
if result == 'resumed' then redis.call('PUBLISH', KEYS[3], cjson.encode({'', ARGV[4], ARGV[5]})) end
return result`

// Keeps a live binding and its presence. SET, not PEXPIRE: after a Redis restart (no
// persistence) this puts the binding back — unless another token claimed the id meanwhile:
// then it is theirs, and 0 says so; or a newer connection of the peer holds it (elsewhere), named.
// KEYS: binding, live set, newest. ARGV: hash, releaseMs, peer, connection.
const KEEP = `${NOW}
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
local newest = redis.call('GET', KEYS[3])
if newest and newest ~= ARGV[4] then return newest end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ms + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[2])
return 1`

// A peer's last connection here ended: it is no longer present, unless a newer connection of it
// is (elsewhere). Its newest key stays until it expires: an older connection that missed the
// takeover is still told by its next KEEP. KEYS: live set, newest. ARGV: peer, connection.
const LEAVE = `
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return end
redis.call('ZREM', KEYS[1], ARGV[1])`

// The peers present in a room. KEYS: live set.
const PRESENT = `${NOW}
return redis.call('ZRANGEBYSCORE', KEYS[1], ms, '+inf')`

// Append to the room's stream and fan out, in one atomic step so every process sees
// events in stream order. Each entry names the one before it ('prev'): a resume position
// trimmed away resumes from the entry that names it. Aged out on Redis's clock, which made
// the ids (not on this process's, which may be ahead). Once per publish: ioredis sends a
// command again when its connection dropped before the answer came, and the script may have
// run; a process numbers its publishes, which run in that order, and the room keeps the
// newest number it ran of each process (with its id, the answer to a repeat), and under the
// field '' the newest id (no process is named '').
// KEYS: stream, channel, numbers. ARGV: from, to, data, maxlen, maxAgeMs, ttl, process, number.
const PUBLISH = `${NOW}
local held = redis.call('HMGET', KEYS[3], ARGV[7], '')
if held[1] then
  local number, ranId = string.match(held[1], '^(%d+) (.+)$')
  if tonumber(number) >= tonumber(ARGV[8]) then return ranId end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'from', ARGV[1], 'to', ARGV[2], 'data', ARGV[3], 'prev', held[2] or '')
redis.call('XTRIM', KEYS[1], 'MINID', '~', ms - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', KEYS[2], cjson.encode({id, ARGV[1], ARGV[2], ARGV[3]}))
redis.call('HSET', KEYS[3], ARGV[7], ARGV[8] .. ' ' .. id, '', id)
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return id`

// A token bucket shared by every process, on Redis's clock (the processes' clocks may differ).
// KEYS: bucket. ARGV: count, ratePerSecond, burst. Returns 1 when the tokens were taken.
const TAKE = `${NOW}
local rate, burst, count = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[1])
local held = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(held[1]) or burst
local at = tonumber(held[2]) or ms
tokens = math.min(burst, tokens + math.max(0, ms - at) * rate / 1000)
local taken = 0
if tokens >= count then
  tokens = tokens - count
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', ms)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return taken`

// Counts one connection of a client address across processes: a hash per address, a field per
// process holding some of them. A process is alive while its score in the processes set (Redis's
// clock + ttl, refreshed by its timer) is ahead; a dead one's fields are dropped, not counted.
// KEYS: counts, processes. ARGV: process, limit, ttl. Returns 1 when counted.
const HOLD = `${NOW}
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], ms + ttl, ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
local fields = redis.call('HGETALL', KEYS[1])
local held = 0
for i = 1, #fields, 2 do
  local alive = redis.call('ZSCORE', KEYS[2], fields[i])
  if alive and tonumber(alive) > ms then held = held + tonumber(fields[i + 1])
  else redis.call('HDEL', KEYS[1], fields[i]) end
end
if held >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`

// Counts one connection of this process out. KEYS: counts. ARGV: process.
const UNHOLD = `
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end`

// Keeps this process alive, and its counts with it: each count is set to what the process knows
// it holds — between `low` (answered) and `high` (also those still asked for), so a count that a
// lost reply left doubled, or that a Redis restart lost, is put right — and kept from expiring.
// Dead processes leave the set. KEYS: processes, counts…. ARGV: process, ttl, then low, high per count.
const REFRESH = `${NOW}
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
redis.call('ZADD', KEYS[1], ms + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
for i = 2, #KEYS do
  local held = tonumber(redis.call('HGET', KEYS[i], ARGV[1])) or 0
  held = math.max(tonumber(ARGV[2 * i - 1]), math.min(tonumber(ARGV[2 * i]), held))
  if held > 0 then
    redis.call('HSET', KEYS[i], ARGV[1], held)
    if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  else
    redis.call('HDEL', KEYS[i], ARGV[1])
  end
end`

/** Counts refreshed per script call: a few hundred keys keep one call short for Redis. */
const REFRESH_BATCH = 200

/** The Lua scripts defined on the command client (`defineCommand`), as ioredis adds them. */
interface Scripts {
  politelyClaim(...args: unknown[]): Promise<string>
  politelyTake(...args: unknown[]): Promise<number>
  politelyHold(...args: unknown[]): Promise<number>
  politelyUnhold(...args: unknown[]): Promise<unknown>
  politelyPublish(...args: unknown[]): Promise<string>
  politelyRefreshHolds(...args: unknown[]): Promise<unknown>
  politelyKeep(...args: unknown[]): Promise<unknown>
  politelyLeave(...args: unknown[]): Promise<unknown>
  politelyPresent(...args: unknown[]): Promise<string[]>
}

/** What a Redis stream id looks like (two 64-bit numbers): the only resume positions this hub orders. */
const isStreamId = (text: string) => /^\d{1,20}-\d{1,20}$/.test(text) && text.split('-').every((part) => BigInt(part) < 2n ** 64n)

/** Compares two stream ids (`ms-seq`). */
function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am - bm || as - bs
}

/** A room event from a stream entry (its fields as PUBLISH writes them: from, to, data, prev). */
function toEvent([id, fields]: [string, string[]]): RoomEvent {
  const [, from = '', , to = '', , data = ''] = fields
  return to ? { id, from, to, data } : { id, from, data }
}

/**
 * Rooms in Redis, so any number of server processes act as one: a stream per
 * room is the replay buffer (its ids are resume positions valid on every
 * process), pub/sub fans out, bindings and presence are shared keys with
 * TTLs, so idle rooms cost nothing. Each peer's rate limit and each client
 * address's connection cap are kept here too, so they hold across the processes.
 *
 * @example
 * import { createSignalingServer, SERVER_DEFAULTS } from 'politely/server'
 * import { RedisHub } from 'politely/redis'
 *
 * const hub = new RedisHub({ ...SERVER_DEFAULTS, redis: 'redis://localhost:6379' })
 * await hub.connect()
 * const signaling = createSignalingServer({ hub })
 */
export class RedisHub implements Hub {
  readonly #client: Redis
  readonly #subscriber: Redis
  readonly #options: RedisHubOptions
  readonly #prefix: string
  /** Local listeners per room; a room is subscribed on Redis while it has any. */
  readonly #listeners = new Map<string, Set<(event: RoomEvent) => void>>()
  /** What each listener that asked to be told of lost events gave for that. */
  readonly #lost = new Map<(event: RoomEvent) => void, () => void>()
  /**
   * Per subscribed room, whether its SUBSCRIBE went through, once Redis answered: a replay read
   * before then could miss what is published in between.
   */
  readonly #subscribed = new Map<string, Promise<boolean>>()
  /**
   * While the subscriber connection is down and catching up, per room not caught up yet, the live
   * events that came meanwhile: they wait for the stream read, which holds older ones.
   */
  #catchingUp: Map<string, RoomEvent[]> | undefined
  /** Connections of this process per `room\u0000peer`, kept alive in Redis while > 0. */
  /** …and the newest of them (the relay's name for it, as `claim()` was told). */
  readonly #local = new Map<string, { room: string; peer: string; tokenHash: string; connections: number; connection: string }>()
  readonly #refresher: ReturnType<typeof setInterval>
  readonly #digests = new Digests()
  /** Newest event id handed to local listeners, per room: no event twice, none skipped after a reconnect. */
  readonly #delivered = new Map<string, string>()
  /** This process, as the counts of {@link hold} and the numbers of its publishes name it. */
  readonly #process = randomUUID()
  /** Publishes this process has sent (see PUBLISH: each runs once). */
  #published = 0
  /** What each server on this hub gave {@link onEvicted}. */
  readonly #evicted = new Set<(room: string, peer: string, newest?: string) => void>()
  /**
   * Connections this process counts in Redis per key: `held` (answered), `pending` (asked for).
   * A key stays until a refresh has set its count in Redis with nothing pending.
   */
  readonly #holds = new Map<string, { held: number; pending: number }>()

  constructor(options: RedisHubOptions) {
    this.#options = options
    this.#prefix = options.prefix ?? 'politely'
    const connect = () =>
      typeof options.redis === 'string'
        ? new Redis(options.redis, { lazyConnect: true })
        : new Redis({ ...options.redis, lazyConnect: true })
    this.#client = connect()
    this.#subscriber = connect()
    // One report per outage, not one per reconnect attempt.
    let reported = false
    const report = options.onError ?? ((error: Error) => console.warn(`politely: Redis unreachable: ${error.message}`))
    for (const client of [this.#client, this.#subscriber]) {
      client.on('error', (error: Error) => {
        if (!reported) report(error)
        reported = true
      })
      client.on('ready', () => {
        reported = false
      })
    }
    // Back after an outage (Redis may have restarted empty): our bindings at once, before anyone
    // else can claim them, not at the next refresh.
    let connected = false
    this.#client.on('ready', () => {
      if (connected) void this.#refresh()
      connected = true
    })
    this.#client.defineCommand('politelyClaim', { numberOfKeys: 4, lua: CLAIM })
    this.#client.defineCommand('politelyPublish', { numberOfKeys: 3, lua: PUBLISH })
    this.#client.defineCommand('politelyTake', { numberOfKeys: 1, lua: TAKE })
    this.#client.defineCommand('politelyHold', { numberOfKeys: 2, lua: HOLD })
    this.#client.defineCommand('politelyUnhold', { numberOfKeys: 1, lua: UNHOLD })
    this.#client.defineCommand('politelyRefreshHolds', { lua: REFRESH })
    this.#client.defineCommand('politelyKeep', { numberOfKeys: 3, lua: KEEP })
    this.#client.defineCommand('politelyLeave', { numberOfKeys: 2, lua: LEAVE })
    this.#client.defineCommand('politelyPresent', { numberOfKeys: 1, lua: PRESENT })
    this.#subscriber.on('message', (channel: string, text: string) => {
      const room = channel.slice(this.#prefix.length + 2, -4) // <prefix>:{<room>}:ev
      const [id, from, to, data] = JSON.parse(text) as [string, string, string, string]
      // No id: not an event but a claim that resumed `from` (CLAIM) through connection `to`.
      if (!id) return void this.#resumed(room, from, to)
      const event = to ? { id, from, to, data } : { id, from, data }
      const waiting = this.#catchingUp?.get(room)
      if (waiting) waiting.push(event)
      else this.#fanOut(room, event)
    })
    // Pub/sub drops what is published while the subscriber reconnects: catch up from the streams,
    // holding what comes live from the moment it went down until the stream before it is read.
    let first = true
    this.#subscriber.on('close', () => {
      this.#catchingUp = new Map([...this.#listeners.keys()].map((room) => [room, []]))
    })
    this.#subscriber.on('ready', () => {
      if (!first) void this.#catchUp()
      first = false
    })
    // Bindings, presence and connection counts of our live connections expire unless refreshed:
    // a crashed process frees its peers and its clients' addresses.
    this.#refresher = setInterval(
      () => {
        void this.#refresh()
        void this.#refreshHolds()
      },
      Math.max(200, options.releaseMs / 3),
    )
    this.#refresher.unref?.()
  }

  /** Connects both Redis clients; rejects (with the client's error) when Redis cannot be reached. */
  async connect(): Promise<void> {
    await Promise.all([this.#client.connect(), this.#subscriber.connect()])
  }

  /**
   * A key of `room`: `<prefix>:{<room>}:<part>…`. The braces (which no room name holds) keep one
   * room's keys apart from another's whose name goes on with `:` (room `a:peer`'s zset of peers
   * present is not peer `live`'s binding in room `a`), and put a room's keys in one Redis Cluster slot.
   */
  #key(room: string, ...parts: string[]): string {
    return [this.#prefix, `{${room}}`, ...parts].join(':')
  }

  async claim(room: string, peer: string, token: string, maxPeers: number, connection = ''): Promise<ClaimResult> {
    const local = peerKey(room, peer)
    const rooms = new Set([...this.#local.values()].map((binding) => binding.room))
    if (!rooms.has(room) && rooms.size >= this.#options.maxRooms) return 'too-many-rooms'
    const tokenHash = this.#digests.of(token)
    const result = (await this.#scripts.politelyClaim(
      this.#key(room, 'peer', peer),
      this.#key(room, 'live'),
      this.#key(room, 'ev'),
      this.#key(room, 'newest', peer),
      tokenHash,
      this.#options.releaseMs,
      maxPeers,
      peer,
      connection,
    )) as ClaimResult
    if (result !== 'created' && result !== 'claimed' && result !== 'resumed') return result
    const binding = this.#local.get(local)
    if (binding) {
      binding.connections++
      binding.connection = connection
    } else this.#local.set(local, { room, peer, tokenHash, connections: 1, connection })
    return result
  }

  /** The command client's Lua scripts (ioredis adds a method per `defineCommand`; its types cannot know them). */
  get #scripts(): Scripts {
    return this.#client as unknown as Scripts
  }

  /** A token bucket in Redis: a peer's rate limit holds across every process its requests reach. */
  async take(key: string, count: number, ratePerSecond: number, burst: number): Promise<boolean> {
    const taken = await this.#scripts.politelyTake(`${this.#prefix}:rate:${key}`, count, ratePerSecond, burst)
    return taken === 1
  }

  /**
   * Counts a connection of `key` in Redis, across every process: one round trip, and one (not
   * awaited) to count it out. Both go on one connection, in order, so the count out never
   * overtakes its count. A process that dies holding counts loses them within `releaseMs`.
   */
  async hold(key: string, limit: number): Promise<(() => void) | undefined> {
    let entry = this.#holds.get(key)
    if (!entry) {
      entry = { held: 0, pending: 0 }
      this.#holds.set(key, entry)
    }
    entry.pending++
    let counted: number
    try {
      counted = await this.#scripts.politelyHold(
        this.#holdKey(key),
        this.#processesKey(),
        this.#process,
        limit,
        this.#options.releaseMs,
      )
    } finally {
      entry.pending--
    }
    if (counted !== 1) return undefined
    entry.held++
    let released = false
    return () => {
      if (released) return
      released = true
      const held = this.#holds.get(key)
      if (held) held.held--
      this.#scripts.politelyUnhold(this.#holdKey(key), this.#process).catch(() => {})
    }
  }

  // Outside every room's keys: a room name has no '/', and each room key has a part after the room.
  #holdKey(key: string): string {
    return `${this.#prefix}:conn/${key}`
  }
  #processesKey(): string {
    return `${this.#prefix}:processes`
  }

  async verify(room: string, peer: string, token: string): Promise<boolean> {
    const digest = this.#digests.of(token)
    // A binding this process keeps alive is one nobody else can hold: no round trip to Redis.
    const local = this.#local.get(peerKey(room, peer))
    if (local) return sameDigest(local.tokenHash, digest)
    const held = await this.#client.get(this.#key(room, 'peer', peer))
    return held !== null && sameDigest(held, digest)
  }

  release(room: string, peer: string, token: string): void {
    const local = peerKey(room, peer)
    const binding = this.#local.get(local)
    if (!binding || !sameDigest(binding.tokenHash, this.#digests.of(token)) || --binding.connections > 0) return
    this.#local.delete(local)
    // Not present any more (unless it went on on another process); the binding itself lives out
    // its grace (releaseMs) for a resume.
    this.#scripts
      .politelyLeave(this.#key(room, 'live'), this.#key(room, 'newest', peer), peer, binding.connection)
      .catch(() => {})
  }

  /**
   * A claim resumed `peer` through `connection`: a connection of it here ends if it is not the
   * newest. Asked of Redis, which ordered the claims: this message may come after a newer claim
   * made here (it travels on another connection than the claims' answers).
   */
  async #resumed(room: string, peer: string, connection: string): Promise<void> {
    const binding = this.#local.get(peerKey(room, peer))
    if (!binding || binding.connection === connection) return
    const newest = await this.#client.get(this.#key(room, 'newest', peer)).catch(() => null)
    if (newest !== null && newest !== binding.connection) this.#evict(room, peer, newest)
  }

  /** Tells the server to end its connection of `peer`, unless it is `newest`. */
  #evict(room: string, peer: string, newest?: string): void {
    for (const evicted of this.#evicted) evicted(room, peer, newest)
  }

  async publish(room: string, event: Omit<RoomEvent, 'id'>): Promise<RoomEvent> {
    const { replayMessages, replayAgeMs } = this.#options
    const id = await this.#scripts.politelyPublish(
      this.#key(room, 'log'),
      this.#key(room, 'ev'),
      this.#key(room, 'published'),
      event.from,
      event.to ?? '',
      event.data,
      replayMessages,
      replayAgeMs,
      replayAgeMs * 2,
      this.#process,
      ++this.#published,
    )
    return event.to === undefined
      ? { id, from: event.from, data: event.data }
      : { id, from: event.from, to: event.to, data: event.data }
  }

  subscribe(room: string, listener: (event: RoomEvent) => void, lost?: () => void): () => void {
    let listeners = this.#listeners.get(room)
    if (!listeners) {
      listeners = new Set()
      this.#listeners.set(room, listeners)
      // A new subscription replays from the stream itself: nothing held from before is for it.
      this.#catchingUp?.delete(room)
      this.#subscribeRooms([room]).catch(() => {})
    }
    listeners.add(listener)
    if (lost) this.#lost.set(listener, lost)
    return () => {
      listeners.delete(listener)
      this.#lost.delete(listener)
      if (listeners.size || this.#listeners.get(room) !== listeners) return
      this.#listeners.delete(room)
      this.#subscribed.delete(room)
      this.#delivered.delete(room)
      this.#subscriber.unsubscribe(this.#key(room, 'ev')).catch(() => {})
    }
  }

  after(id: string, position: string): boolean {
    // A position that is no stream id (a client's, or another hub's) orders nothing: `since()` says `gap`.
    return !isStreamId(position) || compareIds(id, position) > 0
  }

  async since(room: string, lastId: string | undefined): Promise<RoomEvent[] | 'gap'> {
    if (lastId !== undefined && !isStreamId(lastId)) return 'gap'
    // Read once the room's subscription is on: what is published later then comes live. One that
    // failed (Redis away) is made again; failing again, it is the caller's: no replay is complete
    // without the live events after it.
    if (this.#listeners.has(room) && (await this.#subscribed.get(room)) === false) await this.#subscribeRooms([room])
    // All entries from lastId on: the stream, trimmed in whole nodes, holds about replayMessages
    // and may hold more (a COUNT would leave out the newest, and no gap would say so); its trims
    // bound it. One read, so no trim falls between a check and it.
    const entries = await this.#client.xrange(this.#key(room, 'log'), lastId ?? '-', '+')
    if (lastId === undefined) return entries.map(toEvent)
    // lastId itself must still be there, or (trimmed since) the entry that names it as the one
    // before: Redis records no trim's extent (max-deleted-entry-id counts XDEL only), and what
    // followed a trimmed position may be gone too. Neither is there for a position never handed
    // out, or one whose stream expired.
    const [first] = entries
    if (first?.[0] === lastId) return entries.slice(1).map(toEvent)
    return first?.[1][6] === 'prev' && first[1][7] === lastId ? entries.map(toEvent) : 'gap'
  }

  /** Subscribes `rooms` on Redis; rejects when that fails (Redis away), which `since()` then tries again. */
  #subscribeRooms(rooms: string[]): Promise<unknown> {
    const subscribing = this.#subscriber.subscribe(...rooms.map((room) => this.#key(room, 'ev')))
    const done = subscribing.then(
      () => true,
      () => false,
    )
    for (const room of rooms) this.#subscribed.set(room, done)
    return subscribing
  }

  async present(room: string): Promise<string[]> {
    return this.#scripts.politelyPresent(this.#key(room, 'live'))
  }

  rooms(): number {
    return new Set([...this.#local.values()].map((binding) => binding.room)).size
  }

  onEvicted(evicted: (room: string, peer: string, newest?: string) => void): void {
    this.#evicted.add(evicted)
  }

  /**
   * Whether both Redis connections are up and Redis answers a PING within `timeoutMs` (while
   * Redis is away, ioredis would queue the PING until it is back).
   */
  async ready(timeoutMs = 1000): Promise<boolean> {
    if (this.#client.status !== 'ready' || this.#subscriber.status !== 'ready') return false
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs)
    })
    const answered = this.#client.ping().then(
      (reply) => reply === 'PONG',
      () => false,
    )
    try {
      return await Promise.race([answered, late])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Disconnects from Redis; the bindings of this process's peers expire there after `releaseMs`. */
  async close(): Promise<void> {
    clearInterval(this.#refresher)
    this.#client.disconnect()
    this.#subscriber.disconnect()
  }

  #fanOut(room: string, event: RoomEvent): void {
    const last = this.#delivered.get(room)
    if (last && compareIds(event.id, last) <= 0) return
    this.#delivered.set(room, event.id)
    for (const listener of this.#listeners.get(room) ?? []) listener(event)
  }

  /**
   * After the subscriber connection came back: subscribes the rooms again, then reads what their
   * streams got meanwhile, in one round trip, and hands it over before the live events held since
   * the connection went down. A room whose read failed keeps holding them, and is read again.
   */
  async #catchUp(): Promise<void> {
    const waiting = this.#catchingUp ?? new Map<string, RoomEvent[]>()
    const rooms = [...this.#listeners.keys()].filter((room) => waiting.has(room) || !this.#delivered.has(room))
    // Subscribed first (SUBSCRIBE is idempotent), then read: every event is then either in what
    // is read or live, and #fanOut drops the overlap.
    let read: Array<[Error | null, unknown]> | undefined
    // Where each room's read starts, as it is sent (a room not held may get live events meanwhile).
    const from = rooms.map((room) => this.#delivered.get(room))
    if (
      rooms.length &&
      (await this.#subscribeRooms(rooms).then(
        () => true,
        () => false,
      ))
    ) {
      const pipeline = this.#client.pipeline()
      // From the newest delivered on, which tells (as in since()) whether what followed it is all there.
      rooms.forEach((room, i) => {
        pipeline.xrange(this.#key(room, 'log'), from[i] ?? '-', '+')
      })
      read = (await pipeline.exec().catch(() => undefined)) ?? undefined
    }
    rooms.forEach((room, i) => {
      const [error, result] = read?.[i] ?? [new Error('not read')]
      if (error) return
      let entries = result as Array<[string, string[]]>
      const last = from[i]
      const [first] = entries
      if (last !== undefined && first) {
        if (first[0] === last) entries = entries.slice(1)
        else if (first[1][6] !== 'prev' || first[1][7] !== last) {
          // Trimmed away during the outage: the room's listeners start again from what is there.
          for (const listener of this.#listeners.get(room) ?? []) this.#lost.get(listener)?.()
        }
      }
      for (const entry of entries) this.#fanOut(room, toEvent(entry))
      for (const event of waiting.get(room) ?? []) this.#fanOut(room, event)
      waiting.delete(room)
    })
    if (this.#catchingUp !== waiting) return // a newer drop: its own catch-up follows
    if (![...waiting.keys()].some((room) => this.#listeners.has(room))) this.#catchingUp = undefined
    else
      setTimeout(
        () => this.#catchingUp === waiting && this.#subscriber.status === 'ready' && void this.#catchUp(),
        1000,
      ).unref?.()
  }

  async #refresh(): Promise<void> {
    if (!this.#local.size) return
    const { releaseMs } = this.#options
    const pipeline = this.#client.pipeline() as unknown as Scripts & { exec(): Promise<Array<[unknown, unknown]>> }
    const bindings = [...this.#local]
    for (const [, { room, peer, tokenHash, connection }] of bindings) {
      const keys = [this.#key(room, 'peer', peer), this.#key(room, 'live'), this.#key(room, 'newest', peer)]
      pipeline.politelyKeep(...keys, tokenHash, releaseMs, peer, connection)
    }
    const kept = await pipeline.exec().catch(() => [])
    for (const [i, [key, binding]] of bindings.entries()) {
      if (this.#local.get(key) !== binding) continue
      // A newer connection of the peer (the message that said so was lost): ours ends, not that one.
      const answer = kept[i]?.[1]
      if (typeof answer === 'string') this.#evict(binding.room, binding.peer, answer)
      // Another token holds the id now: no longer ours to vouch for, and our connections of it end.
      else if (answer === 0) {
        this.#local.delete(key)
        this.#evict(binding.room, binding.peer)
      }
    }
  }

  async #refreshHolds(): Promise<void> {
    if (!this.#holds.size) return
    // Read and sent in one turn, after every hold and count-out sent before it: Redis applies them
    // first, so `held` is exact for a key with nothing pending (and bounds it otherwise).
    const batches: Array<{ keys: string[]; bounds: number[] }> = []
    for (const [key, { held, pending }] of this.#holds) {
      let batch = batches.at(-1)
      if (!batch || batch.keys.length === REFRESH_BATCH) batches.push((batch = { keys: [], bounds: [] }))
      batch.keys.push(this.#holdKey(key))
      batch.bounds.push(held, held + pending)
      if (!held && !pending) this.#holds.delete(key)
    }
    await Promise.all(
      batches.map(({ keys, bounds }) =>
        this.#scripts
          .politelyRefreshHolds(keys.length + 1, this.#processesKey(), ...keys, this.#process, this.#options.releaseMs, ...bounds)
          .catch(() => {}),
      ),
    )
  }
}
