import { ByteEvent, type ClaimResult, type Hub, type RoomEvent } from './hub.js'
import { Journal } from './journal.js'
import { Digests, sameDigest } from './secret.js'

/**
 * Limits of the in-memory hub; {@link SERVER_DEFAULTS} has a value for each.
 *
 * @example
 * const options: MemoryHubOptions = { ...SERVER_DEFAULTS, maxRooms: 1000, replayAgeMs: 10_000 }
 * createSignalingServer({ hub: new MemoryHub(options) })
 */
export interface MemoryHubOptions {
  /** Most rooms at once; a claim that would create another is refused (`too-many-rooms`). */
  maxRooms: number
  /** Replay buffer per room: most events kept. */
  replayMessages: number
  /** Replay buffer per room: most bytes of JSON (UTF-8) kept. */
  replayBytes: number
  /** Replay buffer per room: how long an event is kept (ms). */
  replayAgeMs: number
  /** Bytes of memory all replay buffers together may take; past it, the largest buffers are cut down first. */
  replayBytesTotal: number
  /** How long a peer id stays bound after its last connection ended (ms), so it can resume. */
  releaseMs: number
}

interface Binding {
  peer: string
  tokenHash: string
  connections: number
  releaseTimer?: ReturnType<typeof setTimeout>
}

interface Room {
  /**
   * The peer ids bound in the room. Replaced, never changed in place, like `listeners`: an array the
   * size of the room (a few peers; `maxPeersPerRoom` bounds it), where a Map kept a hash table of ~150 bytes.
   */
  bindings: readonly Binding[]
  /** The replay buffer (outside the JavaScript heap). */
  events: Journal
  seq: number
  /**
   * Replaced, never changed in place: a publish goes on over the list it began with. An array the
   * size of its members (two in a 1:1 room), where a Set kept a hash table of its own.
   */
  listeners: ReadonlyArray<Listener>
  /** Listeners that take a {@link ByteEvent} (subscribed with `bytes`), kept apart the same way. */
  byteListeners: ReadonlyArray<Listener>
}

type Listener = (event: RoomEvent) => void
/** Shared by every room with no listener of a kind. */
const NONE: readonly Listener[] = []

/** The binding of `peer` in `room`, if any: a look through a few peers. */
const bindingOf = (room: Room, peer: string) => room.bindings.find((binding) => binding.peer === peer)

/** `list` without `item`, as a new array of the exact size (concat and slice make those; a spread or filter leaves room for 17). */
function without<T>(list: readonly T[], item: T): readonly T[] {
  const at = list.indexOf(item)
  return at < 0 ? list : list.slice(0, at).concat(list.slice(at + 1))
}

/**
 * The default hub: rooms in this process's memory, zero set-up. Event ids are
 * `<epoch>-<seq>`: the epoch changes with every process start, so a resume
 * position issued by a previous process is recognised as a gap, not
 * misread as a position in the new sequence.
 *
 * @example
 * const hub = new MemoryHub({ ...SERVER_DEFAULTS, maxRooms: 1000 })
 * const signaling = createSignalingServer({ hub })
 */
export class MemoryHub implements Hub {
  readonly #rooms = new Map<string, Room>()
  readonly #epoch = Date.now().toString(36)
  readonly #options: MemoryHubOptions
  readonly #sweeper: ReturnType<typeof setInterval>
  readonly #digests = new Digests()
  /** Bytes of data in every room's buffer. */
  #bytes = 0
  /** Bytes of memory every room's buffer takes (what `replayBytesTotal` bounds). */
  #held = 0

