// The worked example of docs/scale-out.md, run as written: three politely-server
// processes (the CLI) on one Redis behind nginx with docs/scale-out/nginx.conf,
// plain round robin, no sticky sessions.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { freePort } from '../support/ports'
import { redisServer, startRedis } from '../support/redis'
import { describeRequiring, runs } from '../support/requires'
import { ADAPTERS } from '../support/server'
import { makePeer, opened, roundTrip, uniqueRoom, wrtcStack } from '../support/stacks'
import { until } from '../support/until'

const root = new URL('../..', import.meta.url).pathname
const cli = join(root, 'dist/cli.mjs')

const nginx = {
  name: 'nginx',
  present: runs('nginx', '-v'),
  install: 'sudo apt-get install nginx-light',
  override: 'PATH',
  looked: 'nginx on the PATH',
}

/** `politely-server --redis URL` (on a free port by default); resolves with the process and its port once it listens. */
function startProcess(redisUrl: string, port = 0): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [cli, '--port', String(port), '--redis', redisUrl], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (chunk) => {
      out += chunk
      const port = /signaling: http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)?.[1]
      if (port) resolve({ child, port: Number(port) })
    })
    child.once('exit', (code) => reject(new Error(`politely-server exited with ${code}: ${out}`)))
  })
}

describeRequiring(redisServer, 'the scale-out example (docs/scale-out.md)', () => {
  describeRequiring(nginx, 'three processes on one Redis behind nginx, round robin', () => {
    let redis: Awaited<ReturnType<typeof startRedis>>
    const processes: Array<{ child: ChildProcess; port: number }> = []
    let balancer: ChildProcess | undefined
    let prefix = ''
    let url = ''
    let log = ''

    beforeAll(async () => {
      redis = await startRedis()
      for (let i = 0; i < 3; i++) processes.push(await startProcess(redis.url))
      // The documented config, with the ports of this run.
      const port = await freePort()
      let config = readFileSync(join(root, 'docs/scale-out/nginx.conf'), 'utf8').replace('127.0.0.1:8080', `127.0.0.1:${port}`)
      processes.forEach(({ port: backend }, i) => {
        config = config.replace(`127.0.0.1:${8787 + i} `, `127.0.0.1:${backend} `)
      })
      prefix = mkdtempSync(join(tmpdir(), 'politely-nginx-'))
      writeFileSync(join(prefix, 'nginx.conf'), config)
      // Its log (a refused upstream once a process is killed) is expected: kept for a failure message only.
      balancer = spawn('nginx', ['-e', 'stderr', '-p', prefix, '-c', 'nginx.conf'], { stdio: ['ignore', 'ignore', 'pipe'] })
      balancer.stderr?.on('data', (chunk) => {
        log += chunk
      })
      url = `http://127.0.0.1:${port}/signal`
      // nginx has no ready signal in the foreground: wait until it answers (a room without a peer id: 400).
      for (let tries = 0; (await fetch(`${url}/x`).catch(() => undefined))?.status !== 400; tries++) {
        if (tries > 200 || balancer.exitCode !== null)
          throw new Error(`nginx did not start with docs/scale-out/nginx.conf: ${log}`)
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
    })
    afterAll(async () => {
      if (balancer?.exitCode === null) await new Promise((resolve) => balancer?.once('exit', resolve).kill())
      for (const { child } of processes) child.kill()
      await redis?.stop()
      if (prefix) rmSync(prefix, { recursive: true, force: true })
    })

    test('requests are spread over the three processes', async () => {
      const upstreams = new Set<string>()
      for (let i = 0; i < 6; i++) upstreams.add((await fetch(`${url}/x`)).headers.get('x-upstream') as string)
      expect([...upstreams].sort()).toEqual(processes.map(({ port }) => `127.0.0.1:${port}`).sort())
    })

    test.each(ADAPTERS)(
      '$name: peers connect through the balancer and carry on through a rolling restart of every process',
      async (adapter) => {
        const stack = await wrtcStack()
        const room = uniqueRoom()
        // Signaling may be away for a moment during the restarts: the renegotiation must wait for
        // it (queued, resent) rather than be rebuilt by the stall watchdog.
        const patient = { stallTimeout: 30_000 }
        const a = makePeer(stack, room, { ...patient, signaler: adapter.make(url, room) })
        const b = makePeer(stack, room, { ...patient, signaler: adapter.make(url, room) })
        try {
          await Promise.all([a.start(), b.start()])
          await Promise.all([opened(a), opened(b)])
          await roundTrip(a, b, 'through nginx')
          // A deploy: each process in turn is killed and a new one takes its port. Every
          // connection the peers held drops at some point; the adapters come back through
          // nginx to whichever process answers and resume from Redis.
          for (const [i, old] of processes.entries()) {
            old.child.kill('SIGKILL')
            await new Promise((resolve) => old.child.once('exit', resolve))
            processes[i] = await startProcess(redis.url, old.port)
          }
          await roundTrip(b, a, 'data still flows')
          const [pa, pb] = [a, b]
          pa.connection?.addTransceiver('audio')
          await until(
            () => [pa, pb].every((p) => p.connection?.signalingState === 'stable' && p.connection.getTransceivers().length === 1),
            'a renegotiation through the new processes',
          )
          await roundTrip(a, b, 'renegotiated')
          expect([...a.errors, ...b.errors]).toEqual([])
        } finally {
          a.close()
          b.close()
        }
      },
    )
  })
})
