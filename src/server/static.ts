// Static files for the CLI (the demos and the built bundles) and the browser
// tests: node:http and node:fs only, loopback by default.
// Hand-written on purpose: sirv 3 and serve-static 2 (send 1) follow symlinks out of their
// root (neither calls realpath), and sirv's dev mode serves dotfiles.
import { constants, type Stats } from 'node:fs'
import { type FileHandle, open, readlink, realpath, stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { basename, extname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { pipeline } from 'node:stream'
import { listen } from './listen.js'

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
}

// No following a link swapped in for the file after the check; a FIFO swapped in must not
// block a thread of the pool. Both flags are 0 where the platform lacks them (Windows).
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0)

/**
 * URL prefix → directory.
 *
 * @example
 * const mounts: Mounts = { '/': 'public', '/dist/': 'node_modules/politely/dist' }
 * const files = serveStatic(mounts)
 */
export type Mounts = Record<string, string>

/**
 * Options of {@link serveStatic} and {@link startStaticServer}.
 *
 * @example
 * // Links out of the directory allowed: only for content you trust.
 * const files = serveStatic({ '/': 'public' }, { followSymlinks: true })
 */
export interface StaticOptions {
  /**
   * Serve symlinks whose target lies outside the mount's directory (default false: such a
   * link is a 404, like a missing file). **Unsafe for untrusted content**: whoever can
   * create a link in a served directory can then read any file this process can read.
   * Dotfiles stay refused either way.
   */
  followSymlinks?: boolean
}

interface Mount {
  prefix: string
  dir: string
}

/** A path that passed {@link check}: its real path and what stat said of it. */
interface Target {
  real: string
  info: Stats
}

/**
 * A request handler serving each directory of `mounts` under its URL prefix
 * (`{ '/': 'demo', '/dist/': 'dist' }`). GET and HEAD only. Refuses `..` and NUL (403);
 * answers 404, as for a missing file, for any path segment starting with `.` (dotfiles and
 * dot-directories) and for a file whose real path, every symlink resolved, is outside the
 * real path of its mount's directory (unless `options.followSymlinks`). A directory serves
 * its `index.html`; there is never a listing.
 *
 * @example
 * const files = serveStatic({ '/': 'public' })
 * const server = http.createServer((request, response) => signaling.handle(request, response) || files(request, response))
 */
export function serveStatic(
  mounts: Mounts,
  options: StaticOptions = {},
): (request: IncomingMessage, response: ServerResponse) => void {
  const sorted = Object.entries(mounts)
    .map(([prefix, dir]): Mount => ({ prefix: prefix.endsWith('/') ? prefix : `${prefix}/`, dir: resolve(dir) }))
    // Longest prefix first, so a nested mount wins over its parent.
    .sort((a, b) => b.prefix.length - a.prefix.length)
  return (request, response) => {
    handle(request, response, sorted, options).catch(() => send(response, 500, 'Internal error'))
  }
}

/**
 * A static server {@link startStaticServer} started.
 *
 * @example
 * const files: RunningStaticServer = await startStaticServer({ '/': 'demo', '/dist/': 'dist' })
 * await page.goto(`${files.url}?transport=sse`) // in a browser test
 * await files.close()
 */
export interface RunningStaticServer {
  /** Its root URL, `http://<host>:<port>/`. */
  url: string
  /** The port it listens on (the one picked, when 0 was asked for). */
  port: number
  /** Ends every connection (idle keep-alive ones too) and stops listening. */
  close(): Promise<void>
}

/**
 * Starts a static server (for tests and benchmarks) on `host:port` (port 0, the default, picks
 * a free one); `options` as for {@link serveStatic}.
 *
 * @example
 * const server = await startStaticServer({ '/': 'demo', '/dist/': 'dist' })
 * console.log(server.url) // http://127.0.0.1:40123/
 */
export async function startStaticServer(
  mounts: Mounts,
  host = '127.0.0.1',
  port = 0,
  options: StaticOptions = {},
): Promise<RunningStaticServer> {
  const server = createServer(serveStatic(mounts, options))
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

async function handle(request: IncomingMessage, response: ServerResponse, mounts: Mount[], options: StaticOptions) {
  if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, 'Method not allowed')
  const [rawPath = '', query] = (request.url ?? '').split(/\?(.*)/s)
  // The raw request target, decoded once and never normalised: `/a/../b` is refused, not
  // rewritten to `/b`. An absolute-form target (`GET http://host/x`) is not a path.
  const path = rawPath.startsWith('/') ? decode(rawPath) : undefined
  if (path === undefined) return send(response, 400, 'Bad request')
  const refusal = refuse(path)
  if (refusal) return send(response, refusal, refusal === 403 ? 'Forbidden' : 'Not found')
  const found = locate(path, mounts)
  if (!found) return send(response, 404, 'Not found')
  const target = await check(found.file, found.mount, options)
  if (!target) return send(response, 404, 'Not found')
  if (!target.info.isDirectory()) return serveFile(request, response, found.file, target)
  // Relative links in an index page resolve against the URL: it must end in a slash.
  // `./` keeps the redirect a path on this host, whatever the directory is called.
  if (!rawPath.endsWith('/')) return redirect(response, `./${rawPath.split('/').pop()}/${query ? `?${query}` : ''}`)
  // index.html may be a link too: checked like any other file. No index, no page: never a listing.
  const index = join(target.real, 'index.html')
  const page = await check(index, found.mount, options)
  return page ? serveFile(request, response, index, page) : send(response, 404, 'Not found')
}

