// Size budget of the browser builds, min+gz, as an app bundling them would ship them.
// Budgets live in package.json ("sizeBudget", bytes); `npm test` runs this on the built files.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { minify } from 'terser'

const { sizeBudget } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
let over = false
for (const [file, budget] of Object.entries(sizeBudget)) {
  const source = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8')
  // ESM builds are unminified on npm: minify them the way an app's bundler would.
  const code = file.endsWith('.min.js') ? source : (await minify(source, { module: true, compress: { passes: 2 } })).code
  const size = gzipSync(code, { level: 9 }).length
  const ok = size <= budget
  over ||= !ok
  console.log(`${ok ? 'ok  ' : 'OVER'} ${file}: ${size} B min+gz (budget ${budget} B)`)
}
if (over) process.exit(1)
