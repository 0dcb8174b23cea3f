// Named channels and backpressure in the core: a bulk transfer on one channel does not hold
// up another, and send()'s promise paces a sender without the buffer ever passing the mark.
import { describe, expect, test } from 'vitest'
import { recording } from '../support/recording'
import { opened, STACKS, uniqueRoom, useStack } from '../support/stacks'
import { until } from '../support/until'

/** The core's high-water mark: a channel never holds more than this unsent. */
const HIGH_WATER_MARK = 1024 * 1024
const CHUNK = 64 * 1024

describe.each(STACKS)('$name', ({ make: makeStack }) => {
  const { peer, stack } = useStack(makeStack)

  test('a bulk transfer on one channel does not hold up chat on another; the buffer never passes the mark', async () => {
    const room = uniqueRoom()
    const record = recording(stack().options().RTCPeerConnection as typeof RTCPeerConnection)
    const channels = { files: { ordered: true } }
    const a = peer(room, { channels, RTCPeerConnection: record.RTCPeerConnection })
    const b = peer(room, { channels })
    await Promise.all([a.start(), b.start()])
    await Promise.all([opened(a), opened(b)])
    const total = 16 * 1024 * 1024
    let bulkBytes = 0
    let bytesWhenChatArrived = -1
    b.on('message', ({ data, channel }) => {
      if (channel === 'files') bulkBytes += (data as ArrayBuffer).byteLength
      else if (data === 'chat') bytesWhenChatArrived = bulkBytes
    })
    let peak = 0
    const sampler = setInterval(() => {
      for (const channel of record.channels(a.connection)) peak = Math.max(peak, channel.bufferedAmount)
    }, 1)
    try {
      const chunk = new Uint8Array(CHUNK)
      for (let sent = 0; sent < total; sent += CHUNK) {
        await a.send(chunk, 'files')
        for (const channel of record.channels(a.connection)) peak = Math.max(peak, channel.bufferedAmount)
        // A quarter of the way in, a chat message on the default channel.
        if (sent === total / 4) void a.send('chat')
      }
      await until(() => bulkBytes === total, 'the whole transfer')
    } finally {
      clearInterval(sampler)
    }
    // The chat message did not wait for the bulk: it arrived while most of it was still to come.
    expect(bytesWhenChatArrived).toBeGreaterThanOrEqual(0)
    expect(bytesWhenChatArrived).toBeLessThan(total / 2)
    expect(peak).toBeGreaterThan(0)
    expect(peak).toBeLessThanOrEqual(HIGH_WATER_MARK)
    expect([...a.errors, ...b.errors]).toEqual([])
  })

  test('send() after close() throws `closed`; what was still queued rejects with `closed`', async () => {
    const room = uniqueRoom()
    const a = peer(room)
    // Never started: everything waits in the queue.
    const queued = a.send('never sent')
    a.close()
    await expect(queued).rejects.toMatchObject({ code: 'closed' })
    expect(() => a.send('late')).toThrow(expect.objectContaining({ code: 'closed' }))
  })
})