/** Decodes a path once; undefined for a malformed escape (or overlong UTF-8 such as `%c0%ae`). */
function decode(path: string): string | undefined {
  try {
    return decodeURIComponent(path)
  } catch {
    return undefined
  }
}

/**
 * The status refusing a decoded path, or 0: 403 for a climb (`..`) or a NUL, 404 for a dot
 * segment, so a dotfile cannot be told from a missing file. Backslashes count as separators:
 * Windows reads them so. A `%2e` escaped twice arrives as the literal name `%2e`, never a dot.
 */
function refuse(path: string): number {
  const segments = path.split(/[\\/]/)
  if (path.includes('\0') || segments.includes('..')) return 403
  return segments.some(isDotted) ? 404 : 0
}

function isDotted(segment: string): boolean {
  return segment.startsWith('.')
}

/** Maps a decoded URL path to a file inside one mount, or undefined if it would land outside it. */
function locate(path: string, mounts: Mount[]): { file: string; mount: Mount } | undefined {
  const mount = mounts.find(({ prefix }) => path.startsWith(prefix) || `${path}/` === prefix)
  if (!mount) return undefined
  const file = resolve(mount.dir, `.${path.slice(mount.prefix.length - 1)}`)
  // Belt and braces: whatever the check on the request missed, never leave the mount by name.
  return within(mount.dir, file) === undefined ? undefined : { file, mount }
}

/**
 * The real path of `file`, every symlink resolved, and its stats, if it exists and may be
 * served: inside the real path of the mount's directory (which may itself be a link) unless
 * `followSymlinks`, and no dot segment below that directory (a link named `public.txt`
 * pointing at `.env` is refused). Looked up on each request: a re-pointed mount is seen at once.
 */
async function check(file: string, mount: Mount, options: StaticOptions): Promise<Target | undefined> {
  const [real, dir] = await Promise.all([realpath(file), realpath(mount.dir)]).catch(() => [undefined, undefined])
  if (real === undefined || dir === undefined || !mayServe(real, dir, options)) return undefined
  const info = await stat(real).catch(() => undefined)
  return info && { real, info }
}

function mayServe(real: string, dir: string, options: StaticOptions): boolean {
  const inner = within(dir, real)
  if (inner === undefined) return options.followSymlinks === true && !isDotted(basename(real))
  return !inner.split(sep).some(isDotted)
}

/** `path` relative to `dir` if it is `dir` or below it, else undefined. */
function within(dir: string, path: string): string | undefined {
  const inner = relative(dir, path)
  // `relative` answers an absolute path when there is no relative one (another drive on Windows).
  return inner === '..' || inner.startsWith(`..${sep}`) || isAbsolute(inner) ? undefined : inner
}

/** Serves the checked `target`; `name` (the path as asked for) gives the Content-Type. */
async function serveFile(request: IncomingMessage, response: ServerResponse, name: string, { real, info }: Target) {
  if (!info.isFile()) return send(response, 404, 'Not found')
  const handle = await openChecked(real, info)
  if (!handle) return send(response, 404, 'Not found')
  response.writeHead(200, {
    'Content-Type': TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': info.size,
    // Always fresh: a reload after `npm run build` must get the new bundle.
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  })
  if (request.method === 'HEAD') {
    await handle.close()
    return void response.end()
  }
  // pipeline, not pipe: a client that goes away must close the file too.
  pipeline(handle.createReadStream(), response, () => {})
}

/**
 * Opens the real path that was checked, never the name asked for, and makes sure the open
 * file is the one checked: the same inode, and on Linux the very path (/proc names what a
 * descriptor points at), so a parent directory swapped for a link in between is caught.
 * Elsewhere the inode comparison narrows that window; Node has no openat2(RESOLVE_BENEATH).
 */
async function openChecked(file: string, info: Stats): Promise<FileHandle | undefined> {
  const handle = await open(file, OPEN_FLAGS).catch(() => undefined)
  if (!handle) return undefined
  if (await isSameFile(handle, file, info).catch(() => false)) return handle
  await handle.close()
  return undefined
}

async function isSameFile(handle: FileHandle, file: string, info: Stats): Promise<boolean> {
  const opened = await handle.stat()
  if (!opened.isFile() || opened.ino !== info.ino || opened.dev !== info.dev) return false
  const actual = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined)
  return actual === undefined || actual === file
}

function redirect(response: ServerResponse, location: string): void {
  response.writeHead(301, { Location: location }).end()
}

function send(response: ServerResponse, status: number, text: string): void {
  if (response.headersSent) return void response.destroy()
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${text}\n`)
}
