// Open the page in two tabs: they connect over a BroadcastChannel and chat.
import { BroadcastChannelSignaler } from 'politely'
import { type FormEvent, StrictMode, useState } from 'react'
import { createRoot } from 'react-dom/client'
import { usePeer } from './usePeer'

function Chat() {
  const { state, messages, send } = usePeer(() => ({ signaler: new BroadcastChannelSignaler({ room: 'examples-react' }) }))
  const [text, setText] = useState('')
  const submit = (event: FormEvent) => {
    event.preventDefault()
    send(text)
    setText('')
  }
  return (
    <main>
      <p>
        State: <b data-testid="state">{state}</b>
      </p>
      <form onSubmit={submit}>
        <input value={text} onChange={(event) => setText(event.target.value)} placeholder="Say something" />
        <button type="submit">Send</button>
      </form>
      <ul data-testid="messages">
        {messages.map((message, i) => (
          // biome-ignore lint/suspicious/noArrayIndexKey: the list only grows, so an index always names the same message
          <li key={i}>{message}</li>
        ))}
      </ul>
    </main>
  )
}

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <Chat />
  </StrictMode>,
)
