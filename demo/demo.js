// The politely demo: a chat between two peers over WebRTC. `?transport=` picks
// the signaling: `broadcast` (default: tabs of one browser, no server), `sse` or
// `websocket` (the reference server, `npm run demo`: any browser that reaches it).
// `?mode=room` makes it a room: every page linked to every other (a full mesh).
// `?mode=call` (two pages) and `?mode=room-call` (a room) add a video call: call.js.
// Plain script on purpose: it shows the <script>-tag builds.
if (!window.Politely) {
  document.getElementById('timeline').textContent = '/dist/politely.umd.min.js did not load: run `npm run build`, then reload.'
  throw new Error('window.Politely is missing: /dist/politely.umd.min.js did not load')
}
const { PerfectNegotiationPeer, BroadcastChannelSignaler } = window.Politely

/** Where the reference server answers; relative, so the page works on whatever host and port serves it. */
const SIGNAL_URL = '/signal'

const TRANSPORTS = {
  broadcast: {
    how: 'Open this page in a second tab of the same browser',
    via: ['through a ', 'BroadcastChannel', ' (no server)'],
    make: (room) => new BroadcastChannelSignaler({ room }),
  },
  sse: {
    how: 'Open this page in another tab or browser that reaches this server',
    via: ['through the server: ', 'Server-Sent Events', ' down, ', 'POST', ' up'],
    adapter: 'SseSignaler',
    make: (room) => new window.Politely.SseSignaler({ url: SIGNAL_URL, room }),
  },
  websocket: {
    how: 'Open this page in another tab or browser that reaches this server',
    via: ['through the server over one ', 'WebSocket'],
    adapter: 'WebSocketSignaler',
    make: (room) => new window.Politely.WebSocketSignaler({ url: SIGNAL_URL, room }),
  },
}

const params = new URLSearchParams(location.search)
const room = params.get('room') || 'demo'
const asked = params.get('transport') || 'broadcast'
const transportName = Object.hasOwn(TRANSPORTS, asked) ? asked : 'broadcast'
const transport = TRANSPORTS[transportName]
if (transport.adapter && !window.Politely[transport.adapter]) {
  const file = `/dist/politely-${transportName}.umd.min.js`
  document.getElementById('timeline').textContent = `${file} did not load: run \`npm run build\`, then reload.`
  throw new Error(`window.Politely.${transport.adapter} is missing: ${file} did not load`)
}

const MODES = ['chat', 'room', 'call', 'room-call']
const mode = MODES.includes(params.get('mode')) ? params.get('mode') : 'chat'
const inRoom = mode === 'room' || mode === 'room-call'
/** A video call (call.js): the media comes before `start()`, so the first offer already carries it. */
const inCall = mode === 'call' || mode === 'room-call'
if (inRoom && !window.Politely.Room) {
  document.getElementById('timeline').textContent =
    '/dist/politely-room.umd.min.js did not load: run `npm run build`, then reload.'
  throw new Error('window.Politely.Room is missing: /dist/politely-room.umd.min.js did not load')
}
// A room and a peer share the calls this page makes (on, send, start, id); a room's events name the member.
const peer = inRoom
  ? new window.Politely.Room({ signaler: transport.make(room) })
  : new PerfectNegotiationPeer({ signaler: transport.make(room) })
// For the browser tests, and for poking at it from the console.
if (inRoom) window.demoRoom = peer
else window.demoPeer = peer

const $ = (id) => document.getElementById(id)
const show = (id, text) => {
  $(id).textContent = text
}

/** Appends to a scrolling list and keeps the newest row in view (the list scrolls, not the page). */
function append(id, row) {
  const list = $(id)
  list.append(row)
  list.scrollTop = list.scrollHeight
}

/** This page's URL with other query parameters: the room and transport travel in the link. */
function linkTo(changes) {
  const url = new URL(location.href)
  if (mode !== 'chat') url.searchParams.set('mode', mode)
  for (const [key, value] of Object.entries(changes)) url.searchParams.set(key, value)
  return url.href
}

show('transport', transportName)
show('room', room)
show('self', peer.id)
show('how', transport.how)
// Alternating plain text and <code>, built from constants with textContent.
$('via').replaceChildren(
  ...transport.via.map((text, index) => {
    if (index % 2 === 0) return text
    const code = document.createElement('code')
    code.textContent = text
    return code
  }),
)
$('twin').href = linkTo({ room, transport: transportName })
$('others').replaceChildren(
  ...Object.keys(TRANSPORTS)
    .filter((name) => name !== transportName)
    .flatMap((name, index) => {
      const link = document.createElement('a')
      link.href = linkTo({ room, transport: name })
      link.target = '_blank'
      link.dataset.transport = name
      link.textContent = name
      return index ? [', ', link] : [link]
    }),
)
$('transports').hidden = false

