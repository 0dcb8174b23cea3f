import mitt from 'mitt'
import type { Payload } from '../channels.js'
import { closedError } from '../channels.js'
import { PolitelyError } from '../errors.js'
import { type FromMember, Room, type RoomEvents, type RoomOptions } from '../room.js'
import { setup, subscribeBoth } from './setup.js'
import { createStream, type Stream } from './stream.js'
import type { ReliablePeerOptions, SendOptions, StreamEmit, StreamEvents, TransferProgress } from './types.js'

/**
 * Options of a {@link ReliableRoom}: a room's, and the sizes of `ReliablePeerOptions`.
 *
 * @example
 * const options: ReliableRoomOptions = { signaler: new BroadcastChannelSignaler({ room: 'files' }), windowSize: 1 << 20 }
 */
export type ReliableRoomOptions = RoomOptions & Pick<ReliablePeerOptions, 'chunkSize' | 'windowSize' | 'maxTransferSize'>

/**
 * Every event a {@link ReliableRoom} emits: a room's, `message` whole, and `progress` per member.
 *
 * @example
 * room.on('progress', ({ from, sent, total }: ReliableRoomEvents['progress']) => console.log(from, sent / total))
 */
export type ReliableRoomEvents = RoomEvents & {
  /** A chunk of a message bigger than one chunk went to member `from`'s transport. */
  progress: TransferProgress & FromMember
}

type MemberStreamEvents = {
  [K in keyof StreamEvents]: K extends 'error' ? StreamEvents[K] : StreamEvents[K] & FromMember
}

/**
 * A {@link Room} whose managed channels (`'default'`, and every ordered channel without
 * `maxRetransmits` or `maxPacketLifeTime`) carry, per member, what a `ReliablePeer` carries for
 * its remote: every message exactly once and in order across that link's ICE restarts and
 * rebuilds, messages of any size (chunked, with `progress`). Every member must use it. What was
 * not acknowledged by a member that leaves is dropped with it.
 *
 * @example
 * const room = new ReliableRoom({ signaler: new BroadcastChannelSignaler({ room: 'files' }) })
 * room.on('message', ({ from, data }) => console.log(from, data.byteLength))
 * await room.start()
 * await room.send(new ArrayBuffer(1 << 22)) // to every member linked now
 */
export class ReliableRoom extends Room {
  /** Member → channel → stream; made on the first send to a member or its link's first opening. */
  readonly #streams = new Map<string, Map<string, Stream>>()
  readonly #emitter = mitt<MemberStreamEvents>()
  readonly #make: (member: string) => Map<string, Stream>
  readonly #managed: string[]
  #closed = false

  constructor(options: ReliableRoomOptions) {
    super(options)
    const { nonce, limits, managed } = setup(options, (member) => this.connection(member))
    this.#managed = managed
    this.#make = (member) => {
      const streams = new Map<string, Stream>()
      // The streams' events name the member; their errors are the room's.
      const forward = this.#emitter.emit as (type: string, event: unknown) => void
      const emit: StreamEmit = (type, event) => forward(type, type === 'error' ? event : { ...event, from: member })
      for (const name of managed) {
        const write = (frame: ArrayBuffer) => super.send(frame, { to: member, channel: name })
        streams.set(name, createStream(name, nonce, limits(member), write, emit))
      }
      return streams
    }
    // Registered before any handler of the app, so the streams see every event first.
    super.on('message', (event) => {
      const stream = this.#streams.get(event.from)?.get(event.channel)
      if (stream) stream.receive(event.data, this.connection(event.from))
      else this.#emitter.emit('message', event)
    })
    super.on('state', ({ id, state, previous }) => {
      if (state === 'connected') for (const stream of this.#of(id).values()) stream.open(this.connection(id))
      else if (previous === 'connected') for (const stream of this.#of(id).values()) stream.close()
    })
  }

  /**
   * Subscribes to an event; returns the unsubscribe function. On managed channels `message`
   * carries whole messages (never frames).
   *
   * @example
   * room.on('progress', ({ from, sent, total }) => bars.get(from)?.update(sent / total))
   */
  override on<K extends keyof ReliableRoomEvents>(type: K, handler: (event: ReliableRoomEvents[K]) => void): () => void {
    return subscribeBoth(
      (name, listener) => super.on(name as keyof RoomEvents, listener),
      this.#emitter,
      type,
      handler as (event: unknown) => void,
    )
  }

  /**
   * Sends a message of any size to every member linked now, or to one (`to`), on a channel
   * (`'default'` unless named): on a managed channel, exactly once and in order to each, waiting
   * (unbounded, in order) while its link is down. Resolves when every member's copy went to the
   * transport; rejects with `aborted` (`signal`) or `closed`. Throws what `Room.send` throws.
   *
   * @example
   * await room.send(file, { to: 'bob', channel: 'files', signal: controller.signal })
   */
  override send(data: Payload, options: SendOptions & { to?: string } = {}): Promise<void> {
    const { to, channel = 'default', signal } = options
    if (!this.#managed.includes(channel)) return super.send(data, { to, channel })
    if (this.#closed) throw closedError()
    const linked = this.peers.map((peer) => peer.id)
    if (to !== undefined && !linked.includes(to)) throw new PolitelyError('unknown-peer', `No member "${to}"`)
    const members = to === undefined ? linked : [to]
    const sends = members.map((member) =>
      this.#of(member)
        .get(channel)
        ?.send(data, signal)
        // A member that leaves meanwhile does not fail the others' delivery.
        .catch((error: PolitelyError) => {
          if (this.#closed || error.code !== 'closed') throw error
        }),
    )
    return Promise.all(sends).then(() => {})
  }

  /** Closes the room; every message not handed over fails with `closed`. */
  override close(): void {
    super.close()
    this.#closed = true
    for (const id of [...this.#streams.keys()]) this.#drop(id)
  }

  /** A member's link ended (with or without `peer-leave`): what it had not acknowledged is dropped with it. */
  protected override ended(member: string): void {
    this.#drop(member)
  }

  #of(member: string): Map<string, Stream> {
    let streams = this.#streams.get(member)
    if (!streams) this.#streams.set(member, (streams = this.#make(member)))
    return streams
  }

  #drop(member: string): void {
    for (const stream of this.#streams.get(member)?.values() ?? []) stream.dispose()
    this.#streams.delete(member)
  }
}
