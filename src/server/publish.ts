import type { IncomingMessage, ServerResponse } from 'node:http'
import { parseBatch } from './body.js'
import { Refusal } from './http-errors.js'
import type { ResolvedServerOptions } from './options.js'
import type { Relay } from './relay.js'
import { scanBatch } from './scan.js'
import { bearer, peerKey } from './target.js'

/** Reads a request body up to `limit` bytes; a larger one is refused with 413 without reading it all. */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers['content-length'])
    if (declared > limit) {
      reject(new Refusal('too-large', `The body exceeds ${limit} bytes`))
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    request.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        reject(new Refusal('too-large', `The body exceeds ${limit} bytes`))
        request.removeAllListeners('data')
        request.resume()
        return
      }
      chunks.push(chunk)
    })
    request.on('end', () => resolve(Buffer.concat(chunks)))
    request.on('error', reject)
  })
}

/**
 * POST: publishes one message or an array of them (in order) as the peer
 * that holds the bearer token. Answers 202 with the event ids.
 */
export async function servePublish(
  request: IncomingMessage,
  response: ServerResponse,
  room: string,
  relay: Relay,
  options: ResolvedServerOptions,
  headers: Record<string, string>,
): Promise<void> {
  const token = bearer(request)
  if (!token) throw new Refusal('unauthorized', 'Send `Authorization: Bearer <token>`, the token your subscription used')
  const body = await readBody(request, options.maxBodyBytes)
  const batch =
    scanBatch(body, undefined, options.maxBatch, options.maxMessageBytes) ?? parseBatch(body.toString(), options.maxBatch)
  const from = (batch.messages[0] as { from?: unknown } | null)?.from
  if (typeof from !== 'string') throw new Refusal('invalid-signal', 'Each message needs `from`, your peer id')
  // Awaited only when the hub answers later (Redis): in memory, a POST waits for nothing but its
  // body. (The relay hands on a hub's promise-likes as Promises.)
  const verified = relay.verify(room, from, token)
  if (!(verified instanceof Promise ? await verified : verified)) {
    throw new Refusal('spoofed-sender', 'The token does not hold the `from` peer id in this room (subscribe first)')
  }
  const published = relay.publish(room, from, batch, peerKey(room, from))
  const ids = published instanceof Promise ? await published : published
  const answer = JSON.stringify({ ids })
  // Sized, so the answer is one plain body rather than chunks and a last empty one.
  response
    .writeHead(202, {
      ...headers,
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(answer)),
      'cache-control': 'no-store',
    })
    .end(answer)
}
