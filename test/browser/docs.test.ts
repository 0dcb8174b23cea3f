// Every code block of README.md and docs/*.md, run against the built package, so a snippet that
// does not run fails CI. The word after a block's language says how (GitHub highlights by the
// first word only):
//   js page / html page   two tabs of one Chromium context: no page error, no console error,
//                         and a snippet that logs must log in both tabs (the peers talked)
//   js node [redis]       a Node process (the package by its own name): it must stay up without
//                         a word on stderr, and its server must answer /signal (with Redis: REDIS_URL)
//   ts types              type-checked against the package; an interface there must be
//                         assignable both ways to the exported one of the same name
//   sh                    commands: `npm install|run|test …` are checked (the package name, the
//                         scripts exist: running them here would recurse), the server CLI is run
//                         and must answer, and the scale-out recipe runs as written
// A block with any other tag fails. What the runner changes is what cannot run here: fixed ports
// become free ones, unpkg URLs the local dist/ (after checking the pinned versions), and the
// example STUN/TURN hosts 127.0.0.1, so nothing leaves the machine; Node snippets get a
// TURN_SECRET in their environment.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startStaticServer } from '../../src/server/static'
import { freePort } from '../support/ports'
import { redisServer, startRedis } from '../support/redis'
import { describeRequiring, runs } from '../support/requires'
import { describeBrowser, launchChromium } from './chromium'

const root = new URL('../..', import.meta.url).pathname
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const mittVersion = JSON.parse(readFileSync(join(root, 'node_modules/mitt/package.json'), 'utf8')).version

interface Block {
  where: string
  info: string
  code: string
}

/** The fenced code blocks of a Markdown file, with their info strings. */
function blocks(file: string): Block[] {
  const found: Block[] = []
  const lines = readFileSync(join(root, file), 'utf8').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i] as string)
    if (!open) continue
    const start = i
    while (!/^```\s*$/.test(lines[++i] ?? '```')) {}
    found.push({ where: `${file}:${start + 1}`, info: (open[1] as string).trim(), code: lines.slice(start + 1, i).join('\n') })
  }
  return found
}

const BLOCKS = ['README.md', ...readdirSync(join(root, 'docs')).flatMap((f) => (f.endsWith('.md') ? [`docs/${f}`] : []))].flatMap(
  blocks,
)
const of = (info: string) => BLOCKS.filter((block) => block.info === info).map((block) => [block.where, block] as const)

test('every code block says how it runs', () => {
  const known = ['js page', 'html page', 'js node', 'js node redis', 'ts types', 'sh']
  expect(BLOCKS.filter((block) => !known.includes(block.info)).map((block) => `${block.where}: \`\`\`${block.info}`)).toEqual([])
  expect(BLOCKS.length).toBeGreaterThan(10)
})

/** The package's own name resolves to it (Node's self-reference), so snippets run from a folder inside it. */
const scratch = join(root, '.scratch/docs')

/** A fixed port of the docs → a free one (every occurrence, so a URL printed with it still matches). */
async function freePorts(code: string, fixed: number[]): Promise<{ code: string; ports: Map<number, number> }> {
  const ports = new Map<number, number>()
  for (const port of fixed) if (code.includes(String(port))) ports.set(port, await freePort())
  for (const [from, to] of ports) code = code.replaceAll(String(from), String(to))
  return { code, ports }
}

/**
 * Resolves with `url`'s status once it answers, or (`until`) once it answers with that status
 * (politely's signaling: a room without a peer id is 400; before that, a balancer may say 502).
 */
async function answers(url: string, process?: ChildProcess, output?: () => string, until?: number): Promise<number> {
  for (let tries = 0; ; tries++) {
    const status = (await fetch(url).catch(() => undefined))?.status
    if (status !== undefined && (until === undefined || status === until)) return status
    if (tries > 200 || (process && process.exitCode !== null)) throw new Error(`${url} never answered: ${output?.() ?? ''}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Kills a process started detached, with everything it started (its process group). */
function killGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    process.kill(-(child.pid as number), 'SIGTERM')
  })
}

/** Runs `command` (bash) detached, collecting its output. */
function start(command: string, env: Record<string, string> = {}): { child: ChildProcess; output: () => string } {
  let output = ''
  const child = spawn('bash', ['-c', command], { cwd: root, detached: true, env: { ...process.env, ...env } })
  child.stdout?.on('data', (chunk) => {
    output += chunk
  })
  child.stderr?.on('data', (chunk) => {
    output += chunk
  })
  return { child, output: () => output }
}

describe('Node snippets', () => {
  beforeAll(() => mkdirSync(scratch, { recursive: true }))
  afterAll(() => rmSync(scratch, { recursive: true, force: true }))

  async function runServerSnippet(where: string, source: string, env: Record<string, string> = {}): Promise<void> {
    const { code, ports } = await freePorts(source, [8787])
    const file = join(scratch, `${where.replace(/\W/g, '-')}.mjs`)
    writeFileSync(file, code)
    let stderr = ''
    const child = spawn(process.execPath, [file], { cwd: root, env: { ...process.env, ...env } })
    child.stderr?.on('data', (chunk) => {
      stderr += chunk
    })
    try {
      const port = ports.get(8787)
      expect(port, 'a server snippet listens on 8787').toBeDefined()
      // The signaling answers (a room without a peer id: 400 bad-request), and keeps running.
      expect(await answers(`http://127.0.0.1:${port}/signal/docs`, child, () => stderr)).toBe(400)
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(stderr).toBe('')
      expect(child.exitCode).toBeNull()
      // The app's own routes (the Express snippet) still work beside it.
      if (code.includes("app.get('/'")) expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('my app')
    } finally {
      child.kill()
    }
  }

  // The secret a server snippet reads from its environment (TURN), as a deployment would give it.
  test.each(of('js node'))('%s', async (where, { code }) => runServerSnippet(where, code, { TURN_SECRET: 'docs-only-secret' }))

  describeRequiring(redisServer, 'with Redis', () => {
    test.each(of('js node redis'))('%s', async (where, { code }) => {
      const redis = await startRedis()
      try {
        await runServerSnippet(where, code, { REDIS_URL: redis.url })
      } finally {
        await redis.stop()
      }
    })
  })
})

