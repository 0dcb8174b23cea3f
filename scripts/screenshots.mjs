// The README's pictures of the demo's video call, made again: headless Chromium with its fake
// camera and microphone, the demo and the reference server on 127.0.0.1 (a free port), each page
// in a browser context of its own (they meet through the server, over WebSocket).
//   npm run build && node scripts/screenshots.mjs   → docs/img/call.png, docs/img/room-call.png
// CHROMIUM_PATH picks the browser (default: Debian's /usr/bin/chromium). Nothing leaves the machine.
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import { chromium } from 'playwright-core'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../bench/chromium.mjs'
import { createSignalingServer, listen, serveStatic } from '../dist/server.mjs'

const VIEWPORT = { width: 1000, height: 700 }
const OUT = new URL('../docs/img/', import.meta.url).pathname
const DEADLINE_MS = 30_000

const signaling = createSignalingServer()
const files = serveStatic({
  '/': new URL('../demo/', import.meta.url).pathname,
  '/dist/': new URL('../dist/', import.meta.url).pathname,
})
const server = createServer((request, response) => signaling.handle(request, response) || files(request, response))
server.on('upgrade', (request, socket, head) => signaling.upgrade(request, socket, head) || socket.destroy())
const port = await listen(server, 0, '127.0.0.1')

const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH,
  args: [
    ...CHROMIUM_ARGS,
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    // The remote videos play with their sound, as after a click on the page.
    '--autoplay-policy=no-user-gesture-required',
  ],
})

/** `count` pages of one call, each in its own context; resolves when every page plays every other's video. */
async function call(mode, count) {
  const room = `screenshot-${mode}-${Date.now()}`
  const pages = []
  for (let i = 0; i < count; i++) {
    const context = await browser.newContext({ viewport: VIEWPORT })
    const page = await context.newPage()
    await page.goto(`http://127.0.0.1:${port}/?mode=${mode}&transport=websocket&room=${room}`)
    pages.push(page)
  }
  await Promise.all(
    pages.map((page) =>
      page.waitForFunction(
        (others) => {
          const videos = Array.from(document.querySelectorAll('#videos video'))
          // Playing, with a picture: every remote's frames decoded, the preview's too.
          return videos.length === others + 1 && videos.every((video) => video.videoWidth > 0 && video.currentTime > 1)
        },
        count - 1,
        { timeout: DEADLINE_MS, polling: 100 },
      ),
    ),
  )
  return pages
}

mkdirSync(OUT, { recursive: true })
try {
  const pair = await call('call', 2)
  // A few lines of chat and the microphone muted, so the picture shows the page at work.
  await pair[1].fill('#text', 'Can you see me?')
  await pair[1].press('#text', 'Enter')
  await pair[0].click('#mic')
  await pair[0].screenshot({ path: `${OUT}call.png` })
  await Promise.all(pair.map((page) => page.context().close()))

  const room = await call('room-call', 4)
  await room[0].screenshot({ path: `${OUT}room-call.png` })
  console.log(`written: ${OUT}call.png, ${OUT}room-call.png`)
} finally {
  await browser.close()
  await signaling.close()
  server.closeAllConnections()
  server.close()
}
