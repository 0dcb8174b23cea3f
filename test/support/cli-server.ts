import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

const cli = join(new URL('../..', import.meta.url).pathname, 'dist/cli.mjs')

/** politely-server (the built CLI) as a child process: "the server survived" then means the process is alive. */
export interface CliServer {
  child: ChildProcess
  port: number
  /** `http://127.0.0.1:<port>/signal` */
  url: string
  /** Whether the process still runs: not exited, and signal 0 reaches its pid. */
  alive(): boolean
  /** Settles when the process exits. */
  exited: Promise<void>
  /** How it ended and what it wrote to stderr (a crash's stack trace), for failure messages. */
  report(): string
  /** Everything it wrote to stdout so far. */
  output(): string
  stop(): Promise<void>
}

/**
 * Starts `dist/cli.mjs --port 0 --host 127.0.0.1 ...args` (with `env` added to the environment);
 * resolves once it prints where it listens, rejects with its output if it exits first.
 */
export function startCli(args: string[] = [], env: Record<string, string> = {}): Promise<CliServer> {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`)
  const child = spawn(process.execPath, [cli, '--port', '0', '--host', '127.0.0.1', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let out = ''
  let err = ''
  child.stdout?.on('data', (chunk) => {
    out += chunk
  })
  child.stderr?.on('data', (chunk) => {
    err += chunk
  })
  const alive = () => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return false
    try {
      process.kill(child.pid, 0)
      return true
    } catch {
      return false
    }
  }
  const report = () =>
    `politely-server (pid ${child.pid}) ${alive() ? 'is alive' : `exited (code ${child.exitCode}, signal ${child.signalCode})`}\n` +
    `--- stderr ---\n${err || '(empty)'}\n--- stdout ---\n${out}`
  return new Promise((resolve, reject) => {
    const onExit = () => reject(new Error(`politely-server did not start:\n${report()}`))
    child.once('exit', onExit)
    const onOut = () => {
      const port = /signaling: http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)?.[1]
      if (!port) return
      child.off('exit', onExit)
      child.stdout?.off('data', onOut)
      resolve({
        child,
        port: Number(port),
        url: `http://127.0.0.1:${port}/signal`,
        alive,
        exited,
        report,
        output: () => out,
        async stop() {
          if (!alive()) return
          child.kill('SIGTERM')
          // It closes gracefully on SIGTERM; a server stuck in its own shutdown is killed.
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
          await exited
          clearTimeout(timer)
        },
      })
    }
    child.stdout?.on('data', onOut)
  })
}
