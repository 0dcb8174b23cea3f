// The politely demo: a chat between two tabs of one browser, signaling over a
// BroadcastChannel. Plain script on purpose: it shows the <script>-tag build.
if (!window.Politely) {
  document.getElementById('timeline').textContent = '/dist/politely.umd.min.js did not load: run `npm run build`, then reload.'
  throw new Error('window.Politely is missing: /dist/politely.umd.min.js did not load')
}
const { PerfectNegotiationPeer, BroadcastChannelSignaler } = window.Politely

const room = new URLSearchParams(location.search).get('room') || 'demo'
const peer = new PerfectNegotiationPeer({ signaler: new BroadcastChannelSignaler({ room }) })
// For the browser tests, and for poking at it from the console.
window.demoPeer = peer

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

show('room', room)
show('self', peer.id)
$('twin').href = location.href

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

peer.on('signal', ({ direction, message }) => {
  if (message.kind === 'candidate') return countCandidate(direction)
  const what = message.kind === 'description' ? message.description.type : message.kind
  note(`${what} ${direction}`, 'signal')
})
peer.on('remote', ({ id, session }) => note(`paired with ${id} (session ${session})`))
peer.on('rebuild', ({ reason }) => note(`rebuild: ${reason}`, 'warn'))
peer.on('open', () => note('open', 'good'))
peer.on('close', ({ reason }) => note(`close: ${reason}`, 'warn'))
peer.on('error', (error) => {
  note(`error: ${error.code}`, 'bad')
  console.warn(error)
})

// --- status --------------------------------------------------------------

peer.on('state', ({ state }) => {
  show('state', state)
  $('state').dataset.state = state
  show('remote', peer.remoteId ?? 'none')
})
peer.on('remote', ({ id }) => show('remote', id))

// --- chat ----------------------------------------------------------------

function say(text, direction) {
  const row = document.createElement('li')
  row.className = `msg ${direction}`
  // textContent, never innerHTML: the other tab's text is not trusted markup.
  row.textContent = text
  append('log', row)
}

peer.on('message', ({ data }) => {
  say(typeof data === 'string' ? data : `[${data.byteLength} bytes]`, 'in')
})

// A form, so Enter sends as well as the button.
$('composer').addEventListener('submit', (event) => {
  event.preventDefault()
  const text = $('text').value
  if (!text) return
  try {
    // Before `open` (or during a reconnect) the peer queues it.
    peer.send(text)
    say(text, 'out')
    $('text').value = ''
  } catch (error) {
    note(`error: ${error.code}`, 'bad')
  }
})

peer.start().catch((error) => note(`error: ${error.code ?? error.message}`, 'bad'))
