import { spawn } from 'node:child_process'
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

/**
 * Starts a real redis-server of the tests' own, as a child in the foreground (on `port`, to restart
 * one in place; `--port 0` would disable TCP). Resolves once it accepts connections; rejects with its
 * output if it exits first (a port taken). Not daemonized: a daemon that failed to start left no pid
 * to stop, and `process.kill(0)` then signalled the whole test run's process group.
 */
export async function startRedis(
  port?: number,
): Promise<{ url: string; port: number; stop(): Promise<void>; freeze(): void; thaw(): void }> {
  port ??= await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await new Promise<void>((resolve, reject) => {
    const collect = (chunk: Buffer) => {
      output += chunk
      if (output.includes('Ready to accept connections')) resolve()
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    child.once('error', reject)
    exited.then(() => reject(new Error(`redis-server on port ${port} exited: ${output}`)))
  })
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    // SIGSTOP: connections stay open and commands wait unanswered (a Redis that hangs), until thaw().
    freeze: () => void child.kill('SIGSTOP'),
    thaw: () => void child.kill('SIGCONT'),
    // Resolves once it has exited (its port free again): idempotent.
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return exited
    },
  }
}
