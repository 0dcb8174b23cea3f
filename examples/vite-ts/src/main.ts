// Open the page in two tabs: they connect over a BroadcastChannel and chat. With the reference
// server running (`npx politely-server`), `new WebSocketSignaler({ url: 'ws://127.0.0.1:8787/signal', room })`
// from 'politely/websocket' connects two browsers instead.
import { BroadcastChannelSignaler, PerfectNegotiationPeer, type PolitelyError } from 'politely'

const element = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const show = (text: string) => element('messages').append(Object.assign(document.createElement('li'), { textContent: text }))

const peer = new PerfectNegotiationPeer({ signaler: new BroadcastChannelSignaler({ room: 'examples' }) })
peer.on('state', ({ state }) => {
  element('state').textContent = state
})
peer.on('message', ({ data }) => show(`them: ${String(data)}`))
peer.on('error', (error: PolitelyError) => console.warn(error.code, error.message))
element<HTMLFormElement>('form').onsubmit = (event) => {
  event.preventDefault()
  const text = element<HTMLInputElement>('text').value
  void peer.send(text)
  show(`me: ${text}`)
}
await peer.start()
