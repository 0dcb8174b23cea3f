import nodeResolve from '@rollup/plugin-node-resolve'
import terser from '@rollup/plugin-terser'
import typescript from '@rollup/plugin-typescript'

// Declarations come from `tsc -p tsconfig.build.json`; rollup only transpiles.
const ts = () => typescript({ tsconfig: './tsconfig.json', declaration: false, declarationDir: undefined, outDir: 'dist' })

export default [
  {
    // Library builds: mitt stays a dependency so apps share one copy.
    input: 'src/index.ts',
    external: ['mitt'],
    plugins: [ts()],
    output: [
      { file: 'dist/index.mjs', format: 'es', sourcemap: true },
      { file: 'dist/index.cjs', format: 'cjs', sourcemap: true, exports: 'named' },
    ],
  },
  {
    // The <script>-tag build: one file, mitt inside, global `Politely`.
    input: 'src/index.ts',
    plugins: [nodeResolve(), ts(), terser({ compress: { passes: 2 } })],
    output: { file: 'dist/politely.umd.min.js', format: 'umd', name: 'Politely', sourcemap: true },
  },
]
