import { writeAscii } from './ascii.js'
import type { RoomEvent } from './hub.js'

/** A record's header: seq (f64), when (f64, ms), then the byte lengths of `from` (u8), `to` (u8) and the data (u32). */
const HEADER = 22
/** `to` length meaning "no `to`: a broadcast". Peer ids are at most 64 characters (validated). */
const BROADCAST = 255
/** The smallest buffer: a few announcements and an offer. */
const MIN_CAPACITY = 2048

/**
 * A buffer size for `bytes`: a power of two. Sizes of a few kinds only, so the memory of a freed
 * buffer serves the next one (sizes to the KiB left the allocator's heap fragmented: a room
 * flood held 20–50 MB more RSS). The budget counts what buffers take, slack included.
 */
const sizeFor = (bytes: number) => Math.max(MIN_CAPACITY, 2 ** Math.ceil(Math.log2(bytes)))

/** Writes a peer id at `at` and returns its bytes: ASCII (as validated ids are) byte by byte, else as UTF-8. */
function writeId(buffer: Buffer, id: string, at: number): number {
  const bytes = writeAscii(buffer, id, at)
  return bytes >= 0 ? bytes : buffer.write(id, at)
}

/** One record as read back. */
export interface JournalEntry extends Omit<RoomEvent, 'id'> {
  seq: number
}

/**
 * A room's replay buffer, kept as bytes outside the JavaScript heap: records are appended at the
 * end and dropped from the start of one Buffer per room, which is compacted or resized when full,
 * shrunk when a quarter used at most, and freed when empty. So it takes at most four times the
 * bytes of its records ({@link footprint}: what a budget should count), and each byte is copied a
 * bounded number of times on average.
 *
 * Why not an array of event objects: under relay load every buffered event outlived a
 * young-generation collection and was promoted, and collecting them again in the old generation
 * made the server's GC share twice PeerJS's (11 % against 5 %; 4 % with this journal) and its
 * CPU per message 20 % higher. Bytes here are nothing for the garbage collector to copy or mark.
 *
 * Strings round-trip exactly, except a lone UTF-16 surrogate, which UTF-8 cannot hold (it reads
 * back as U+FFFD). Relayed JSON has none: `JSON.stringify` escapes them and decoded frames and
 * bodies never contain them.
 */
export class Journal {
  #buffer?: Buffer
  /** Offset of the oldest record. */
  #start = 0
  /** Offset after the newest record. */
  #end = 0
  /** Records held. */
  count = 0
  /** Bytes of data held (UTF-8): what the replay limits count. */
  bytes = 0

