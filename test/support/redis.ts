import { spawn } from 'node:child_process'
import { type AddressInfo, connect, createServer, type Socket } from 'node:net'
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

/**
 * A TCP proxy in front of a Redis that can hold back what Redis sends to the subscriber connection
 * of a client (the one that sent SUBSCRIBE): its pub/sub messages wait, as on a slow link, while its
 * commands on the other connection go on. For an event that reaches one process after a peer resumed
 * past it on another.
 */
export async function subscriberDelay(
  redisPort: number,
): Promise<{ url: string; hold(): void; release(): number; close(): void }> {
  let held = false
  const flushes = new Set<() => number>()
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(redisPort, '127.0.0.1')
    sockets.add(client).add(upstream)
    let subscriber = false
    const waiting: Buffer[] = []
    const flush = () => {
      const chunks = waiting.splice(0)
      for (const chunk of chunks) client.write(chunk)
      return chunks.length
    }
    flushes.add(flush)
    client.on('data', (chunk) => {
      // A RESP command's name is a bulk string of its own: `$9\r\nsubscribe\r\n`.
      if (/\r\nsubscribe\r\n/i.test(chunk.toString('latin1'))) subscriber = true
      upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      if (subscriber && held) waiting.push(chunk)
      else client.write(chunk)
    })
    const end = () => {
      flushes.delete(flush)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', end).on('error', end)
    upstream.on('close', end).on('error', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `redis://127.0.0.1:${port}`,
    hold: () => {
      held = true
    },
    /** Lets it through; returns how many chunks had been held. */
    release: () => {
      held = false
      let chunks = 0
      for (const flush of flushes) chunks += flush()
      return chunks
    },
    close: () => {
      server.close()
      for (const socket of sockets) socket.destroy()
    },
  }
}
