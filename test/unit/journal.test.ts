import { describe, expect, test, vi } from 'vitest'
import { Journal } from '../../src/server/journal'

/** A reference model: what the journal must read back. */
type Entry = { seq: number; from: string; to?: string; data: string }

describe('Journal (a room replay buffer outside the heap)', () => {
  test('reads back what was appended, after any position, with non-ASCII data and broadcasts', () => {
    const journal = new Journal()
    const entries: Entry[] = [
      { seq: 1, from: 'alice', data: '{"kind":"hello"}' },
      { seq: 2, from: 'bob', to: 'alice', data: '{"sdp":"é ü — 日本 😀"}' },
      { seq: 3, from: 'a.b:c~d-e_f', to: 'x', data: '' },
      // Ids are ASCII once validated; one that is not (a hub's caller may skip validation) still reads back.
      { seq: 4, from: 'ab日本', to: 'é', data: '{}' },
    ]
    for (const { seq, from, to, data } of entries) journal.append(seq, 1000 + seq, from, to, data)
    expect(journal.after(0)).toEqual(entries)
    expect(journal.after(2)).toEqual([entries[2], entries[3]])
    expect(journal.after(4)).toEqual([])
    expect(journal.count).toBe(4)
    // Bytes are UTF-8 bytes of the data: what the replay limits count.
    expect(journal.bytes).toBe(entries.reduce((sum, { data }) => sum + Buffer.byteLength(data), 0))
    expect(journal.firstSeq).toBe(1)
    expect(journal.firstAt).toBe(1001)
  })

  test('drops from the start; empty, it holds nothing', () => {
    const journal = new Journal()
    journal.append(7, 1, 'a', 'b', 'xyz')
    journal.append(8, 2, 'a', undefined, 'é')
    expect(journal.dropFirst()).toBe(3)
    expect(journal.firstSeq).toBe(8)
    expect(journal.firstAt).toBe(2)
    expect(journal.dropFirst()).toBe(2)
    expect([journal.count, journal.bytes, journal.firstSeq, journal.firstAt]).toEqual([0, 0, undefined, undefined])
    expect(journal.dropFirst()).toBe(0)
    expect(journal.after(0)).toEqual([])
  })

  test('thousands of appends and drops in a random pattern match a plain array (compaction, growth, shrinking)', () => {
    const journal = new Journal()
    const model: Entry[] = []
    let seq = 0
    let random = 42
    const next = () => {
      random = (random * 1103515245 + 12345) % 2 ** 31
      return random / 2 ** 31
    }
    const alphabet = ['a', 'z', 'é', '日', '😀', '"', '\\']
    for (let round = 0; round < 3000; round++) {
      // Bursts of large messages (growth), then long runs of drops (shrinking on the next compaction).
      const size = next() < 0.02 ? Math.floor(next() * 10_000) : Math.floor(next() * 300)
      // Filling for the first half, emptying for the second: the buffer grows, then shrinks.
      if (next() < (round < 1500 ? 0.7 : 0.35)) {
        let data = ''
        for (let i = 0; i < size; i++) data += alphabet[Math.floor(next() * alphabet.length)]
        const to = next() < 0.5 ? undefined : `p${Math.floor(next() * 99)}`
        const entry: Entry = to === undefined ? { seq: ++seq, from: 'sender', data } : { seq: ++seq, from: 'sender', to, data }
        journal.append(entry.seq, entry.seq, entry.from, entry.to, entry.data)
        model.push(entry)
      } else if (model.length) {
        expect(journal.dropFirst()).toBe(Buffer.byteLength((model.shift() as Entry).data))
      }
      expect(journal.count).toBe(model.length)
      expect(journal.firstSeq).toBe(model[0]?.seq)
      // Its memory: at most four times its records (each ≤ 40 bytes of header and ids here), or the smallest buffer.
      const records = journal.bytes + 40 * journal.count
      expect(journal.size).toBeLessThanOrEqual(records)
      expect(journal.footprint).toBeLessThanOrEqual(Math.max(2048, 4 * records))
      if (round % 250 === 0) expect(journal.after(model[0] ? model[0].seq - 1 : 0)).toEqual(model)
    }
    expect(journal.after(0)).toEqual(model)
    expect(journal.bytes).toBe(model.reduce((sum, { data }) => sum + Buffer.byteLength(data), 0))
    // Cut to a budget, it lets go of its free space.
    while (journal.bytes > 3000) {
      journal.dropFirst()
      model.shift()
    }
    journal.fit()
    expect(journal.footprint).toBeLessThanOrEqual(Math.max(2048, 2 * journal.size))
    expect(journal.after(0)).toEqual(model)
  })

  test('a steady stream through a window of a few records: the buffer is compacted in place, nothing is garbled', () => {
    const journal = new Journal()
    const model: Entry[] = []
    for (let seq = 1; seq <= 2000; seq++) {
      const entry = { seq, from: `p${seq % 7}`, to: `q${seq % 5}`, data: `{"n":${seq},"pad":"${'é'.repeat(seq % 200)}"}` }
      journal.append(seq, seq, entry.from, entry.to, entry.data)
      model.push(entry)
      if (model.length > 4) {
        model.shift()
        journal.dropFirst()
      }
      expect(journal.after(0)).toEqual(model)
    }
  })

  test('large messages through a room at its byte limit: a buffer reallocated rarely, not per message', () => {
    const journal = new Journal()
    const allocate = vi.spyOn(Buffer, 'allocUnsafeSlow')
    try {
      const sdp = 'x'.repeat(100_000)
      for (let seq = 1; seq <= 500; seq++) {
        journal.append(seq, seq, 'a', 'b', sdp)
        while (journal.bytes > 256 * 1024) journal.dropFirst()
      }
      expect(allocate.mock.calls.length).toBeLessThan(10)
      expect(journal.after(0).map(({ seq }) => seq)).toEqual([499, 500])
    } finally {
      allocate.mockRestore()
    }
  })

  test('a peer id of 255 bytes or more is refused, and the journal stays as it was', () => {
    const journal = new Journal()
    journal.append(1, 1, 'a', undefined, 'x')
    expect(() => journal.append(2, 2, 'b'.repeat(255), undefined, 'y')).toThrow(RangeError)
    expect(() => journal.append(2, 2, 'b', '日'.repeat(85), 'y')).toThrow(RangeError)
    journal.append(2, 2, 'b', undefined, 'y')
    expect(journal.after(0)).toEqual([
      { seq: 1, from: 'a', data: 'x' },
      { seq: 2, from: 'b', data: 'y' },
    ])
  })
})
