import { randomUUID } from 'node:crypto'
import type { Admission } from './admission.js'
import type { Batch } from './body.js'
import { Refusal } from './http-errors.js'
import { ByteEvent, type Hub, type RoomEvent } from './hub.js'
import { Observers } from './observer.js'
import type { ResolvedServerOptions } from './options.js'
import type { RateLimiter } from './rate-limit.js'
import { peerKey, type Target } from './target.js'
import { validateBatch } from './validate.js'

/** Where a subscription writes: an SSE stream or a WebSocket. */
export interface Sink {
  send(event: RoomEvent): void
  /** The resume position could not be honoured: the client may have missed messages. */
  reset(): void
  /**
   * Closes the connection: another connection of the same peer took over (here; or elsewhere with
   * another token, after the hub lost the binding — see `Hub.onEvicted`).
   */
  close(): void
}

/**
 * Whether a hub answered with a promise-like: of any kind, not only this realm's Promise (a
 * hub's own, a library's), as `await` would take it. An event has no `then`.
 */
const answersLater = <T>(answer: T | PromiseLike<T>): answer is PromiseLike<T> =>
  typeof (answer as Partial<PromiseLike<T>>).then === 'function'

/** Bytes of an event's data, without decoding a {@link ByteEvent}'s. */
const dataBytes = (event: RoomEvent) => (event instanceof ByteEvent ? event.bytes.length : Buffer.byteLength(event.data))

const isFor = (event: RoomEvent, peer: string) => event.from !== peer && (event.to === undefined || event.to === peer)

/**
 * One peer's subscription to its room: it hands the peer's events to its sink. An object with
 * methods, not closures: every held connection keeps one for its whole life.
 */
export class Subscription {
  /** Live events that came while the replay was being sent; undefined once it was sent. */
  pending?: RoomEvent[] = []
  /**
   * What the peer has up to once the replay was sent (the replay's newest, else its resume
   * position), until a newer live event came: a live event there or before is dropped.
   */
  position?: string
  /** Ends the hub's subscription. */
  unsubscribe?: () => void
  #stopped = false

  constructor(
    readonly target: Target,
    readonly sink: Sink,
    readonly relay: Relay,
  ) {}

  /** The hub's listener (bound). */
  deliver(event: RoomEvent): void {
    // A publish under way hands its event to the listeners it began with, this one maybe just stopped.
    if (this.#stopped || !isFor(event, this.target.peer)) return
    // Sorted out when the replay is sent: its position is known (and checked) only then.
    if (this.pending) {
      this.pending.push(event)
      return
    }
    if (this.position !== undefined) {
      if (this.relay.had(event.id, this.position)) return
      // A hub hands a room's events over in order: after a newer one, none can be late.
      this.position = undefined
    }
    this.sink.send(event)
  }

  /** The hub lost events it owed this peer: it is told to announce itself again, as after a gap on resume. */
  lost(): void {
    if (!this.#stopped) this.sink.reset()
  }

  /** Ends it (once). */
  stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    this.unsubscribe?.()
    this.relay.ended(this)
  }
}

/**
 * The relay shared by every transport: subscriptions with replay, and
 * authenticated publishing. One instance per server.
 */
export class Relay {
  readonly #hub: Hub
  readonly #options: ResolvedServerOptions
  readonly #limiter: RateLimiter
  /**
   * The live subscription of each peer, so a reconnect of the same peer replaces it; its target
   * names its connection (`Target.connection`), so a takeover elsewhere spares the newest.
   */
  readonly #live = new Map<string, Subscription>()

  readonly #admission: Admission
  /** Who watches this server (metrics, logs). */
  readonly observers = new Observers()

