// A tiny static file server for the demo and the browser tests: node:http and
// node:fs only, so serving a page never needs a dependency or the network.
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { dirname, extname, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
}

/**
 * Serves `root`, and every directory in `routes` under its URL prefix
 * (`{ '/assets/': '/abs/dir' }`). `/dist/` always maps to the repo's build,
 * so a page can load `/dist/politely.umd.min.js` with a plain script tag.
 *
 * @example
 * const server = await startStaticServer({ root: 'demo' })
 * console.log(server.url) // http://127.0.0.1:40123/
 * await server.close()
 */
export async function startStaticServer({ root, host = '127.0.0.1', port = 0, routes = {} }) {
  const mounts = Object.entries({ '/dist/': resolve(REPO, 'dist'), ...routes })
    .map(([prefix, dir]) => [prefix.endsWith('/') ? prefix : `${prefix}/`, resolve(dir)])
    // Longest prefix first, so a nested mount wins over its parent.
    .sort(([a], [b]) => b.length - a.length)
  mounts.push(['/', resolve(root)])

  const server = createServer((request, response) => {
    handle(request, response, mounts).catch(() => send(response, 500, 'Internal error'))
  })
  await new Promise((done, fail) => {
    server.once('error', fail)
    server.listen(port, host, () => {
      server.off('error', fail)
      done()
    })
  })
  const actual = server.address().port
  const origin = host.includes(':') ? `[${host}]` : host
  return {
    url: `http://${origin}:${actual}/`,
    port: actual,
    close: () =>
      new Promise((done) => {
        // Browsers keep idle keep-alive sockets open; without this, close() waits for their timeout.
        server.closeAllConnections()
        server.close(() => done())
      }),
  }
}

async function handle(request, response, mounts) {
  if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, 'Method not allowed')
  let url
  let path
  try {
    // Checked before the URL parser folds `..` away: a request that tries to climb out is refused, not rewritten.
    const asked = decodeURIComponent(request.url.split('?')[0])
    if (asked.includes('\0') || asked.split(/[\\/]/).includes('..')) return send(response, 403, 'Forbidden')
    // Prefixed, not used as a base: a request for `//name/x` is a path, not a host.
    url = new URL(`http://x${request.url}`)
    path = decodeURIComponent(url.pathname)
  } catch {
    return send(response, 400, 'Bad request')
  }
  const file = locate(path, mounts)
  if (!file) return send(response, 403, 'Forbidden')
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
function locate(path, mounts) {
  const [prefix, dir] = mounts.find(([prefix]) => path.startsWith(prefix))
  const file = resolve(dir, `.${path.slice(prefix.length - 1)}`)
  // Belt and braces: whatever the check on the request missed, never serve outside the mount.
  return file === dir || file.startsWith(dir + sep) ? file : undefined
}

async function serveFile(request, response, file, info) {
  const size = info?.size ?? (await stat(file).catch(() => undefined))?.size
  if (size === undefined) return send(response, 404, 'Not found')
  response.writeHead(200, {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': size,
    // Always fresh: a reload after `npm run build` must get the new bundle.
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  })
  if (request.method === 'HEAD') return response.end()
  createReadStream(file)
    .on('error', () => response.destroy())
    .pipe(response)
}

function redirect(response, location) {
  response.writeHead(301, { Location: location })
  response.end()
}

function send(response, status, text) {
  if (response.headersSent) return response.destroy()
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' })
  response.end(`${text}\n`)
}
