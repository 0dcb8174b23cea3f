// What every Vite example shares: `politely` is this repository's built package (dist/), as it
// would be from node_modules after `npm install politely`.
import { fileURLToPath } from 'node:url'
import type { UserConfig } from 'vite'

const dist = fileURLToPath(new URL('../dist/', import.meta.url))

export const shared: UserConfig = {
  resolve: {
    alias: [
      { find: /^politely$/, replacement: `${dist}index.mjs` },
      { find: /^politely\/(sse|websocket|reliable|legacy)$/, replacement: `${dist}$1.mjs` },
    ],
  },
  // No request to anything but this machine's dev server.
  server: { host: '127.0.0.1' },
}
