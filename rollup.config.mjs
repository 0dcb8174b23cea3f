import { resolve } from 'node:path'
import nodeResolve from '@rollup/plugin-node-resolve'
import terser from '@rollup/plugin-terser'
import typescript from '@rollup/plugin-typescript'

// Declarations come from `tsc -p tsconfig.build.json`; rollup only transpiles. Source maps only
// for the minified `<script>` builds (read in devtools as they are): the ESM and CommonJS builds
// are plain, readable JavaScript that a bundler maps itself, and their maps were 60 % of the package.
const ts = () => typescript({ tsconfig: './tsconfig.json', declaration: false, declarationDir: undefined, outDir: 'dist' })
/** `SOURCEMAP=1 npm run build` maps the library builds too (for profiling, e.g. bench/server.mjs). */
const maps = process.env.SOURCEMAP === '1'
const errors = resolve('src/errors.ts')
const peer = resolve('src/peer.ts')

// Browser entries. Each adapter is its own entry, so an app pays only for what it imports;
// what they share (errors, protocol types, the peer class) lands in shared chunks, so
// `instanceof PolitelyError` holds across entries and `ReliablePeer` extends the core's class.
const browser = {
  index: 'src/index.ts',
  sse: 'src/signalers/sse.ts',
  websocket: 'src/signalers/websocket.ts',
  reliable: 'src/reliable/index.ts',
  room: 'src/room.ts',
  stats: 'src/stats.ts',
  legacy: 'src/legacy.ts',
}

/**
 * A `<script>`-tag build that sets the global `Politely` (the core: no `core` given) or adds to it
 * (an add-on). An add-on takes the core modules it imports (`core`) from the core's global instead
 * of bundling them: the same PolitelyError (so `instanceof` holds) and the same
 * PerfectNegotiationPeer to extend.
 */
const umd = (input, file, core) => ({
  input,
  external: core ?? [],
  makeAbsoluteExternalsRelative: false,
  plugins: [nodeResolve(), ts(), terser({ compress: { passes: 2 } })],
  output: {
    file,
    format: 'umd',
    name: 'Politely',
    extend: core !== undefined,
    sourcemap: true,
    // In a page the core's global; for require/AMD, the package itself.
    globals: Object.fromEntries((core ?? []).map((id) => [id, 'Politely'])),
    paths: Object.fromEntries((core ?? []).map((id) => [id, 'politely'])),
  },
})

/** ESM and CommonJS builds of a set of entries, their shared chunks in dist/shared. */
const libraryOutputs = [
  { dir: 'dist', format: 'es', entryFileNames: '[name].mjs', chunkFileNames: 'shared/[name]-[hash].mjs', sourcemap: maps },
  {
    dir: 'dist',
    format: 'cjs',
    entryFileNames: '[name].cjs',
    chunkFileNames: 'shared/[name]-[hash].cjs',
    sourcemap: maps,
    exports: 'named',
  },
]

export default [
  {
    // Library builds: mitt stays a dependency so apps share one copy.
    input: browser,
    external: ['mitt'],
    plugins: [ts()],
    output: libraryOutputs,
  },
  umd('src/index.ts', 'dist/politely.umd.min.js'),
  umd('src/signalers/sse.ts', 'dist/politely-sse.umd.min.js', [errors]),
  umd('src/signalers/websocket.ts', 'dist/politely-websocket.umd.min.js', [errors]),
  umd('src/reliable/index.ts', 'dist/politely-reliable.umd.min.js', [errors, peer]),
  // The room bundles the link machinery the core's global does not expose.
  umd('src/room.ts', 'dist/politely-room.umd.min.js', [errors, peer]),
  // Stats import nothing of the core's, and still add to its global.
  umd('src/stats.ts', 'dist/politely-stats.umd.min.js', []),
  {
    // The Node server, and the Redis hub as its own entry (ioredis is an optional peer dependency).
    input: { server: 'src/server/index.ts', redis: 'src/server/redis-hub.ts' },
    external: [/^node:/, 'ioredis', 'prom-client'],
    plugins: [ts()],
    output: libraryOutputs,
  },
  {
    // The CLI (top-level await: ESM only); it shares the server's code through ./server.mjs.
    input: 'src/server/cli.ts',
    external: [/^node:/, 'pino', resolve('src/server/index.ts'), resolve('src/server/redis-hub.ts')],
    plugins: [ts()],
    output: {
      file: 'dist/cli.mjs',
      format: 'es',
      paths: { [resolve('src/server/index.ts')]: './server.mjs', [resolve('src/server/redis-hub.ts')]: './redis.mjs' },
    },
  },
]
