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

/** One client connection through {@link redisProxy}, and what passed on it. */
export interface ProxiedConnection {
  /** Whether the client sent SUBSCRIBE on it (a hub's subscriber connection). */
  readonly subscriber: boolean
  /** What the client sent, as RESP text (a command's name is a bulk string of its own: `$6\r\nxrange\r\n`). */
  readonly sent: string
  /** What Redis sent that reached the client, as RESP text. */
  readonly received: string
  /** Chunks held now (replies, and commands held by holdCommand()). */
  readonly held: number
  /** Holds back what Redis sends on it, as on a slow link, until release(). */
  holdReplies(): void
  /** Lets through what it held (replies, and a command held by holdCommand()); returns how many chunks. */
  release(): number
  /** Cuts it, as a network drop would: what it held is lost. */
  drop(): void
}

/**
 * A TCP proxy in front of a Redis whose connections a test can slow down one by one: hold what
 * Redis sends on one (a slow link), hold a command on its way to Redis, or cut one. For the races
 * between a hub's two connections (commands, and pub/sub) that a healthy local Redis never shows.
 */
export async function redisProxy(redisPort: number): Promise<{
  url: string
  /** Every connection made through it, oldest first. */
  connections: ProxiedConnection[]
  /** From now on (until called with none), a command matching `pattern` waits on its way to Redis (with what its connection sends after it) until that connection's release(). */
  holdCommand(pattern?: RegExp): void
  close(): void
}> {
  const connections: ProxiedConnection[] = []
  const sockets = new Set<Socket>()
  let heldCommand: RegExp | undefined
  const server = createServer((client) => {
    const upstream = connect(redisPort, '127.0.0.1')
    sockets.add(client).add(upstream)
    const replies: Buffer[] = []
    const commands: Buffer[] = []
    let holding = false
    const connection = {
      subscriber: false,
      sent: '',
      received: '',
      get held() {
        return replies.length + commands.length
      },
      holdReplies: () => {
        holding = true
      },
      release: () => {
        holding = false
        const chunks = replies.length + commands.length
        for (const chunk of commands.splice(0)) upstream.write(chunk)
        for (const chunk of replies.splice(0)) pass(chunk)
        return chunks
      },
      drop: () => {
        client.destroy()
        upstream.destroy()
      },
    }
    const pass = (chunk: Buffer) => {
      connection.received += chunk.toString('latin1')
      client.write(chunk)
    }
    connections.push(connection)
    client.on('data', (chunk) => {
      const text = chunk.toString('latin1')
      connection.sent += text
      if (/\r\nsubscribe\r\n/i.test(text)) connection.subscriber = true
      if (commands.length || heldCommand?.test(text)) commands.push(chunk)
      else upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      if (holding) replies.push(chunk)
      else pass(chunk)
    })
    client.on('close', connection.drop).on('error', connection.drop)
    upstream.on('close', connection.drop).on('error', connection.drop)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `redis://127.0.0.1:${port}`,
    connections,
    holdCommand: (pattern) => {
      heldCommand = pattern
    },
    close: () => {
      server.close()
      for (const socket of sockets) socket.destroy()
    },
  }
}
