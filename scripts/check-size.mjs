// Size budget of the browser builds, min+gz, as an app bundling them would ship them.
// Budgets live in package.json ("sizeBudget", bytes); `npm test` runs this on the built files.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { rollup } from 'rollup'
import { minify } from 'terser'

const { sizeBudget } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

/** An ESM entry with the shared chunks it imports (mitt stays out: it is a dependency), minified. */
async function bundled(file) {
  const bundle = await rollup({ input: file, external: ['mitt'], logLevel: 'silent' })
  const { output } = await bundle.generate({ format: 'es' })
  return (await minify(output[0].code, { module: true, compress: { passes: 2 } })).code
}

let over = false
for (const [file, budget] of Object.entries(sizeBudget)) {
  const path = new URL(`../${file}`, import.meta.url).pathname
  const code = file.endsWith('.min.js') ? readFileSync(path, 'utf8') : await bundled(path)
  const size = gzipSync(code, { level: 9 }).length
  const ok = size <= budget
  over ||= !ok
  console.log(`${ok ? 'ok  ' : 'OVER'} ${file}: ${size} B min+gz (budget ${budget} B)`)
}
if (over) process.exit(1)
