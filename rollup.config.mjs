import { resolve } from 'node:path'
import nodeResolve from '@rollup/plugin-node-resolve'
import terser from '@rollup/plugin-terser'
import typescript from '@rollup/plugin-typescript'

// Declarations come from `tsc -p tsconfig.build.json`; rollup only transpiles.
const ts = () => typescript({ tsconfig: './tsconfig.json', declaration: false, declarationDir: undefined, outDir: 'dist' })
const errors = resolve('src/errors.ts')

// Browser entries. Each adapter is its own entry, so an app pays only for what it imports;
// what they share (errors, protocol types) lands in a shared chunk, so `instanceof PolitelyError`
// holds across entries.
const browser = {
  index: 'src/index.ts',
  sse: 'src/signalers/sse.ts',
  websocket: 'src/signalers/websocket.ts',
  legacy: 'src/legacy.ts',
}

/** A `<script>`-tag build that adds to the global `Politely` (adapters reuse the core's PolitelyError). */
const umd = (input, file, extend) => ({
  input,
  external: extend ? [errors] : [],
  makeAbsoluteExternalsRelative: false,
  plugins: [nodeResolve(), ts(), terser({ compress: { passes: 2 } })],
  output: {
    file,
    format: 'umd',
    name: 'Politely',
    extend,
    sourcemap: true,
    // In a page the core's global; for require/AMD, the package itself.
    globals: { [errors]: 'Politely' },
    paths: { [errors]: 'politely' },
  },
})

export default [
  {
    // Library builds: mitt stays a dependency so apps share one copy.
    input: browser,
    external: ['mitt'],
    plugins: [ts()],
    output: [
      { dir: 'dist', format: 'es', entryFileNames: '[name].mjs', chunkFileNames: 'shared/[name]-[hash].mjs', sourcemap: true },
      {
        dir: 'dist',
        format: 'cjs',
        entryFileNames: '[name].cjs',
        chunkFileNames: 'shared/[name]-[hash].cjs',
        sourcemap: true,
        exports: 'named',
      },
    ],
  },
  umd('src/index.ts', 'dist/politely.umd.min.js', false),
  umd('src/signalers/sse.ts', 'dist/politely-sse.umd.min.js', true),
  umd('src/signalers/websocket.ts', 'dist/politely-websocket.umd.min.js', true),
  {
    // The Node server, and the Redis hub as its own entry (ioredis is an optional peer dependency).
    input: { server: 'src/server/index.ts', redis: 'src/server/redis-hub.ts' },
    external: [/^node:/, 'ws', 'ioredis'],
    plugins: [ts()],
    output: [
      { dir: 'dist', format: 'es', entryFileNames: '[name].mjs', sourcemap: true },
      { dir: 'dist', format: 'cjs', entryFileNames: '[name].cjs', sourcemap: true, exports: 'named' },
    ],
  },
  {
    // The CLI (top-level await: ESM only); it shares the server's code through ./server.mjs.
    input: 'src/server/cli.ts',
    external: [/^node:/, 'ws', resolve('src/server/index.ts'), resolve('src/server/redis-hub.ts')],
    plugins: [ts()],
    output: {
      file: 'dist/cli.mjs',
      format: 'es',
      paths: { [resolve('src/server/index.ts')]: './server.mjs', [resolve('src/server/redis-hub.ts')]: './redis.mjs' },
    },
  },
]
