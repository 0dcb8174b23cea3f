// politely/reliable in real Chromium, from the <script> builds: 50 MB between two tabs over a
// BroadcastChannelSignaler, hashed in the pages. Needs the built dist/ (npm test builds first).
import { expect, test } from 'vitest'
import { describeBrowser, useTwoTabs } from './chromium'

declare global {
  interface Window {
    // biome-ignore lint/suspicious/noExplicitAny: the UMD global, typed where it is used
    Politely: any
    transfer?: {
      peer: { send(data: unknown, options?: unknown): Promise<void>; close(): void }
      opened: Promise<unknown>
      progress: Array<{ channel: string; sent: number; total: number }>
      received: Promise<{ hash: string; bytes: number }>
    }
  }
}

const SIZE = 50 * 1024 * 1024
const TIMEOUT = 30_000

/** In the page: a ReliablePeer that hashes the first message it receives. */
function createPeer(room: string): Promise<void> {
  const { ReliablePeer, BroadcastChannelSignaler } = window.Politely
  const peer = new ReliablePeer({ signaler: new BroadcastChannelSignaler({ room }) })
  const hex = (digest: ArrayBuffer) => Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
  const progress: Array<{ channel: string; sent: number; total: number }> = []
  peer.on('progress', (event: { channel: string; sent: number; total: number }) => progress.push(event))
  peer.on('error', (error: Error & { code: string }) => console.error(`politely error: ${error.code} ${error.message}`))
  window.transfer = {
    peer,
    progress,
    opened: new Promise((resolve) => peer.on('open', resolve)),
    received: new Promise((resolve) =>
      peer.on('message', async ({ data }: { data: ArrayBuffer }) =>
        resolve({ hash: hex(await crypto.subtle.digest('SHA-256', data)), bytes: data.byteLength }),
      ),
    ),
  }
  return peer.start()
}

/** In the page: random bytes (getRandomValues fills 64 KiB at a time), their hash, then send() them. */
async function sendRandom(size: number): Promise<string> {
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536))
  const hash = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) =>
    b.toString(16).padStart(2, '0'),
  ).join('')
  await window.transfer?.peer.send(bytes)
  return hash
}

describeBrowser('politely/reliable in Chromium', () => {
  const { pages: tabs, problems } = useTwoTabs('reliable.html')

  test('50 MB from one tab to another arrive intact, with progress up to the total', async () => {
    const [sender, receiver] = tabs()
    const room = `reliable-${process.pid}-${Date.now()}`
    await Promise.all(tabs().map((page) => page.evaluate(createPeer, room)))
    await Promise.all(
      tabs().map((page) => page.waitForFunction(() => window.transfer?.opened.then(() => true), null, { timeout: TIMEOUT })),
    )
    const sent = await sender.evaluate(sendRandom, SIZE)
    const received = await receiver.evaluate(() => window.transfer?.received)
    expect(received).toEqual({ hash: sent, bytes: SIZE })
    const progress = await sender.evaluate(() => window.transfer?.progress ?? [])
    expect(progress.length).toBeGreaterThan(1)
    expect(progress.at(-1)).toEqual({ channel: 'default', sent: SIZE, total: SIZE })
    expect(problems).toEqual([])
  })

  test('the <script> build extends the core global: errors from the add-on are the core’s PolitelyError', async () => {
    const [page] = tabs()
    const checks = await page.evaluate(async () => {
      const { ReliablePeer, PerfectNegotiationPeer, PolitelyError, BroadcastChannelSignaler } = window.Politely
      const peer = new ReliablePeer({ signaler: new BroadcastChannelSignaler({ room: 'unused' }) })
      const refused = (() => {
        try {
          peer.send(42)
        } catch (error) {
          return error
        }
      })()
      const aborted = await peer.send('x', { signal: AbortSignal.abort() }).catch((error: unknown) => error)
      peer.close()
      return {
        extendsCore: peer instanceof PerfectNegotiationPeer,
        refused: [refused instanceof PolitelyError, (refused as { code?: string }).code],
        aborted: [aborted instanceof PolitelyError, (aborted as { code?: string }).code],
      }
    })
    expect(checks).toEqual({ extendsCore: true, refused: [true, 'invalid-message'], aborted: [true, 'aborted'] })
  })
})