describe('TypeScript snippets', () => {
  test.each(of('ts types'))('%s', (where, { code }) => {
    // Inside the repository, under its package.json: `politely` resolves to the package itself.
    mkdirSync(join(root, '.scratch'), { recursive: true })
    const dir = mkdtempSync(join(root, '.scratch/types-'))
    try {
      // Each interface the snippet declares must match the package's export of that name, both ways.
      const names = [...code.matchAll(/^interface (\w+)/gm)].map((match) => match[1] as string)
      const checks = names.map(
        (name) =>
          `import type { ${name} as Real${name} } from 'politely'\n` +
          `export const to${name} = (value: ${name}): Real${name} => value\n` +
          `export const from${name} = (value: Real${name}): ${name} => value\n`,
      )
      writeFileSync(join(dir, 'snippet.ts'), `${code}\n${checks.join('')}`)
      const config = { compilerOptions: { module: 'nodenext', strict: true, noEmit: true, lib: ['es2022', 'dom'], types: [] } }
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ ...config, files: ['snippet.ts'] }))
      const tsc = join(root, 'node_modules/typescript/bin/tsc')
      expect(() => execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' }), where).not.toThrow()
      expect(names.length).toBeGreaterThan(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('shell snippets', () => {
  test.each(of('sh').filter(([, { code }]) => !code.startsWith('redis-server')))('%s', async (where, { code }) => {
    const commands = code
      .split('\n')
      .map((line) => line.replace(/\s+#.*$/, '').trim())
      .filter(Boolean)
    for (const command of commands) {
      if (/^npm (install|ci|test|run)\b/.test(command)) {
        // Checked, not run: they install, or are what runs this test.
        if (/^npm install politely$/.test(command)) expect(pkg.name).toBe('politely')
        for (const [, script] of command.matchAll(/npm run ([\w:-]+)/g))
          expect(pkg.scripts, command).toHaveProperty([script as string])
        if (/\bnpm test\b/.test(command)) expect(pkg.scripts).toHaveProperty(['test'])
        continue
      }
      // The CLI, as `npx politely-server` finds it: the package's bin.
      expect(command, `${where}: no way to check this command`).toMatch(/npx politely-server\b/)
      expect(pkg.bin['politely-server'].replace(/^\.\//, '')).toBe('dist/cli.mjs')
      let redis: Awaited<ReturnType<typeof startRedis>> | undefined
      let line = command.replace('npx politely-server', `node dist/cli.mjs`)
      if (line.includes('REDIS_URL=')) {
        redis = await startRedis()
        line = line.replace(/redis:\/\/127\.0\.0\.1:6379/, redis.url)
      }
      const { code: run } = await freePorts(line.includes('--port') ? line : `${line} --port 8787`, [8787])
      const { child, output } = start(run)
      try {
        const url = await new Promise<string>((resolve, reject) => {
          const timer = setInterval(() => {
            const printed = /signaling: (http:\/\/127\.0\.0\.1:\d+\/signal)/.exec(output())?.[1]
            if (printed) resolve(printed)
            else if (child.exitCode !== null) reject(new Error(`${command} exited: ${output()}`))
          }, 25)
          child.once('exit', () => clearInterval(timer))
          setTimeout(() => clearInterval(timer), 10_000)
        })
        expect(await answers(`${url}/docs`)).toBe(400)
        if (command.includes('--static demo')) expect((await fetch(url.replace('/signal', '/'))).status).toBe(200)
      } finally {
        await killGroup(child)
        await redis?.stop()
      }
    }
  })

  const nginx = {
    name: 'nginx',
    present: runs('nginx', '-v'),
    install: 'sudo apt-get install nginx-light',
    override: 'PATH',
    looked: 'nginx',
  }
  describeRequiring(redisServer, 'the scale-out recipe', () => {
    describeRequiring(nginx, 'behind nginx', () => {
      test.each(of('sh').filter(([, { code }]) => code.startsWith('redis-server')))('%s runs as written', async (_, { code }) => {
        // Its fixed ports → free ones, in the recipe and in the nginx.conf it uses (a copy).
        const fixed = [6379, 8787, 8788, 8789, 8080]
        const conf = readFileSync(join(root, 'docs/scale-out/nginx.conf'), 'utf8')
        const { code: both, ports } = await freePorts(`${code}\n#####\n${conf}`, fixed)
        const [recipe, config] = both.split('\n#####\n') as [string, string]
        const prefix = mkdtempSync(join(tmpdir(), 'politely-recipe-'))
        writeFileSync(join(prefix, 'nginx.conf'), config)
        cpSync(join(root, 'docs/scale-out'), prefix, { recursive: true, filter: (path) => !path.endsWith('nginx.conf') })
        const { child, output } = start(recipe.replace('"$PWD/docs/scale-out"', `"${prefix}"`))
        try {
          const front = ports.get(8080)
          expect(await answers(`http://127.0.0.1:${front}/signal/docs`, child, output, 400)).toBe(400)
          // Round robin over the three processes, once each is up (nginx skips one that is not yet).
          const upstreams = new Set<string | null>()
          for (let tries = 0; upstreams.size < 3 && tries < 200; tries++) {
            upstreams.add((await fetch(`http://127.0.0.1:${front}/signal/docs`)).headers.get('x-upstream'))
            await new Promise((resolve) => setTimeout(resolve, 25))
          }
          expect(upstreams.size).toBe(3)
        } finally {
          await killGroup(child)
          rmSync(prefix, { recursive: true, force: true })
        }
      })
    })
  })
})

describeBrowser('page snippets (Chromium, two tabs)', () => {
  let browser: Browser | undefined
  let server: { url: string; close(): Promise<void> } | undefined
  const pages = mkdtempSync(join(tmpdir(), 'politely-docs-pages-'))
  beforeAll(async () => {
    server = await startStaticServer({ '/': pages, '/dist/': join(root, 'dist'), '/mitt/': join(root, 'node_modules/mitt/dist') })
    browser = await launchChromium()
  })
  afterAll(async () => {
    await browser?.close()
    await server?.close()
    rmSync(pages, { recursive: true, force: true })
  })

  /** The import map a bundler stands in for: the package's entries and mitt, from this server. */
  const importMap = JSON.stringify({
    imports: {
      politely: '/dist/index.mjs',
      ...Object.fromEntries(
        ['sse', 'websocket', 'reliable', 'legacy', 'room', 'stats'].map((entry) => [`politely/${entry}`, `/dist/${entry}.mjs`]),
      ),
      mitt: '/mitt/mitt.mjs',
    },
  })

  /** The page a block becomes: a module script under the import map, or the HTML with its CDN URLs made local. */
  function page(info: string, code: string): string {
    const local = code.replace(/(stun|turn):[\w.-]+\.example\.org/g, '$1:127.0.0.1')
    if (info === 'js page') return `<script type="importmap">${importMap}</script>\n<script type="module">\n${local}\n</script>`
    for (const [, name, version] of local.matchAll(/https:\/\/unpkg\.com\/(politely|mitt)@([^/]+)\//g))
      expect(version, `${name}'s pinned version`).toBe(name === 'politely' ? pkg.version : mittVersion)
    return local
      .replace(/https:\/\/unpkg\.com\/politely@[^/]+\/dist\//g, '/dist/')
      .replace(/https:\/\/unpkg\.com\/mitt@[^/]+\/dist\//g, '/mitt/')
  }

  test.each([...of('js page'), ...of('html page')])('%s', async (where, { info, code }) => {
    const name = `${where.replace(/\W/g, '-')}.html`
    // No favicon request (its 404 would be a console error).
    writeFileSync(
      join(pages, name),
      `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">\n${page(info, code)}\n`,
    )
    const context = await (browser as Browser).newContext()
    const problems: string[] = []
    const logs: string[][] = [[], []]
    try {
      const tabs = [await context.newPage(), await context.newPage()]
      tabs.forEach((tab, i) => {
        tab.on('console', (message) => {
          if (message.type() === 'error') problems.push(message.text())
          else logs[i]?.push(message.text())
        })
        tab.on('pageerror', (error) => problems.push(error.message))
      })
      for (const tab of tabs) await tab.goto(new URL(name, server?.url).href)
      const logsSomething = code.includes('console.log')
      for (let waited = 0; logsSomething && logs.some((lines) => lines.length === 0) && !problems.length; waited += 50) {
        if (waited > 15_000) throw new Error(`${where}: a tab logged nothing in 15 s (logs ${JSON.stringify(logs)})`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      // A moment more for an error that follows the first log.
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(problems).toEqual([])
    } finally {
      await context.close()
    }
  })
})
