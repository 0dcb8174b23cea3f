import { WebSocket } from 'ws'

/**
 * Opens a WebSocket and reports how the server answered: `welcome` when it was
 * admitted, else the close code and reason of a refused upgrade (the server
 * accepts and closes at once with 4000 + HTTP status, the refusal code as reason).
 */
export function wsAnswer(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ welcome: boolean; code?: number; reason?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), { headers })
    ws.on('message', (data) => {
      if (JSON.parse(String(data)).type !== 'welcome') return
      resolve({ welcome: true })
      ws.close()
    })
    ws.on('error', () => {})
    ws.on('close', (code, reason) => resolve({ welcome: false, code, reason: String(reason) }))
  })
}
