// Static files for the CLI (the demos and the built bundles) and the browser
// tests: node:http and node:fs only, loopback by default.
import { createReadStream, type Stats } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { extname, resolve, sep } from 'node:path'
import { listen } from './listen'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
}

/** URL prefix → directory. */
export type Mounts = Record<string, string>

/**
 * A request handler serving each directory of `mounts` under its URL prefix
 * (`{ '/': 'demo', '/dist/': 'dist' }`). Refuses `..`, NUL and anything that
 * would resolve outside its directory.
 */
export function serveStatic(mounts: Mounts): (request: IncomingMessage, response: ServerResponse) => void {
  const sorted = Object.entries(mounts)
    .map(([prefix, dir]): [string, string] => [prefix.endsWith('/') ? prefix : `${prefix}/`, resolve(dir)])
    // Longest prefix first, so a nested mount wins over its parent.
    .sort(([a], [b]) => b.length - a.length)
  return (request, response) => {
    handle(request, response, sorted).catch(() => send(response, 500, 'Internal error'))
  }
}

/**
 * Starts a static server (for tests and benchmarks).
 *
 * @example
 * const server = await startStaticServer({ '/': 'demo', '/dist/': 'dist' })
 * console.log(server.url) // http://127.0.0.1:40123/
 */
export async function startStaticServer(mounts: Mounts, host = '127.0.0.1', port = 0) {
  const server = createServer(serveStatic(mounts))
  const actual = await listen(server, port, host)
  return {
    url: `http://${host}:${actual}/`,
    port: actual,
    close: () =>
      new Promise<void>((done) => {
        // Browsers keep idle keep-alive sockets open; without this, close() waits for their timeout.
        server.closeAllConnections()
        server.close(() => done())
      }),
  }
}

async function handle(request: IncomingMessage, response: ServerResponse, mounts: Array<[string, string]>): Promise<void> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, 'Method not allowed')
  let url: URL
  let path: string
  try {
    // Checked before the URL parser folds `..` away: a request that tries to climb out is refused, not rewritten.
    const asked = decodeURIComponent((request.url ?? '/').split('?')[0] as string)
    if (asked.includes('\0') || asked.split(/[\\/]/).includes('..')) return send(response, 403, 'Forbidden')
    // Prefixed, not used as a base: a request for `//name/x` is a path, not a host.
    url = new URL(`http://x${request.url}`)
    path = decodeURIComponent(url.pathname)
  } catch {
    return send(response, 400, 'Bad request')
  }
  const file = locate(path, mounts)
  if (!file) return send(response, 404, 'Not found')
  const info = await stat(file).catch(() => undefined)
  if (info?.isDirectory()) {
    // Relative links in an index page resolve against the URL: it must end in a slash.
    // The redirect is relative too, so it can never point at another host.
    if (!url.pathname.endsWith('/')) return redirect(response, `${url.pathname.split('/').pop()}/${url.search}`)
    return serveFile(request, response, resolve(file, 'index.html'))
  }
  if (!info?.isFile()) return send(response, 404, 'Not found')
  return serveFile(request, response, file, info)
}

/** Maps a decoded URL path to a file inside one mount, or undefined if it would land outside it. */
function locate(path: string, mounts: Array<[string, string]>): string | undefined {
  const mount = mounts.find(([prefix]) => path.startsWith(prefix) || `${path}/` === prefix)
  if (!mount) return undefined
  const [prefix, dir] = mount
  const file = resolve(dir, `.${path.slice(prefix.length - 1)}`)
  // Belt and braces: whatever the check on the request missed, never serve outside the mount.
  return file === dir || file.startsWith(dir + sep) ? file : undefined
}

async function serveFile(request: IncomingMessage, response: ServerResponse, file: string, info?: Stats): Promise<void> {
  const size = info?.size ?? (await stat(file).catch(() => undefined))?.size
  if (size === undefined) return send(response, 404, 'Not found')
  response.writeHead(200, {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': size,
    // Always fresh: a reload after `npm run build` must get the new bundle.
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  })
  if (request.method === 'HEAD') return void response.end()
  createReadStream(file)
    .on('error', () => response.destroy())
    .pipe(response)
}

function redirect(response: ServerResponse, location: string): void {
  response.writeHead(301, { Location: location }).end()
}

function send(response: ServerResponse, status: number, text: string): void {
  if (response.headersSent) return void response.destroy()
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${text}\n`)
}
