import { expect, test } from 'vitest'
import type { RoomEvent } from '../../src/server/hub'
import { MemoryHub } from '../../src/server/memory-hub'
import { SERVER_DEFAULTS } from '../../src/server/options'
import { ADAPTERS, startServer } from '../support/server'
import { readEvents as stream } from '../support/sse-reader'
import { until } from '../support/until'

/**
 * The in-memory hub with one publish made to fail, as Redis does when it goes away
 * mid-batch: a stand-in for a failure we cannot time on a real Redis (the outage
 * itself is tested against redis-server in redis-hub.test.ts).
 */
class HubFailingOnce extends MemoryHub {
  publishes = 0
  constructor(readonly failAt: number) {
    super(SERVER_DEFAULTS)
  }
  override publish(room: string, event: Omit<RoomEvent, 'id'>): Promise<RoomEvent> {
    if (++this.publishes === this.failAt) return Promise.reject(new Error('hub unavailable'))
    // Answered later, as Redis does: the relay's path for a hub that waits.
    return Promise.resolve(super.publish(room, event))
  }
}

test.each(ADAPTERS)(
  '$name: a batch the hub failed part-way through is sent again from where it failed: each message once, in order',
  async (adapter) => {
    const hub = new HubFailingOnce(2)
    const server = await startServer({ hub })
    const b = await stream(`${server.url}/retry?peer=b&token=${'b'.repeat(24)}`)
    const signaler = adapter.make(server.url, 'retry')
    const errors: Error[] = []
    try {
      await signaler.connect('a', { error: (error) => errors.push(error), reset: () => {} })
      // Sent in one tick: one WebSocket frame or one POST, whose second message the hub refuses.
      for (const session of [1, 2, 3]) signaler.send({ kind: 'hello', from: 'a', to: 'b', session, since: 1 })
      await until(() => b.events.filter((e) => !e.event).length >= 3, 'three messages')
      await new Promise((resolve) => setTimeout(resolve, 300))
      const sessions = b.events.filter((e) => !e.event).map((e) => JSON.parse(e.data as string).session)
      expect(sessions).toEqual([1, 2, 3])
      expect(hub.publishes).toBe(4)
      expect(errors).toEqual([])
    } finally {
      signaler.close()
      b.close()
      await server.close()
    }
  },
)
