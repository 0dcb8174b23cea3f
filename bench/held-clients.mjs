// Idle connections held open for bench/server.mjs part 1, in a child process of their own:
// a process may hold only as many sockets as its fd limit, so 20k connections take more
// than one client process. Each connection is what an idle signaling client keeps open.
//
//   forked by bench/server.mjs; IPC: { type: 'open', route, port, first, count } opens peers
//   p<first>…p<first+count-1> (rooms of two: p2k and p2k+1 share room<k>) and answers
//   { type: 'opened', welcomed, failures, firstFailure }. Exiting closes them all at once
//   (the kernel does it); it exits when the parent is gone.
import net from 'node:net'
import WebSocket from 'ws'
import { HOST, PROTOCOLS, pool, tokenOf } from './relay.mjs'

// The listen backlog is finite: 10k connects at once end in SYN retries (1 s each) that time the kernel, not the server.
const CONNECTING = 256
// PeerJS drops a client that sent no HEARTBEAT for alive_timeout (90 s; its own client sends one every 5 s).
const PEERJS_HEARTBEAT_MS = 20_000
const WELCOME_MS = 20_000

process.on('disconnect', () => process.exit(0))

/** A politely SSE subscriber on a raw socket: a few hundred bytes of client state, so one process holds thousands. */
function sseSubscriber(port, room, peer) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, HOST)
    let text = ''
    const fail = (why) => {
      socket.destroy()
      reject(new Error(`SSE ${peer}: ${why}`))
    }
    const timer = setTimeout(() => fail(`no welcome in ${WELCOME_MS / 1000} s`), WELCOME_MS)
    socket.setEncoding('utf8')
    socket.on('error', (error) => fail(error.message))
    socket.on('close', () => fail('closed'))
    socket.write(
      `GET /signal/${room}?peer=${peer}&token=${tokenOf(peer)} HTTP/1.1\r\nHost: ${HOST}\r\nAccept: text/event-stream\r\n\r\n`,
    )
    socket.on('data', function welcome(chunk) {
      text += chunk
      if (!text.startsWith('HTTP/1.1 200') && text.includes('\r\n')) return fail(text.split('\r\n')[0])
      if (!text.includes(`event: welcome\ndata: {"peer":"${peer}"}`)) return
      clearTimeout(timer)
      socket.off('data', welcome)
      socket.on('data', () => {}) // heartbeats
      resolve(socket)
    })
  })
}

/** A ws client that is in once `protocol.ready` holds for a frame (politely's welcome, PeerJS's OPEN). */
function wsSubscriber(protocol, port, room, peer) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(protocol.url(port, room, peer), { perMessageDeflate: false })
    const timer = setTimeout(() => ws.terminate(), WELCOME_MS)
    ws.once('unexpected-response', (_, response) => reject(new Error(`WebSocket ${peer}: HTTP ${response.statusCode}`)))
    ws.on('error', (error) => reject(new Error(`WebSocket ${peer}: ${error.message}`)))
    ws.once('close', () => reject(new Error(`WebSocket ${peer}: closed`)))
    ws.once('message', (data) => {
      clearTimeout(timer)
      if (protocol.ready(JSON.parse(data.toString()))) resolve(ws)
      else reject(new Error(`WebSocket ${peer}: first frame ${data}`))
    })
  })
}

const peerjsSockets = []
setInterval(() => {
  for (const ws of peerjsSockets) ws.send('{"type":"HEARTBEAT"}')
}, PEERJS_HEARTBEAT_MS)

const ROUTES = {
  'politely-ws': (port, room, peer) => wsSubscriber(PROTOCOLS.politely, port, room, peer),
  'politely-sse': sseSubscriber,
  peerjs: async (port, room, peer) => peerjsSockets.push(await wsSubscriber(PROTOCOLS.peerjs, port, room, peer)),
}

async function open({ route, port, first, count }) {
  const failures = []
  const opened = await pool(count, CONNECTING, (k) => {
    const index = first + k
    return ROUTES[route](port, `room${index >> 1}`, `p${index}`).then(
      () => true,
      (error) => void failures.push(error.message),
    )
  })
  return { welcomed: opened.filter(Boolean).length, failures: failures.length, firstFailure: failures[0] }
}

process.on('message', async (message) => {
  if (message.type === 'open') process.send({ type: 'opened', ...(await open(message)) })
})
