// Open the page in two tabs: they connect over a BroadcastChannel and chat. A render function,
// not a single-file component, so the example needs no compiler plugin.
import { BroadcastChannelSignaler } from 'politely'
import { createApp, defineComponent, h, ref } from 'vue'
import { usePeer } from './usePeer'

const Chat = defineComponent(() => {
  const { state, messages, send } = usePeer({ signaler: new BroadcastChannelSignaler({ room: 'examples-vue' }) })
  const text = ref('')
  const submit = (event: Event) => {
    event.preventDefault()
    send(text.value)
    text.value = ''
  }
  return () =>
    h('main', [
      h('p', ['State: ', h('b', { 'data-testid': 'state' }, state.value)]),
      h('form', { onSubmit: submit }, [
        h('input', {
          value: text.value,
          placeholder: 'Say something',
          onInput: (event: Event) => {
            text.value = (event.target as HTMLInputElement).value
          },
        }),
        h('button', { type: 'submit' }, 'Send'),
      ]),
      h(
        'ul',
        { 'data-testid': 'messages' },
        messages.value.map((message, i) => h('li', { key: `${i}-${message}` }, message)),
      ),
    ])
})

createApp(Chat).mount('#app')