// --- timeline ------------------------------------------------------------

const started = performance.now()
let candidates // the open "candidates" row, counted in place rather than one row each

function note(text, kind = '') {
  const row = document.createElement('li')
  if (kind) row.className = kind
  const time = document.createElement('time')
  time.textContent = `+${Math.round(performance.now() - started)} ms`
  const label = document.createElement('span')
  label.textContent = text
  row.append(time, label)
  append('timeline', row)
  candidates = undefined
  return row
}

function countCandidate(direction) {
  candidates ??= { row: note('', 'signal'), in: 0, out: 0 }
  candidates[direction]++
  candidates.row.lastChild.textContent = `candidates: ${candidates.out} out, ${candidates.in} in`
}

/** In a room, which link a timeline row is about. */
const link = (id) => (inRoom && id ? `${id}: ` : '')

peer.on('signal', ({ direction, message }) => {
  if (message.kind === 'candidate') return countCandidate(direction)
  // A room member's presence (session 0) every few seconds would drown the timeline.
  if (inRoom && message.kind === 'hello' && !message.session) return
  const what = message.kind === 'description' ? message.description.type : message.kind
  const other = direction === 'in' ? message.from : message.to
  note(`${link(other)}${what} ${direction}`, 'signal')
})
peer.on('remote', ({ id, session }) => note(`paired with ${id} (session ${session})`))
peer.on('rebuild', ({ reason, from }) => note(`${link(from)}rebuild: ${reason}`, 'warn'))
peer.on('open', () => note('open', 'good'))
peer.on('close', ({ reason }) => note(`close: ${reason}`, 'warn'))
peer.on('peer-join', ({ id }) => note(`${id} joined`, 'good'))
peer.on('peer-leave', ({ id, reason }) => note(`${id} left: ${reason}`, 'warn'))
// Remote media (call.js shows it): the kind and, in a room, the member.
peer.on('track', ({ track, from }) => note(`${link(from)}track: ${track.kind}`, 'good'))
peer.on('track-removed', ({ track, from }) => note(`${link(from)}track removed: ${track.kind}`, 'warn'))
peer.on('track-ended', ({ track, from }) => note(`${link(from)}track ended: ${track.kind}`, 'warn'))
peer.on('error', (error) => {
  note(`error: ${error.code}`, 'bad')
  console.warn(error)
})

// --- status --------------------------------------------------------------

/** A room's members and their links' states, in the place of the peer's one remote. */
function showMembers() {
  const members = peer.peers
  const linked = members.filter((member) => member.state === 'connected').length
  show('state', `${linked} of ${members.length} linked`)
  $('state').dataset.state = linked && linked === members.length ? 'connected' : 'connecting'
  $('members').replaceChildren(
    ...members.map(({ id, state }) => {
      const row = document.createElement('li')
      row.textContent = `${id}: ${state}`
      row.dataset.state = state
      return row
    }),
  )
}

if (inRoom) {
  $('remote-label').textContent = 'members'
  show('remote', '')
  $('remote').append($('members'))
  $('members').hidden = false
  showMembers()
  peer.on('state', showMembers)
  peer.on('peer-leave', showMembers)
} else {
  peer.on('state', ({ state }) => {
    show('state', state)
    $('state').dataset.state = state
    show('remote', peer.remoteId ?? 'none')
  })
  peer.on('remote', ({ id }) => show('remote', id))
}

// --- chat ----------------------------------------------------------------

function say(text, direction) {
  const row = document.createElement('li')
  row.className = `msg ${direction}`
  // textContent, never innerHTML: the other tab's text is not trusted markup.
  row.textContent = text
  append('log', row)
}

peer.on('message', ({ data, from }) => {
  say(`${link(from)}${typeof data === 'string' ? data : `[${data.byteLength} bytes]`}`, 'in')
})

// A form, so Enter sends as well as the button.
$('composer').addEventListener('submit', (event) => {
  event.preventDefault()
  const text = $('text').value
  if (!text) return
  try {
    // Before `open` (or during a reconnect) the peer queues it; a room sends to every member linked now.
    peer.send(text)
    say(text, 'out')
    $('text').value = ''
  } catch (error) {
    note(`error: ${error.code}`, 'bad')
  }
})

if (asked !== transportName) note(`unknown transport "${asked.slice(0, 32)}": using ${transportName}`, 'warn')

const start = () => peer.start().catch((error) => note(`error: ${error.code ?? error.message}`, 'bad'))
// In a call, call.js starts the peer once the camera and microphone are added (or refused).
if (!inCall) start()
