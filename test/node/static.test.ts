// The static file server tried as an attacker would: dotfiles, symlinks out of the served
// folder, and traversal in every encoding, over fetch and over a raw socket (fetch would
// normalise `..`, backslashes and `%2e` away before they reach the server).
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startStaticServer } from '../../src/server/static'

type StaticServer = Awaited<ReturnType<typeof startStaticServer>>

/** Every secret planted below contains SECRET; /etc/passwd gives itself away by `root:`. */
const LEAK = /SECRET|root:/

interface Reply {
  status: number
  headers: Record<string, string>
  body: string
}

/** Sends `path` byte for byte as the request target, so no client can normalise it first. */
function raw(server: StaticServer, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1')
    let text = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => (text += chunk))
    socket.on('error', reject)
    socket.on('end', () => resolve(parse(text)))
    socket.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
  })
}

function parse(text: string): Reply {
  const [head = '', ...rest] = text.split('\r\n\r\n')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(
    lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  )
  const body = rest.join('\r\n\r\n')
  return { status: Number(statusLine.split(' ')[1]), headers, body: headers['transfer-encoding'] ? dechunk(body) : body }
}

/** The payload of a chunked body: each chunk is its size in hex, CRLF, the bytes, CRLF. */
function dechunk(body: string): string {
  let text = ''
  for (let at = 0; ; ) {
    const eol = body.indexOf('\r\n', at)
    const size = Number.parseInt(body.slice(at, eol), 16)
    if (!(size > 0)) return text
    text += body.slice(eol + 2, eol + 2 + size)
    at = eol + 2 + size + 2
  }
}

async function get(server: StaticServer, path: string, init?: RequestInit): Promise<Reply> {
  const response = await fetch(new URL(path, server.url), { redirect: 'manual', ...init })
  return { status: response.status, headers: Object.fromEntries(response.headers), body: await response.text() }
}

