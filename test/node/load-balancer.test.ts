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

/** `politely-server --redis URL --trust-proxy` (on a free port by default); resolves with the process and its port once it listens. */
function startProcess(redisUrl: string, port = 0): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [cli, '--port', String(port), '--redis', redisUrl, '--trust-proxy'], {
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

    test.each(ADAPTERS)(
      '$name: a rolling restart by SIGTERM loses no signaling message and no open WebRTC connection notices',
      async (adapter) => {
        const stack = await wrtcStack()
        const room = uniqueRoom()
        // Default timeouts: the point is that nothing needs patience.
        const a = makePeer(stack, room, { signaler: adapter.make(url, room) })
        const b = makePeer(stack, room, { signaler: adapter.make(url, room) })
        // Two bare signalers of the same room: one sends a numbered message every 40 ms (within
        // the server's 50 a second) all through the restarts, the other writes down what arrives.
        const sender = adapter.make(url, room)
        const receiver = adapter.make(url, room)
        const arrived: number[] = []
        const noticed: string[] = []
        const senderErrors: Error[] = []
        let ticker: ReturnType<typeof setInterval> | undefined
        let pump: ReturnType<typeof setInterval> | undefined
        try {
          await Promise.all([a.start(), b.start()])
          await Promise.all([opened(a), opened(b)])
          for (const [name, peer] of [
            ['a', a],
            ['b', b],
          ] as const) {
            for (const event of ['rebuild', 'reconnecting', 'close'] as const)
              peer.on(event, () => noticed.push(`${name} ${event}`))
            peer.on('state', ({ state }) => noticed.push(`${name} state ${state}`))
          }
          receiver.subscribe((raw) => {
            const message = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { from?: string; toSession?: number }
            if (message.from === 'numbered') arrived.push(message.toSession as number)
          })
          await receiver.connect('counted', { error: (error) => senderErrors.push(error), reset: () => {} })
          await sender.connect('numbered', { error: (error) => senderErrors.push(error), reset: () => {} })
          let sent = 0
          ticker = setInterval(() => {
            sent++
            sender.send({ kind: 'candidate', from: 'numbered', session: 1, to: 'counted', toSession: sent, candidate: null })
          }, 40)
          // Data over the open channel all through: ordered, reliable, so none may be missing.
          const data: number[] = []
          b.on('message', ({ data: text }) => data.push(Number(text)))
          let count = 0
          pump = setInterval(() => a.send(String(++count)), 20)

          const started = Date.now()
          const drains: number[] = []
          for (const [i, old] of processes.entries()) {
            const signalled = Date.now()
            old.child.kill('SIGTERM')
            await new Promise((resolve) => old.child.once('exit', resolve))
            drains.push(Date.now() - signalled)
            expect(old.child.exitCode).toBe(0)
            processes[i] = await startProcess(redis.url, old.port)
          }
          const restarts = Date.now() - started
          clearInterval(pump)
          clearInterval(ticker)
          ticker = undefined
          await until(
            () => arrived.length >= sent && data.length >= count,
            () =>
              `every numbered message (${arrived.length} of ${sent}; missing ${[...Array(sent).keys()].filter((i) => !arrived.includes(i + 1)).slice(0, 10)}) ` +
              `and every datum (${data.length} of ${count}); noticed: ${noticed}; errors: ${[...a.errors, ...b.errors, ...senderErrors]}`,
          )
          const duplicates = arrived.length - new Set(arrived).size
          console.log(
            `[${adapter.name}] 3 SIGTERM restarts in ${restarts} ms (SIGTERM → exit ${drains.join(', ')} ms): ` +
              `${sent} signaling messages (${duplicates} duplicates), ${count} data`,
          )
          expect([...new Set(arrived)]).toEqual([...Array(sent).keys()].map((i) => i + 1))
          expect(duplicates).toBe(0)
          expect(data).toEqual([...Array(count).keys()].map((i) => i + 1))
          expect(noticed).toEqual([])
          expect([...a.errors, ...b.errors, ...senderErrors]).toEqual([])
        } finally {
          // Also when the test failed early: no interval goes on writing to the closed peers.
          clearInterval(pump)
          clearInterval(ticker)
          sender.close()
          receiver.close()
          a.close()
          b.close()
        }
      },
    )
  })
})
