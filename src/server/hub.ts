/**
 * One relayed signaling message, as stored for fan-out and replay.
 *
 * @example
 * // Watch what a room relays (an admin view, say); returns the unsubscribe function.
 * const off = hub.subscribe('demo', (event: RoomEvent) => console.log(event.id, event.from, event.to ?? 'all', event.data))
 */
export interface RoomEvent {
  /**
   * Opaque, ordered within a room: 1-64 of `A-Z a-z 0-9 _ -`, what a resume position may be
   * (`Last-Event-ID`, `lastEventId`); the server refuses to resume from anything else.
   */
  id: string
  /** Sender's peer id (authenticated by its token). */
  from: string
  /** Recipient peer id; absent for broadcasts. */
  to?: string
  /**
   * The validated message as JSON: the client's own text when it says exactly what validation kept
   * (no unknown key, no key twice, no line break), else the validated copy serialized by the server.
   */
  data: string
}

/**
 * An event whose data the hub was given as UTF-8 bytes ({@link Hub.publishBytes}): `bytes` is
 * what a sink writes, and `data` is decoded from them only if something reads it. Handed only to
 * listeners that subscribed with `bytes` (they read fields; a spread or `JSON.stringify` would
 * not see `data`, a getter); every other listener gets a plain {@link RoomEvent}.
 *
 * @example
 * hub.subscribe('demo', (event) => socket.write(event instanceof ByteEvent ? event.bytes : event.data), undefined, true)
 */
export class ByteEvent implements RoomEvent {
  #data?: string
  constructor(
    readonly id: string,
    readonly from: string,
    readonly to: string | undefined,
    /** The message's JSON, as UTF-8. */
    readonly bytes: Uint8Array,
  ) {}

  get data(): string {
    this.#data ??= Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength).toString()
    return this.#data
  }
}

/**
 * Why a claim of a peer id was refused.
 *
 * @example
 * const refused = (result: ClaimResult): result is ClaimRefusal =>
 *   result === 'id-taken' || result === 'room-full' || result === 'too-many-rooms'
 * if (refused(await hub.claim('demo', 'alice', token, 2))) console.log('alice may not join demo')
 */
export type ClaimRefusal = 'id-taken' | 'room-full' | 'too-many-rooms'

/**
 * What a claim did: `resumed` an existing binding of the same token, bound a
 * fresh id (`claimed`), or bound one in a room nobody was connected to
 * (`created`) — or why it was refused.
 *
 * @example
 * const result: ClaimResult = await hub.claim('demo', 'alice', token, 2)
 * if (result === 'resumed') console.log('alice is back (same token)')
 */
export type ClaimResult = 'created' | 'claimed' | 'resumed' | ClaimRefusal

/**
 * The room model behind every route, as an interface so the state can live
 * in this process ({@link MemoryHub}, the default) or be shared by many
 * processes (`RedisHub` of `politely/redis`). Everything is per room; a room
 * exists while it has peers or buffered events.
 *
 * @example
 * const hub: Hub = new MemoryHub(SERVER_DEFAULTS) // or a RedisHub, shared by several processes
 * createSignalingServer({ hub }).attach(server)
 * // Later, e.g. in an admin route: who is in room "demo" now, and how many rooms are there?
 * console.log(await hub.present('demo'), hub.rooms())
 */
