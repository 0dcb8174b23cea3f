import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports'
import { runs } from './requires'

/** Whether a redis-server binary is on the PATH. */
export function hasRedis(): boolean {
  return runs('redis-server', '--version')
}

/** Redis comes from Debian (.ci/run installs it): for describeRequiring (a developer's run skips, loudly; CI fails). */
export const redisServer = {
  name: 'redis-server',
  present: hasRedis(),
  install: 'sudo apt-get install redis-server',
  override: 'PATH',
  looked: 'redis-server on the PATH',
}

/** Starts a real redis-server of the tests' own (on `port`, to restart one in place; `--port 0` would disable TCP). */
export async function startRedis(port?: number): Promise<{ url: string; port: number; stop(): void }> {
  port ??= await freePort()
  const pidfile = join(tmpdir(), `politely-redis-${port}.pid`)
  execFileSync('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'yes',
    '--pidfile',
    pidfile,
  ])
  // Daemonized: wait for the pid file (it answers within ~20 ms).
  let pid = 0
  for (let i = 0; i < 200 && !pid; i++) {
    try {
      pid = Number(readFileSync(pidfile, 'utf8'))
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => {
      try {
        process.kill(pid)
      } catch {}
    },
  }
}
