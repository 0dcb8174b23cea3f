// The built package as a TypeScript user gets it: `npm pack`, unpacked into a scratch
// node_modules, then consumers in ESM and CommonJS type-checked under every module resolution
// TypeScript has (node10, node16, nodenext, bundler), and loaded by Node both ways.
// A declaration that fails to resolve would turn handler parameters into `any`: the fixtures
// assert that nothing is `any`, and that a made-up event name or option is an error.
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'

const repo = resolve(import.meta.dirname, '../..')
const fixtures = join(repo, 'test/fixtures/consumer')
/** What the package's declarations import, besides its own files. */
const DEPENDENCIES = ['mitt', 'ws', '@types/ws', '@types/node', 'undici-types', 'ioredis', '@ioredis', 'prom-client']

let dir = ''

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'politely-consumer-'))
  const [pack] = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: repo, encoding: 'utf8' }),
  )
  const unpacked = join(dir, 'node_modules/politely')
  mkdirSync(unpacked, { recursive: true })
  execFileSync('tar', ['-xzf', join(dir, pack.filename), '-C', unpacked, '--strip-components=1'])
  for (const name of DEPENDENCIES) {
    mkdirSync(join(dir, 'node_modules', name, '..'), { recursive: true })
    symlinkSync(join(repo, 'node_modules', name), join(dir, 'node_modules', name))
  }
  cpSync(fixtures, dir, { recursive: true })
  // node10 reads neither `.cts` nor exports: the CommonJS consumer as a plain `.ts`.
  cpSync(join(fixtures, 'cjs.cts'), join(dir, 'node10.ts'))
})

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const RESOLUTIONS = [
  { name: 'node16', module: 'node16', moduleResolution: 'node16', files: ['esm.mts', 'cjs.cts'] },
  { name: 'nodenext', module: 'nodenext', moduleResolution: 'nodenext', files: ['esm.mts', 'cjs.cts'] },
  { name: 'bundler', module: 'esnext', moduleResolution: 'bundler', files: ['esm.mts'] },
  { name: 'node10', module: 'commonjs', moduleResolution: 'node10', files: ['node10.ts'] },
]

describe('types resolve for every TypeScript user', () => {
  test.each(RESOLUTIONS)('moduleResolution $name: every entry typed, no any, typos rejected', ({ name, files, ...modes }) => {
    const config = join(dir, `tsconfig.${name}.json`)
    const compilerOptions = { ...modes, target: 'es2022', lib: ['es2022', 'dom'], types: ['node'], strict: true, noEmit: true }
    writeFileSync(config, JSON.stringify({ compilerOptions, files }))
    const tsc = spawnSync(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', config], {
      cwd: dir,
      encoding: 'utf8',
    })
    expect(tsc.stdout + tsc.stderr).toBe('')
    expect(tsc.status).toBe(0)
  })

  test('Node loads every entry by import and by require', () => {
    const entries = [
      'politely',
      'politely/sse',
      'politely/websocket',
      'politely/legacy',
      'politely/reliable',
      'politely/room',
      'politely/stats',
      'politely/server',
    ]
    const script = `
      const { createRequire } = await import('node:module')
      const require = createRequire(import.meta.url)
      for (const entry of ${JSON.stringify(entries)}) {
        const [esm, cjs] = [Object.keys(await import(entry)).sort(), Object.keys(require(entry)).sort()]
        if (esm.length === 0 || esm.join() !== cjs.join()) throw new Error(\`\${entry}: \${esm} vs \${cjs}\`)
      }`
    const node = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8' })
    expect(node.stderr).toBe('')
    expect(node.status).toBe(0)
  })
})