describe.skipIf(process.platform === 'win32')('static server', () => {
  let root: string
  let server: StaticServer
  let following: StaticServer

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'politely-static-'))
    const site = join(root, 'site')
    const outside = join(root, 'outside')
    for (const dir of [site, outside, join(site, '.git'), join(site, 'sub'), join(site, 'docs'), join(root, 'dist')]) {
      await mkdir(dir, { recursive: true })
    }
    const files: Record<string, string> = {
      'site/index.html': '<p>INDEX-PAGE</p>',
      'site/app.js': 'export const app = 1 // APP-JS',
      'site/style.CSS': 'p { color: red }',
      'site/.env': 'TOKEN=SECRET-DOTENV',
      'site/.git/config': '[core] SECRET-GITCONFIG',
      'site/sub/.hidden': 'SECRET-HIDDEN',
      'site/sub/page.txt': 'SUB-PAGE',
      'site/docs/index.html': '<p>DOCS-INDEX</p>',
      'outside/secret.txt': 'SECRET-OUTSIDE',
      'outside/.secret': 'SECRET-OUTSIDE-DOTFILE',
      'outside/index.html': 'SECRET-OUTSIDE-INDEX',
      'dist/bundle.js': 'BUNDLE-JS',
    }
    for (const [name, text] of Object.entries(files)) await writeFile(join(root, name), text)
    const links: Record<string, string> = {
      'site/passwd': '/etc/passwd',
      'site/leak.txt': join(outside, 'secret.txt'),
      'site/sub/relative-leak.txt': '../../outside/secret.txt',
      'site/outdir': outside,
      'site/dot-outside': join(outside, '.secret'),
      'site/inlink.js': 'app.js',
      'site/indir': 'docs',
      'site/alias.txt': '.env',
      'site/git-alias': '.git',
      // The mount's own directory a link: served through its real path.
      'linked-site': 'site',
    }
    for (const [name, target] of Object.entries(links)) await symlink(target, join(root, name))
    const mounts = { '/': site, '/dist/': join(root, 'dist'), '/via-link/': join(root, 'linked-site') }
    server = await startStaticServer(mounts)
    following = await startStaticServer(mounts, undefined, undefined, { followSymlinks: true })
  })

  afterAll(async () => {
    await server?.close()
    await following?.close()
    if (root) await rm(root, { recursive: true, force: true })
  })

  test.each([
    ['/', 'INDEX-PAGE'],
    ['/index.html', 'INDEX-PAGE'],
    ['/app.js', 'APP-JS'],
    ['/docs/', 'DOCS-INDEX'],
    ['/sub/page.txt', 'SUB-PAGE'],
    ['/dist/bundle.js', 'BUNDLE-JS'],
    ['/via-link/', 'INDEX-PAGE'],
    ['/via-link/app.js', 'APP-JS'],
  ])('serves %s', async (path, marker) => {
    const reply = await get(server, path)
    expect(reply.status).toBe(200)
    expect(reply.body).toContain(marker)
    expect(reply.headers['cache-control']).toBe('no-store')
    expect(reply.headers['x-content-type-options']).toBe('nosniff')
  })

  test('Content-Type follows the extension, whatever its case', async () => {
    expect((await get(server, '/')).headers['content-type']).toBe('text/html; charset=utf-8')
    expect((await get(server, '/app.js')).headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect((await get(server, '/style.CSS')).headers['content-type']).toBe('text/css; charset=utf-8')
    expect((await get(server, '/sub/page.txt')).headers['content-type']).toBe('application/octet-stream')
  })

  test.each([
    ['/inlink.js', 'APP-JS'],
    ['/indir/index.html', 'DOCS-INDEX'],
    ['/indir/', 'DOCS-INDEX'],
  ])('serves %s, a symlink that stays inside the mount', async (path, marker) => {
    const reply = await get(server, path)
    expect(reply.status).toBe(200)
    expect(reply.body).toContain(marker)
  })

  test.each([
    '/.env',
    '/.git/config',
    '/.git/',
    '/.git',
    '/sub/.hidden',
    '/%2eenv',
    '/%2Eenv',
    '/%2e%65%6e%76',
    '/.ENV',
    '/.GIT/config',
    '/%2egit/config',
    '/.git%2fconfig',
    '/.git%2Fconfig',
    '/sub%2f.hidden',
    '/sub/%2ehidden',
    '/sub\\.hidden',
    '/sub%5c.hidden',
    '/./.env',
    '/sub/./page.txt',
    '/.env?download=1',
    '/.env/',
    '/%252eenv',
    '/%25252eenv',
    '/via-link/.env',
    '/dist/../.env',
  ])('%s is a 404, the dotfile neither served nor confirmed', async (path) => {
    const reply = await raw(server, path)
    // `/dist/../.env` climbs: refused before the dot is even looked at.
    expect(reply.status).toBe(path.includes('..') ? 403 : 404)
    expect(reply.body).not.toMatch(LEAK)
    expect(reply.body).toBe(path.includes('..') ? 'Forbidden\n' : 'Not found\n')
  })

  test('a dotfile answers exactly like a missing file', async () => {
    const [dotfile, missing] = await Promise.all([raw(server, '/.env'), raw(server, '/.nothing-here')])
    expect(dotfile.status).toBe(missing.status)
    expect(dotfile.body).toBe(missing.body)
    expect(dotfile.headers['content-length']).toBe(missing.headers['content-length'])
  })

  test.each([
    '/passwd',
    '/leak.txt',
    '/sub/relative-leak.txt',
    '/outdir/secret.txt',
    '/outdir/index.html',
    '/outdir/',
    '/outdir',
    '/dot-outside',
    '/alias.txt',
    '/git-alias/config',
    '/via-link/leak.txt',
    '/via-link/outdir/secret.txt',
  ])('%s, a symlink leaving the mount or reaching a dotfile, is a 404', async (path) => {
    const reply = await raw(server, path)
    expect(reply.status).toBe(404)
    expect(reply.body).not.toMatch(LEAK)
  })

  test.each([
    '/../outside/secret.txt',
    '/../../../../../../etc/passwd',
    '/%2e%2e/outside/secret.txt',
    '/%2E%2E/outside/secret.txt',
    '/..%2foutside%2fsecret.txt',
    '/..%2Foutside/secret.txt',
    '/%252e%252e/outside/secret.txt',
    '/%252e%252e%252foutside%252fsecret.txt',
    '/..\\outside\\secret.txt',
    '/%2e%2e%5coutside%5csecret.txt',
    '/sub/../../outside/secret.txt',
    '/dist/../../outside/secret.txt',
    '/via-link/../outside/secret.txt',
    '/index.html%00',
    '/leak.txt%00.html',
    '/%00/../outside/secret.txt',
    '/%c0%ae%c0%ae/outside/secret.txt',
    '/%e0%80%ae%e0%80%ae/outside/secret.txt',
    '//etc/passwd',
    '/%2fetc%2fpasswd',
    '/%5cetc%5cpasswd',
  ])('traversal %s is refused and never the secret', async (path) => {
    const reply = await raw(server, path)
    // 400 for an escape that is not UTF-8 at all (overlong `%c0%ae`).
    expect([400, 403, 404]).toContain(reply.status)
    expect(reply.body).not.toMatch(LEAK)
  })

  test('an absolute-form request target is not a path', async () => {
    const reply = await raw(server, 'http://127.0.0.1/../outside/secret.txt')
    expect(reply.status).toBe(400)
    expect(reply.body).not.toMatch(LEAK)
  })

  test('a directory without a trailing slash redirects, relatively, keeping the query', async () => {
    expect((await raw(server, '/docs')).headers.location).toBe('./docs/')
    expect((await raw(server, '/docs?x=1')).headers.location).toBe('./docs/?x=1')
    const mount = await raw(server, '/dist')
    expect(mount.status).toBe(301)
    expect(mount.headers.location).toBe('./dist/')
    const followed = await get(server, '/docs')
    expect(followed.status).toBe(301)
    expect(new URL(followed.headers.location as string, new URL('/docs', server.url)).href).toBe(`${server.url}docs/`)
  })

  test('a directory without index.html is a 404, never a listing', async () => {
    for (const path of ['/sub/', '/dist/', '/sub//', '/sub/?list']) {
      const reply = await raw(server, path)
      expect(reply.status).toBe(404)
      expect(reply.body).not.toContain('page.txt')
      expect(reply.body).not.toContain('bundle.js')
    }
  })

  test('HEAD answers the headers of GET and no body', async () => {
    const reply = await raw(server, '/app.js', 'HEAD')
    expect(reply.status).toBe(200)
    expect(reply.headers['content-length']).toBe(String('export const app = 1 // APP-JS'.length))
    expect(reply.headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect(reply.body).toBe('')
    expect((await raw(server, '/.env', 'HEAD')).status).toBe(404)
    expect((await raw(server, '/leak.txt', 'HEAD')).status).toBe(404)
  })

  test.each(['POST', 'PUT', 'DELETE', 'OPTIONS'])('%s is a 405', async (method) => {
    const reply = await get(server, '/index.html', { method })
    expect(reply.status).toBe(405)
    expect(reply.body).not.toContain('INDEX-PAGE')
  })

  describe('with followSymlinks', () => {
    test.each([
      ['/leak.txt', 'SECRET-OUTSIDE'],
      ['/sub/relative-leak.txt', 'SECRET-OUTSIDE'],
      ['/outdir/secret.txt', 'SECRET-OUTSIDE'],
      ['/outdir/', 'SECRET-OUTSIDE-INDEX'],
      ['/passwd', 'root:'],
      ['/via-link/leak.txt', 'SECRET-OUTSIDE'],
    ])('serves %s, a link leaving the mount', async (path, marker) => {
      const reply = await get(following, path)
      expect(reply.status).toBe(200)
      expect(reply.body).toContain(marker)
    })

    test.each([
      '/.env',
      '/sub/.hidden',
      '/%2eenv',
      '/alias.txt',
      '/dot-outside',
      '/../outside/secret.txt',
      '/%2e%2e/outside/secret.txt',
    ])('still refuses %s', async (path) => {
      const reply = await raw(following, path)
      expect([403, 404]).toContain(reply.status)
      expect(reply.body).not.toMatch(LEAK)
    })
  })
})