  constructor(options: ResolvedServerOptions, limiter: RateLimiter, admission: Admission) {
    this.#hub = options.hub
    this.#options = options
    this.#limiter = limiter
    this.#admission = admission
    this.#hub.onEvicted?.((room, peer, newest) => {
      const key = peerKey(room, peer)
      const live = this.#live.get(key)
      if (newest === undefined || live?.target.connection !== newest) live?.sink.close()
    })
  }

  /**
   * Checks the `authorize` hook and claims the peer id for a client at
   * `address` (who may create only so many rooms a minute). Sets
   * `target.fresh`. Throws a {@link Refusal}.
   */
  async admit(
    request: Parameters<NonNullable<ResolvedServerOptions['authorize']>>[0],
    target: Target,
    address: string,
  ): Promise<void> {
    const { authorize, maxPeersPerRoom } = this.#options
    const { room, peer, token } = target
    if (authorize && !(await authorize(request, { room, peer }))) throw new Refusal('forbidden', 'Not allowed in this room')
    let result: Awaited<ReturnType<Hub['claim']>>
    try {
      // Asked only of a client out of room credit: would this claim create a room?
      if (!this.#admission.mayCreateRoom(address) && !(await this.#hub.present(room)).length) {
        throw new Refusal('rate-limited', 'Too many new rooms from this address; try again later')
      }
      // Named only for a hub that tells of takeovers by name (Redis): 0.5 KB per held connection
      // with the name and a map of them, for nothing, in memory.
      if (this.#hub.onEvicted) target.connection = randomUUID()
      result = await this.#hub.claim(
        room,
        peer,
        token,
        Math.min(maxPeersPerRoom, target.maxPeers ?? maxPeersPerRoom),
        target.connection,
      )
    } catch (error) {
      if (!(error instanceof Refusal)) this.observers.emit('hubError', 'admit', error)
      throw error
    }
    if (result === 'id-taken') throw new Refusal('id-taken', 'This peer id is held by another connection')
    if (result === 'room-full') throw new Refusal('room-full', 'The room is full')
    if (result === 'too-many-rooms') throw new Refusal('too-many-rooms', 'The server holds too many rooms; try later')
    if (result === 'created') this.#admission.roomCreated(address)
    target.fresh = result !== 'resumed'
  }

  /**
   * Streams a room to an admitted peer: what it missed since its resume
   * position (or, for a new subscriber, what was addressed to it and what
   * peers still present broadcast last), then live events, with nothing lost or
   * doubled in between. Resolves to the subscription; its `stop()` ends it.
   */
  async subscribe(target: Target, sink: Sink): Promise<Subscription> {
    const { room, key } = target
    const subscription = new Subscription(target, sink, this)
    this.#live.get(key)?.sink.close()
    this.#live.set(key, subscription)
    subscription.unsubscribe = this.#hub.subscribe(
      room,
      subscription.deliver.bind(subscription),
      subscription.lost.bind(subscription),
      true,
    )
    try {
      await this.#replay(subscription)
    } catch (error) {
      // The hub failed (Redis): the claim goes with the subscription, or the id stays taken.
      this.observers.emit('hubError', 'subscribe', error)
      subscription.stop()
      throw error
    }
    subscription.pending = undefined
    return subscription
  }

  /** `subscription` ended: its peer's live connection is gone, and so is its claim (after the hub's grace). */
  ended(subscription: Subscription): void {
    const { room, peer, token, key } = subscription.target
    if (this.#live.get(key) === subscription) this.#live.delete(key)
    this.#hub.release(room, peer, token)
  }

  /** Whether a peer that has everything up to `position` had event `id` (when the hub can tell). */
  had(id: string, position: string | undefined): boolean {
    return position !== undefined && this.#hub.after?.(id, position) === false
  }

  /** Sends what a subscriber missed, then what arrived live meanwhile (`pending`), nothing twice. */
  async #replay(subscription: Subscription): Promise<void> {
    const { target, sink } = subscription
    const { room, peer } = target
    // A fresh claim resumes nothing: what was published before it, to this id, was for an
    // earlier holder of the id (its SDP, its candidates). A position it brings is one we lost
    // (the server restarted): the client is told to announce itself again.
    let missed = await this.#hub.since(room, target.fresh ? undefined : target.lastEventId)
    let fresh = target.fresh || target.lastEventId === undefined
    if (missed === 'gap' || (target.fresh && target.lastEventId !== undefined)) {
      sink.reset()
      if (missed === 'gap') missed = (await this.#hub.since(room, undefined)) as RoomEvent[]
      fresh = true
    }
    // A new subscriber gets broadcasts only from peers still here: a hello from a peer that
    // has since gone would pair it with nobody.
    const present = fresh ? new Set(await this.#hub.present(room)) : undefined
    // …and of those, each peer's latest only: a broadcast is an announcement (a `hello`) that the
    // next one supersedes, and an older one would pair the newcomer with a connection the peer
    // has since replaced (it pairs, then rebuilds for the newer hello: a negotiation for nothing).
    const latest = new Map<string, string>()
    if (present) for (const event of missed) if (event.to === undefined) latest.set(event.from, event.id)
    for (const event of missed) {
      if (!isFor(event, peer)) continue
      if (present && (event.to === undefined ? latest.get(event.from) !== event.id || !present.has(event.from) : target.fresh))
        continue
      sink.send(event)
    }
    // A hub may hand a new listener an event it was still fanning out: one the peer had before it
    // resumed here (Redis: published through another process, on its way to this one), or one the
    // replay just dealt with (sent, or left out on purpose). Neither is sent again.
    subscription.position = missed.at(-1)?.id ?? (fresh ? undefined : target.lastEventId)
    const pending = subscription.pending as RoomEvent[]
    const considered = pending.length ? new Set(missed.map((event) => event.id)) : undefined
    for (const event of pending) if (!considered?.has(event.id) && !this.had(event.id, subscription.position)) sink.send(event)
  }

  /**
   * Publishes messages from `peer` (already authenticated). Each is validated; one whose `from`
   * is not `peer` is refused. What goes out is each message's own text when it is exactly its
   * validated copy (and within `maxMessageBytes`), else that copy serialized. Answers at
   * once when the hub does (in memory: no promise per message), later when it
   * does not (Redis). Throws (or rejects with) a {@link Refusal}.
   */
  publish(room: string, peer: string, batch: Batch, key: string): string[] | Promise<string[]> {
    const { ratePerSecond, rateBurst } = this.#options
    // A hub that takes no bytes gets text, decoded now: nothing of the frame is held across an await.
    if (batch.bytes && !this.#hub.publishBytes) {
      batch.texts = batch.bytes.map((bytes) => bytes.toString())
      batch.bytes = undefined
    }
    // A shared hub keeps the bucket, so the limit holds across processes (one round trip more).
    if (this.#hub.take) {
      return Promise.resolve(this.#hub.take(key, batch.messages.length, ratePerSecond, rateBurst)).then(
        (taken) => {
          if (!taken) throw this.#rateLimited()
          return this.#validated(room, peer, batch)
        },
        (error) => {
          throw this.#hubFailed(error, 0)
        },
      )
    }
    if (!this.#limiter.take(key, batch.messages.length)) throw this.#rateLimited()
    return this.#validated(room, peer, batch)
  }

  #rateLimited(): Refusal {
    return new Refusal('rate-limited', `More than ${this.#options.ratePerSecond} messages a second`)
  }

  /** Validates the batch's messages, then publishes them. */
  #validated(room: string, peer: string, batch: Batch): string[] | Promise<string[]> {
    validateBatch(batch, peer, this.#options.maxMessageBytes)
    return this.#publishFrom(room, peer, batch, new Array(batch.messages.length), 0)
  }

  /**
   * Publishes the messages from `done` on, one after the other, in order, each to its recipient:
   * its bytes as they came, or its `texts` entry. `ids` has a place for each (made at its size:
   * an array grown by push would make room for 17).
   */
  #publishFrom(room: string, peer: string, batch: Batch, ids: string[], done: number): string[] | Promise<string[]> {
    for (; done < ids.length; done++) {
      const { to } = batch.messages[done] as { to?: string }
      const bytes = batch.bytes?.[done]
      const start = this.observers.size ? performance.now() : 0
      let event: RoomEvent | PromiseLike<RoomEvent>
      try {
        event = bytes
          ? (this.#hub.publishBytes as NonNullable<Hub['publishBytes']>)(room, peer, to, bytes)
          : this.#hub.publish(room, { from: peer, to, data: batch.texts[done] as string })
      } catch (error) {
        throw this.#hubFailed(error, done)
      }
      // What this returns is the ids, or a Promise of them, whatever kind of promise-like the hub gave.
      if (answersLater(event)) {
        const at = done
        return Promise.resolve(event).then(
          (published) => {
            this.#published(ids, at, published, start)
            return this.#publishFrom(room, peer, batch, ids, at + 1)
          },
          (error) => {
            throw this.#hubFailed(error, at)
          },
        )
      }
      this.#published(ids, done, event, start)
    }
    return ids
  }

  /** Message `at` went out; observers hear of it (`start`: when it went to the hub, if anyone listens). */
  #published(ids: string[], at: number, event: RoomEvent, start: number): void {
    ids[at] = event.id
    if (start) this.observers.emit('relayed', dataBytes(event), (performance.now() - start) / 1000)
  }

  /** The hub (Redis) failed: say how much of the batch went out, so a retry sends only the rest. */
  #hubFailed(error: unknown, published: number): Refusal {
    this.observers.emit('hubError', 'publish', error)
    return new Refusal('unavailable', 'Could not publish; try again', published)
  }

  /** Peers with a live subscription on this process. */
  get peers(): number {
    return this.#live.size
  }

  /** Gives back a claim that was admitted but never subscribed (the client went away in between). */
  release({ room, peer, token }: Target): void {
    this.#hub.release(room, peer, token)
  }

  /** Whether `token` holds `peer` in `room`. */
  verify(room: string, peer: string, token: string): boolean | Promise<boolean> {
    const verified = this.#hub.verify(room, peer, token)
    // Anything but a boolean is awaited: a hub's promise-like of another kind or realm would be
    // truthy as it is, a `false` taken for `true`.
    return typeof verified === 'boolean' ? verified : Promise.resolve(verified)
  }
}
