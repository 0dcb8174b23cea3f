import { createServer } from 'node:net'

/**
 * Where {@link freePort} looks: above the tests' coturn slots (test/support/coturn.ts, 19100–25999)
 * and below Linux's ephemeral range (32768+). A port from the ephemeral range is free only until
 * the kernel hands it to some outgoing connection, and one did: a redis-server of the scale-out
 * recipe found "its" port taken between the check and its own bind. Here only a program told the
 * port binds it.
 */
const FIRST = 26000
const LAST = 32767

/** Ports handed out by this process: never twice. */
const handedOut = new Set<number>()

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A free TCP port on 127.0.0.1, for a program that needs its port given (redis-server, nginx). */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = FIRST + Math.floor(Math.random() * (LAST - FIRST + 1))
    if (handedOut.has(port) || !(await bindable(port))) continue
    handedOut.add(port)
    return port
  }
  throw new Error(`No free port in ${FIRST}–${LAST}`)
}