  constructor(options: MemoryHubOptions) {
    this.#options = options
    // Expired events and empty rooms go away even in rooms nobody writes to any more.
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(options.replayAgeMs, 30_000))
    this.#sweeper.unref?.()
  }

  async claim(roomId: string, peer: string, token: string, maxPeers: number): Promise<ClaimResult> {
    let room = this.#rooms.get(roomId)
    if (!room) {
      if (this.#rooms.size >= this.#options.maxRooms) return 'too-many-rooms'
      room = { bindings: [], events: new Journal(), seq: 0, listeners: NONE, byteListeners: NONE }
      this.#rooms.set(roomId, room)
    }
    const tokenHash = this.#digests.of(token)
    const binding = bindingOf(room, peer)
    if (binding) {
      if (!sameDigest(binding.tokenHash, tokenHash)) return 'id-taken'
      clearTimeout(binding.releaseTimer)
      binding.connections++
      return 'resumed'
    }
    let connected = 0
    for (const other of room.bindings) if (other.connections > 0) connected++
    if (connected >= maxPeers) return 'room-full'
    room.bindings = room.bindings.concat([{ peer, tokenHash, connections: 1, releaseTimer: undefined }])
    return connected ? 'claimed' : 'created'
  }

  verify(roomId: string, peer: string, token: string): boolean {
    const room = this.#rooms.get(roomId)
    const binding = room && bindingOf(room, peer)
    return !!binding && sameDigest(binding.tokenHash, this.#digests.of(token))
  }

  release(roomId: string, peer: string, token: string): void {
    const room = this.#rooms.get(roomId)
    const binding = room && bindingOf(room, peer)
    if (!room || !binding || !sameDigest(binding.tokenHash, this.#digests.of(token))) return
    binding.connections--
    if (binding.connections > 0) return
    clearTimeout(binding.releaseTimer)
    binding.releaseTimer = setTimeout(() => {
      if (binding.connections > 0 || !room.bindings.includes(binding)) return
      room.bindings = without(room.bindings, binding)
      // Nobody left to resume from it: the replay buffer goes now, not when its events expire.
      if (!room.bindings.length) this.#forget(roomId, room)
    }, this.#options.releaseMs)
    binding.releaseTimer.unref?.()
  }

  publish(roomId: string, { from, to, data }: Omit<RoomEvent, 'id'>): RoomEvent | Promise<RoomEvent> {
    const room = this.#append(roomId, from, to, data)
    // One object per message, handed to every subscriber (and dead once they wrote it out).
    const relayed = { id: `${this.#epoch}-${room.seq}`, from, to, data }
    for (const listener of room.listeners) listener(relayed)
    for (const listener of room.byteListeners) listener(relayed)
    return relayed
  }

  /** Keeps the bytes as they are (the journal holds bytes) and hands them on: no decode, no encode. */
  publishBytes(roomId: string, from: string, to: string | undefined, bytes: Uint8Array): RoomEvent | Promise<RoomEvent> {
    // A subclass that overrides `publish` (to log, count or fail) still sees every message there.
    if (this.publish !== MemoryHub.prototype.publish) {
      return this.publish(roomId, { from, to, data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString() })
    }
    const room = this.#append(roomId, from, to, bytes)
    const relayed = new ByteEvent(`${this.#epoch}-${room.seq}`, from, to, bytes)
    for (const listener of room.byteListeners) listener(relayed)
    if (room.listeners.length) {
      const plain = { id: relayed.id, from, to, data: relayed.data }
      for (const listener of room.listeners) listener(plain)
    }
    return relayed
  }

  /** Appends to a room's replay buffer, within its limits and the total's; returns the room (its `seq`, the event's). */
  #append(roomId: string, from: string, to: string | undefined, data: string | Uint8Array): Room {
    const room = this.#rooms.get(roomId)
    if (!room) throw new Error(`No room ${roomId}`)
    const seq = ++room.seq
    const { events } = room
    const before = events.footprint
    this.#bytes += events.append(seq, Date.now(), from, to, data)
    this.#held += events.footprint - before
    const { replayMessages, replayBytes, replayBytesTotal } = this.#options
    if (events.count > replayMessages || events.bytes > replayBytes) this.#trim(room)
    if (this.#held > replayBytesTotal) this.#shed()
    return room
  }

  subscribe(roomId: string, listener: (event: RoomEvent) => void, _lost?: () => void, bytes = false): () => void {
    const room = this.#rooms.get(roomId)
    if (!room) return () => {}
    if (bytes) room.byteListeners = room.byteListeners.concat([listener])
    else room.listeners = room.listeners.concat([listener])
    return () => {
      if (bytes) room.byteListeners = without(room.byteListeners, listener)
      else room.listeners = without(room.listeners, listener)
    }
  }

  async since(roomId: string, lastId: string | undefined): Promise<RoomEvent[] | 'gap'> {
    const room = this.#rooms.get(roomId)
    if (!room) return lastId === undefined ? [] : 'gap'
    this.#trim(room)
    let after = 0
    if (lastId !== undefined) {
      const [epoch, seqText] = lastId.split('-')
      const seq = Number(seqText)
      if (epoch !== this.#epoch || !Number.isSafeInteger(seq) || seq > room.seq) return 'gap'
      // The event right after the resume position must still be buffered, or something was lost.
      const first = room.events.firstSeq
      if (seq < room.seq && (first === undefined || first > seq + 1)) return 'gap'
      after = seq
    }
    return room.events.after(after).map(({ seq, from, to, data }) => {
      const id = `${this.#epoch}-${seq}`
      return to === undefined ? { id, from, data } : { id, from, to, data }
    })
  }

  async present(roomId: string): Promise<string[]> {
    // Connected now: a peer in its release grace has left (or is reconnecting and will announce itself).
    const bindings = this.#rooms.get(roomId)?.bindings ?? []
    return bindings.filter((binding) => binding.connections > 0).map(({ peer }) => peer)
  }

  rooms(): number {
    return this.#rooms.size
  }

  /** Bytes of JSON (UTF-8) held in replay buffers, all rooms together. */
  replayBytes(): number {
    return this.#bytes
  }

  /** Stops its timers and forgets every room. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper)
    for (const room of this.#rooms.values()) for (const binding of room.bindings) clearTimeout(binding.releaseTimer)
    this.#rooms.clear()
  }

  /** Drops `room`'s oldest events past its limits: count, size and age. */
  #trim(room: Room): void {
    const { replayMessages, replayAgeMs, replayBytes } = this.#options
    const { events } = room
    const oldest = Date.now() - replayAgeMs
    const before = events.footprint
    while (events.count > replayMessages || events.bytes > replayBytes || (events.firstAt ?? oldest) < oldest) {
      this.#bytes -= events.dropFirst()
    }
    this.#held += events.footprint - before
  }

  /**
   * Over the total budget: the largest buffers are cut down to one size, the
   * largest that brings the total to 90 % of the budget; the others stay whole.
   * Whoever fills buffers fastest (one client creating rooms) pays first; a
   * quiet room's few events stay. Sizes are the memory each buffer takes.
   */
  #shed(): void {
    const goal = this.#options.replayBytesTotal * 0.9
    const rooms = [...this.#rooms.values()].sort((a, b) => b.events.footprint - a.events.footprint)
    let rest = this.#held
    let cap = 0
    for (let i = 0; i < rooms.length; i++) {
      // Rooms 0…i cut to `cap`, the smaller ones after them whole: together, the goal.
      rest -= (rooms[i] as Room).events.footprint
      cap = Math.max(0, (goal - rest) / (i + 1))
      if (cap >= (rooms[i + 1]?.events.footprint ?? 0)) break
    }
    for (const { events } of rooms) {
      if (events.footprint <= cap) break
      const before = events.footprint
      // Down to records in half of `cap`, then a buffer they fit in: at most twice their size (the smallest is 2 KiB).
      while (events.count && Math.max(1024, events.size) > cap / 2) this.#bytes -= events.dropFirst()
      events.fit()
      this.#held += events.footprint - before
    }
  }

  #forget(id: string, room: Room): void {
    this.#bytes -= room.events.bytes
    this.#held -= room.events.footprint
    room.events.clear()
    if (!room.listeners.length && !room.byteListeners.length && this.#rooms.get(id) === room) this.#rooms.delete(id)
  }

  #sweep(): void {
    for (const [id, room] of this.#rooms) {
      this.#trim(room)
      if (!room.bindings.length) this.#forget(id, room)
    }
  }
}
