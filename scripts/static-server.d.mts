/** Types of static-server.mjs, for the TypeScript tests that import it. */
export function startStaticServer(options: {
  root: string
  host?: string
  port?: number
  routes?: Record<string, string>
}): Promise<{ url: string; port: number; close(): Promise<void> }>
