// The declarations tsc emits are ESM (`.d.ts` in a `"type": "module"` package). A `require()`
// of politely resolves to `dist/*.cjs`, and TypeScript (node16/nodenext) must then see CommonJS
// declarations: each `.d.ts` gets a `.d.cts` twin whose relative imports name `.cjs` files
// (which TypeScript resolves to the `.d.cts` twins). Run after `tsc -p tsconfig.build.json`.
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const root = new URL('../dist/types/', import.meta.url).pathname

for (const entry of await readdir(root, { recursive: true })) {
  if (!entry.endsWith('.d.ts')) continue
  const source = await readFile(join(root, entry), 'utf8')
  // `from './x.js'` and `import('./x.js')`: only relative specifiers, which all name a `.js` file (biome's useImportExtensions).
  const cjs = source.replace(/((?:from|import\()\s*['"]\.{1,2}\/[^'"]*)\.js(['"])/g, '$1.cjs$2')
  await writeFile(join(root, entry.replace(/\.d\.ts$/, '.d.cts')), cjs)
}