export interface Hub {
  /**
   * Binds `peer` in `room` to whoever holds `token`. The same token may claim
   * again (a reconnect, which replaces the older connection); another token
   * is refused while the binding lives (connected, or within the release grace).
   * A fresh binding needs a seat: fewer than `maxPeers` peers connected (peers
   * in their release grace hold none, so a reloaded page gets its seat back).
   * `connection` names the connection claiming, for {@link onEvicted}: the server names
   * connections only for a hub that has `onEvicted`.
   */
  claim(room: string, peer: string, token: string, maxPeers: number, connection?: string): Promise<ClaimResult>
  /**
   * Whether `token` holds `peer` in `room`. A hub in memory answers at once (no promise per POST);
   * one that answers later may return any promise-like.
   */
  verify(room: string, peer: string, token: string): boolean | Promise<boolean>
  /** A connection of `peer` ended; after the release grace with no new one, the id is free. */
  release(room: string, peer: string, token: string): void
  /**
   * Appends to the room's replay buffer and fans out to every subscriber. A hub in memory
   * answers at once (no promise per message); one that waits on a store returns a promise.
   */
  publish(room: string, event: Omit<RoomEvent, 'id'>): RoomEvent | Promise<RoomEvent>
  /**
   * {@link publish}, for data given as its UTF-8 bytes (valid JSON, which stay as they are): a hub
   * that keeps bytes (the in-memory one) is spared a decode and an encode per message, and hands
   * listeners that subscribed with `bytes` a {@link ByteEvent}. The bytes are a view of the frame
   * or body they came in, which may be far larger: a hub that keeps them copies them (the
   * in-memory hub's journal does). Optional: without it, the server decodes the bytes and calls
   * `publish`.
   */
  publishBytes?(room: string, from: string, to: string | undefined, bytes: Uint8Array): RoomEvent | Promise<RoomEvent>
  /**
   * Live events of a room; returns the unsubscribe function. `lost`, when given, is told that
   * events of the room could not be handed to `listener` (a hub that catches up after an outage
   * found some gone from its buffer): the server then resets that peer, which announces itself again.
   * `bytes`: `listener` may be handed a {@link ByteEvent} for what was published as bytes (a hub
   * without {@link publishBytes} never has one).
   */
  subscribe(room: string, listener: (event: RoomEvent) => void, lost?: () => void, bytes?: boolean): () => void
  /**
   * Whether event `id` comes after `position` in its room. A hub whose listeners may get an event
   * late (Redis: one still on its way to this process when a peer resumed past it elsewhere) must
   * have it, or that peer gets the event twice; one that fans out within `publish()` needs none.
   * With it, the server relies on three things: each listener gets a room's events in increasing
   * order; `since()` says `'gap'` for a position that is not one of its ids or is past its newest;
   * and `after()` is true for a position that is not one of its ids.
   */
  after?(id: string, position: string): boolean
  /**
   * Buffered events after `lastId`, oldest first; all buffered events when
   * `lastId` is undefined; `'gap'` when `lastId` is not a position this room
   * can resume from (expired from the buffer, issued before a restart, or past the newest event).
   */
  since(room: string, lastId: string | undefined): Promise<RoomEvent[] | 'gap'>
  /** Peer ids connected to the room now (not those in their release grace). */
  present(room: string): Promise<string[]>
  /** Number of rooms (for limits and stats). */
  rooms(): number
  /** Whether the hub can serve now (Redis reachable); a hub without it always can. */
  ready?(): Promise<boolean>
  /**
   * Gives the hub what to call when a peer connected through this server was taken over
   * elsewhere: by a newer connection with its token on another process (`newest` names it, as
   * `claim()` was told), or by another token after a store shared by processes lost the binding
   * (Redis restarted empty, or this process stalled past `releaseMs`). The server then ends that
   * peer's connection here, unless it is `newest`.
   */
  onEvicted?(evicted: (room: string, peer: string, newest?: string) => void): void
  /**
   * Takes `count` tokens from the bucket named `key` (`ratePerSecond`, at most `burst` held);
   * whether it could. A hub shared by several processes (Redis) keeps the bucket there, so a
   * peer's rate limit holds across the processes its requests reach; without it, each server
   * process keeps its own.
   */
  take?(key: string, count: number, ratePerSecond: number, burst: number): Promise<boolean>
  /**
   * Counts one more connection of `key` (a client address) if fewer than `limit` are counted
   * now; resolves with the function that counts it out again (once, however often it is
   * called), or `undefined` when `limit` are counted. A hub shared by several processes
   * (Redis) counts there, so a client address's cap holds across the processes its
   * connections reach, and the counts of a process that died without counting out lapse
   * within its release grace. Without it, each server process counts only its own (as it
   * does anyway, first, with or without this).
   */
  hold?(key: string, limit: number): Promise<(() => void) | undefined>
  /** Stops its timers and connections; the server calls it from its own `close()`. */
  close(): Promise<void>
}
