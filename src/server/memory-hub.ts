import { createHash } from 'node:crypto'
import type { ClaimRefusal, Hub, RoomEvent } from './hub'

/** Limits of the in-memory hub. */
export interface MemoryHubOptions {
  maxPeersPerRoom: number
  maxRooms: number
  /** Replay buffer per room: most events kept, most characters of them, and for how long (ms). */
  replayMessages: number
  replayBytes: number
  replayAgeMs: number
  /** How long a peer id stays bound after its last connection ended (ms), so it can resume. */
  releaseMs: number
}

interface Binding {
  tokenHash: string
  connections: number
  releaseTimer?: ReturnType<typeof setTimeout>
}

interface Room {
  bindings: Map<string, Binding>
  events: Array<RoomEvent & { seq: number; at: number }>
  /** Characters of `data` in `events`. */
  bytes: number
  seq: number
  listeners: Set<(event: RoomEvent) => void>
}

/** Events a room may hold past `replayMessages` before a trim: trims come in batches. */
const TRIM_SLACK = 32

const hash = (token: string) => createHash('sha256').update(token).digest('base64url')

/**
 * The default hub: rooms in this process's memory, zero set-up. Event ids are
 * `<epoch>-<seq>`: the epoch changes with every process start, so a resume
 * position issued by a previous process is recognised as a gap, not
 * misread as a position in the new sequence.
 */
export class MemoryHub implements Hub {
  readonly #rooms = new Map<string, Room>()
  readonly #epoch = Date.now().toString(36)
  readonly #options: MemoryHubOptions
  readonly #sweeper: ReturnType<typeof setInterval>

  constructor(options: MemoryHubOptions) {
    this.#options = options
    // Expired events and empty rooms go away even in rooms nobody writes to any more.
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(options.replayAgeMs, 30_000))
    this.#sweeper.unref?.()
  }

  async claim(roomId: string, peer: string, token: string): Promise<ClaimRefusal | undefined> {
    let room = this.#rooms.get(roomId)
    if (!room) {
      if (this.#rooms.size >= this.#options.maxRooms) return 'too-many-rooms'
      room = { bindings: new Map(), events: [], bytes: 0, seq: 0, listeners: new Set() }
      this.#rooms.set(roomId, room)
    }
    const tokenHash = hash(token)
    const binding = room.bindings.get(peer)
    if (binding) {
      if (binding.tokenHash !== tokenHash) return 'id-taken'
      clearTimeout(binding.releaseTimer)
      binding.connections++
      return undefined
    }
    if (room.bindings.size >= this.#options.maxPeersPerRoom) return 'room-full'
    room.bindings.set(peer, { tokenHash, connections: 1 })
    return undefined
  }

  async verify(roomId: string, peer: string, token: string): Promise<boolean> {
    return this.#rooms.get(roomId)?.bindings.get(peer)?.tokenHash === hash(token)
  }

  release(roomId: string, peer: string, token: string): void {
    const room = this.#rooms.get(roomId)
    const binding = room?.bindings.get(peer)
    if (!room || !binding || binding.tokenHash !== hash(token)) return
    binding.connections--
    if (binding.connections > 0) return
    clearTimeout(binding.releaseTimer)
    binding.releaseTimer = setTimeout(() => {
      if (binding.connections === 0 && room.bindings.get(peer) === binding) room.bindings.delete(peer)
    }, this.#options.releaseMs)
    binding.releaseTimer.unref?.()
  }

  async publish(roomId: string, { from, to, data }: Omit<RoomEvent, 'id'>): Promise<RoomEvent> {
    const room = this.#rooms.get(roomId)
    if (!room) throw new Error(`No room ${roomId}`)
    const seq = ++room.seq
    const id = `${this.#epoch}-${seq}`
    // Plain literals, no spreads: this runs once per relayed message.
    const relayed: RoomEvent = to === undefined ? { id, from, data } : { id, from, to, data }
    room.events.push({ id, from, to, data, seq, at: Date.now() })
    room.bytes += data.length
    // Trimmed in batches, not on every message: a splice moves the whole buffer.
    const { replayMessages, replayBytes } = this.#options
    if (room.events.length > replayMessages + TRIM_SLACK || room.bytes > replayBytes) this.#trim(room)
    for (const listener of room.listeners) listener(relayed)
    return relayed
  }

  subscribe(roomId: string, listener: (event: RoomEvent) => void): () => void {
    const listeners = this.#rooms.get(roomId)?.listeners
    listeners?.add(listener)
    return () => listeners?.delete(listener)
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
      const first = room.events[0]
      if (seq < room.seq && (!first || first.seq > seq + 1)) return 'gap'
      after = seq
    }
    return room.events
      .filter((event) => event.seq > after)
      .map(({ id, from, to, data }) => (to === undefined ? { id, from, data } : { id, from, to, data }))
  }

  async present(roomId: string): Promise<string[]> {
    // Connected now: a peer in its release grace has left (or is reconnecting and will announce itself).
    const bindings = this.#rooms.get(roomId)?.bindings ?? new Map<string, Binding>()
    return [...bindings].filter(([, binding]) => binding.connections > 0).map(([peer]) => peer)
  }

  rooms(): number {
    return this.#rooms.size
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper)
    for (const room of this.#rooms.values()) for (const binding of room.bindings.values()) clearTimeout(binding.releaseTimer)
    this.#rooms.clear()
  }

  #trim(room: Room): void {
    const { replayMessages, replayAgeMs, replayBytes } = this.#options
    const { events } = room
    const oldest = Date.now() - replayAgeMs
    let drop = Math.max(0, events.length - replayMessages)
    for (let i = 0; i < drop; i++) room.bytes -= (events[i] as RoomEvent).data.length
    for (let head = events[drop]; head && (head.at < oldest || room.bytes > replayBytes); head = events[++drop]) {
      room.bytes -= head.data.length
    }
    if (drop) events.splice(0, drop)
  }

  #sweep(): void {
    for (const [id, room] of this.#rooms) {
      this.#trim(room)
      if (!room.bindings.size && !room.events.length && !room.listeners.size) this.#rooms.delete(id)
    }
  }
}
