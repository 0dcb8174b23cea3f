// The examples in examples/: each Vite app type-checked (its own tsconfig) and built against the
// built package, then every example — those builds and the plain script-tag page — loaded in two
// Chromium tabs of one context, where the two must connect and chat: one tab sends through the
// example's own form, the other shows the message.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { build } from 'vite'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startStaticServer } from '../../src/server/static'
import { until } from '../support/until'
import { describeBrowser, launchChromium } from './chromium'

const root = new URL('../..', import.meta.url).pathname

const built = mkdtempSync(join(tmpdir(), 'politely-examples-'))

/** Where each example shows its state and messages. */
const EXAMPLES = [
  { name: 'script-tag', built: false, state: '#state', messages: '#messages' },
  { name: 'vite-ts', built: true, state: '#state', messages: '#messages' },
  { name: 'react', built: true, state: '[data-testid=state]', messages: '[data-testid=messages]' },
  { name: 'vue', built: true, state: '[data-testid=state]', messages: '[data-testid=messages]' },
]

describeBrowser('examples/', () => {
  let browser: Browser | undefined
  let server: { url: string; close(): Promise<void> } | undefined
  beforeAll(async () => {
    // The script-tag page loads ../../dist/ as it would from a checkout; the builds are served from their own folders.
    server = await startStaticServer({
      '/examples/script-tag/': join(root, 'examples/script-tag'),
      '/dist/': join(root, 'dist'),
      '/built/': built,
    })
    browser = await launchChromium()
  })
  afterAll(async () => {
    await browser?.close()
    await server?.close()
    rmSync(built, { recursive: true, force: true })
  })

  test.each(EXAMPLES.filter((example) => example.built))('$name: type-checks and builds', async ({ name }) => {
    const tsc = join(root, 'node_modules/typescript/bin/tsc')
    expect(() => execFileSync(process.execPath, [tsc, '-p', join(root, 'examples', name)], { encoding: 'utf8' })).not.toThrow()
    await build({
      root: join(root, 'examples', name),
      configFile: join(root, 'examples', name, 'vite.config.ts'),
      logLevel: 'warn',
      // Relative asset URLs: the build is served under /built/<name>/.
      base: './',
      build: { outDir: join(built, name), emptyOutDir: true },
    })
  })

  test.each(EXAMPLES)('$name: two tabs connect and chat', async ({ name, built: isBuilt, state, messages }) => {
    const context = await (browser as Browser).newContext()
    const problems: string[] = []
    try {
      const tabs: Page[] = [await context.newPage(), await context.newPage()]
      for (const tab of tabs) {
        tab.on('pageerror', (error) => problems.push(error.message))
        // The browser's own favicon request is not the example's.
        tab.on('console', (message) => {
          if (message.type() === 'error' && !message.location().url.endsWith('/favicon.ico')) problems.push(message.text())
        })
        await tab.goto(new URL(isBuilt ? `built/${name}/index.html` : `examples/${name}/index.html`, server?.url).href)
      }
      const [a, b] = tabs as [Page, Page]
      await until(
        async () => (await a.textContent(state)) === 'connected' && (await b.textContent(state)) === 'connected',
        'both tabs connected',
        15_000,
      )
      await a.fill('input', `hello from ${name}`)
      await a.click('button')
      await until(
        async () => ((await b.textContent(messages)) ?? '').includes(`hello from ${name}`),
        'the message in the other tab',
        10_000,
      )
      expect(problems).toEqual([])
    } finally {
      await context.close()
    }
  })
})