  /**
   * Appends an event, its data a string or its UTF-8 bytes; returns the bytes of data it added.
   * Throws a RangeError for a peer id of 255 bytes or more.
   */
  append(seq: number, at: number, from: string, to: string | undefined, data: string | Uint8Array): number {
    // Room for the worst case (3 bytes per UTF-16 unit); the exact size is measured only when that does not fit.
    const units = from.length + (to?.length ?? 0) + data.length
    const length = this.#buffer?.length ?? 0
    if (this.#end + HEADER + units * 3 > length) {
      // Only if the exact size does not fit either: growing for the worst case, then shrinking
      // after the trim that follows, would reallocate on every message near the room's limit.
      const need = HEADER + Buffer.byteLength(from) + (to === undefined ? 0 : Buffer.byteLength(to)) + Buffer.byteLength(data)
      if (this.#end + need > length) this.#makeRoom(need)
    }
    const buffer = this.#buffer as Buffer
    const head = this.#end
    const fromBytes = writeId(buffer, from, head + HEADER)
    const toBytes = to === undefined ? 0 : writeId(buffer, to, head + HEADER + fromBytes)
    if (fromBytes >= BROADCAST || toBytes >= BROADCAST) throw new RangeError('A peer id of 255 bytes or more')
    const dataAt = head + HEADER + fromBytes + toBytes
    let dataBytes: number
    if (typeof data === 'string') dataBytes = buffer.write(data, dataAt)
    else {
      buffer.set(data, dataAt)
      dataBytes = data.length
    }
    buffer.writeDoubleLE(seq, head)
    buffer.writeDoubleLE(at, head + 8)
    buffer[head + 16] = fromBytes
    buffer[head + 17] = to === undefined ? BROADCAST : toBytes
    buffer.writeUInt32LE(dataBytes, head + 18)
    this.#end = head + HEADER + fromBytes + toBytes + dataBytes
    this.count++
    this.bytes += dataBytes
    return dataBytes
  }

  /** Seq of the oldest record, if any. */
  get firstSeq(): number | undefined {
    return this.count ? (this.#buffer as Buffer).readDoubleLE(this.#start) : undefined
  }

  /** When the oldest record was appended (ms), if any. */
  get firstAt(): number | undefined {
    return this.count ? (this.#buffer as Buffer).readDoubleLE(this.#start + 8) : undefined
  }

  /** Drops the oldest record; returns the bytes of data it held (0 if there was none). */
  dropFirst(): number {
    if (!this.count) return 0
    const buffer = this.#buffer as Buffer
    const start = this.#start
    const dataBytes = buffer.readUInt32LE(start + 18)
    const toBytes = buffer[start + 17] as number
    this.#start = start + HEADER + (buffer[start + 16] as number) + (toBytes === BROADCAST ? 0 : toBytes) + dataBytes
    this.bytes -= dataBytes
    if (!--this.count) this.clear()
    // A quarter used at most: it shrinks (at a half used, it would regrow at the next large message).
    else if ((this.#buffer as Buffer).length > MIN_CAPACITY && 4 * (this.#end - this.#start) < (this.#buffer as Buffer).length)
      this.#resize(sizeFor(1.25 * (this.#end - this.#start)))
    return dataBytes
  }

  /** Bytes its records take: their data, headers and ids. */
  get size(): number {
    return this.#end - this.#start
  }

  /** Bytes of memory the buffer takes. */
  get footprint(): number {
    return this.#buffer?.length ?? 0
  }

  /** Lets go of free space (after a cut to a budget): the smallest buffer size its records fit in. */
  fit(): void {
    if (this.#buffer && sizeFor(this.#end - this.#start) < this.#buffer.length) this.#resize(sizeFor(this.#end - this.#start))
  }

  /** Forgets every record and frees the buffer. */
  clear(): void {
    this.#buffer = undefined
    this.#start = this.#end = this.count = this.bytes = 0
  }

  /** The records after `seq`, oldest first. */
  after(seq: number): JournalEntry[] {
    const entries: JournalEntry[] = []
    const buffer = this.#buffer
    if (!buffer) return entries
    for (let offset = this.#start; offset < this.#end; ) {
      const fromBytes = buffer[offset + 16] as number
      const toLength = buffer[offset + 17] as number
      const toBytes = toLength === BROADCAST ? 0 : toLength
      const dataBytes = buffer.readUInt32LE(offset + 18)
      const fromAt = offset + HEADER
      const next = fromAt + fromBytes + toBytes + dataBytes
      const entrySeq = buffer.readDoubleLE(offset)
      if (entrySeq > seq) {
        const from = buffer.toString('utf8', fromAt, fromAt + fromBytes)
        const data = buffer.toString('utf8', fromAt + fromBytes + toBytes, next)
        entries.push(
          toLength === BROADCAST
            ? { seq: entrySeq, from, data }
            : { seq: entrySeq, from, to: buffer.toString('utf8', fromAt + fromBytes, fromAt + fromBytes + toBytes), data },
        )
      }
      offset = next
    }
    return entries
  }

  /**
   * Makes `need` bytes free after the last record: the records move to the front of the buffer,
   * or of a new one sized for them with room to spare when this one is too small or too large.
   */
  #makeRoom(need: number): void {
    const live = this.#end - this.#start
    const length = this.#buffer?.length ?? 0
    // A quarter to spare after the move at least, so that the next move is as far away as this one's copy is long.
    if (length >= 1.25 * (live + need) && length <= 4 * (live + need)) {
      const buffer = this.#buffer as Buffer
      buffer.copyWithin(0, this.#start, this.#end)
      this.#start = 0
      this.#end = live
    } else this.#resize(sizeFor(1.25 * (live + need)))
  }

  /** Moves the records to the front of a new buffer of `capacity` bytes. */
  #resize(capacity: number): void {
    const buffer = Buffer.allocUnsafeSlow(capacity)
    this.#buffer?.copy(buffer, 0, this.#start, this.#end)
    this.#end -= this.#start
    this.#start = 0
    this.#buffer = buffer
  }
}
