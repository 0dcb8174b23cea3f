import type { IncomingMessage, ServerResponse } from 'node:http'
import type { SignalingServer } from './index.js'

/**
 * Paths of {@link healthRoutes}.
 *
 * @example
 * healthRoutes(signaling, { livePath: '/live', readyPath: '/ready' })
 */
export interface HealthOptions {
  /** Liveness: answers 200 while the process serves requests at all. Default `'/healthz'`. */
  livePath?: string
  /** Readiness: 200 when the server can take clients, 503 while draining or while its hub (Redis) is away. Default `'/readyz'`. */
  readyPath?: string
}

/**
 * A handler of liveness and readiness probes to mount.
 *
 * @example
 * const health: HealthRoutes = healthRoutes(signaling)
 * app.use((req, res, next) => health.handle(req, res) || next())
 */
export interface HealthRoutes {
  /** Answers the two paths (GET or HEAD) with `{"status": …}`; returns `false`, without answering, for any other. */
  handle(request: IncomingMessage, response: ServerResponse): boolean
}

/**
 * `/healthz` (alive: `200 {"status":"ok"}`) and `/readyz` (`200 {"status":"ready"}`, or
 * `503 {"status":"unready"}` while the server drains for a restart or its hub cannot reach
 * Redis), for a load balancer or an orchestrator's probes.
 *
 * @example
 * const signaling = createSignalingServer({ hub })
 * const health = healthRoutes(signaling)
 * http.createServer((req, res) => health.handle(req, res) || signaling.handle(req, res) || notFound(res))
 */
export function healthRoutes(signaling: SignalingServer, options: HealthOptions = {}): HealthRoutes {
  const { livePath = '/healthz', readyPath = '/readyz' } = options
  const answer = (request: IncomingMessage, response: ServerResponse, ok: boolean, status: string) => {
    response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    response.end(request.method === 'HEAD' ? undefined : JSON.stringify({ status }))
  }
  return {
    handle(request, response) {
      const pathname = (request.url ?? '/').split('?')[0]
      if (pathname !== livePath && pathname !== readyPath) return false
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('Use GET\n')
      } else if (pathname === livePath) {
        answer(request, response, true, 'ok')
      } else {
        signaling.ready().then((ready) => answer(request, response, ready, ready ? 'ready' : 'unready'))
      }
      return true
    },
  }
}
