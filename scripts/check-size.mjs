// Size budget of the browser builds, min+gz, as an app bundling them would ship them.
// Budgets live in package.json ("sizeBudget", bytes); `npm test` runs this on the built files.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { rollup } from 'rollup'
import { minify } from 'terser'

const { sizeBudget } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

const CORE = new URL('../dist/index.mjs', import.meta.url).pathname

/** An ESM entry with the shared chunks it imports (mitt stays out: it is a dependency), minified. */
async function bundled(file, external = []) {
  const bundle = await rollup({ input: file, external: (id) => id === 'mitt' || external.includes(id), logLevel: 'silent' })
  const { output } = await bundle.generate({ format: 'es' })
  return { code: (await minify(output[0].code, { module: true, compress: { passes: 2 } })).code, files: bundle.watchFiles }
}

// An add-on entry (politely/reliable, …) is measured by its own bytes: the core's chunks it
// imports are the core's budget, and an app that uses the add-on loads them anyway. Likewise
// the room entry's code for politely/reliable (its ReliableRoom extends Room): the room's budget.
const core = (await bundled(CORE)).files.filter((id) => id !== CORE)
const ROOM = new URL('../dist/room.mjs', import.meta.url).pathname
const room = (await bundled(ROOM, core)).files
let over = false
for (const [file, budget] of Object.entries(sizeBudget)) {
  const path = new URL(`../${file}`, import.meta.url).pathname
  const base = path === CORE ? [] : path === ROOM ? core : [...core, ...room]
  const code = file.endsWith('.min.js') ? readFileSync(path, 'utf8') : (await bundled(path, base)).code
  const size = gzipSync(code, { level: 9 }).length
  const ok = size <= budget
  over ||= !ok
  console.log(`${ok ? 'ok  ' : 'OVER'} ${file}: ${size} B min+gz (budget ${budget} B)`)
}
if (over) process.exit(1)
