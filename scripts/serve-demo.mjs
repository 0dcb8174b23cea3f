// `npm run demo`: serves demo/ and the built dist/ on 127.0.0.1 until Ctrl-C.
// Loopback only: the demo needs no other machine, and nothing should reach it from one.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { startStaticServer } from './static-server.mjs'

const root = fileURLToPath(new URL('../demo/', import.meta.url))
const bundle = new URL('../dist/politely.umd.min.js', import.meta.url)
if (!existsSync(bundle)) console.warn('dist/politely.umd.min.js is missing: run `npm run build` first (npm run demo does).')

const wanted = Number(process.env.PORT ?? 8787)
let server
try {
  server = await startStaticServer({ root, port: wanted })
} catch (error) {
  if (error.code !== 'EADDRINUSE') throw error
  // Another demo (or anything else) holds the port: any free one will do, the URL is printed below.
  console.warn(`port ${wanted} is taken, using a free one`)
  server = await startStaticServer({ root, port: 0 })
}
console.log(`politely demo: ${server.url}`)
console.log('open it in two tabs of one browser (same profile) to chat; Ctrl-C stops')

const stop = async () => {
  await server.close()
  process.exit(0)
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
