import type { PolitelyError } from '../errors.js'
import { parseSignal } from '../protocol.js'
import { type Batch, outline } from './body.js'
import { Refusal } from './http-errors.js'
import { Scanned } from './scan.js'

/**
 * Whether a message's own text may be relayed as it came, before a closer look ({@link asItCame}):
 * within the size limit; no CR or LF (JSON allows them between tokens, and in an SSE stream they
 * would end the `data:` line); no `\u` escape (a key spelled two ways, a character some parser
 * reads otherwise).
 */
function relayable(text: string, maxBytes: number): boolean {
  // indexOf searches natively (memchr for one character): a regular expression here cost as much as the JSON.stringify it saves.
  return text.length <= maxBytes && text.indexOf('\n') < 0 && text.indexOf('\r') < 0 && text.indexOf('\\u') < 0
}

/**
 * How many keys `raw` (a message as parsed) holds, all levels together, if it holds exactly what
 * its validated `copy` holds: no key more (an unknown field, `__proto__`), none less, every value
 * the same; else -1. Keys are counted with `for…in`, which allocates nothing; parsed JSON has no
 * inherited enumerable keys.
 */
function sameKeys(raw: unknown, copy: unknown): number {
  if (typeof copy !== 'object' || copy === null) return raw === copy ? 0 : -1
  if (typeof raw !== 'object' || raw === null) return -1
  let extra = 0
  for (const _ in raw) extra++
  let keys = extra
  for (const key in copy) {
    const inner = sameKeys((raw as Record<string, unknown>)[key], (copy as Record<string, unknown>)[key])
    if (inner < 0) return -1
    keys += inner
    extra--
  }
  return extra === 0 ? keys : -1
}

/**
 * Whether `text`, which parsed to `raw`, may go out as it came instead of its validated `copy`
 * serialized again (`JSON.stringify` per message was a fifth of the server's time under load):
 * {@link relayable}, the same content ({@link sameKeys}), and no key written twice — as many keys
 * in the text as in what it parsed to. JSON.parse keeps the last of duplicate keys; a client whose
 * parser keeps the first would read another `from`, `to` or SDP than the one we validated.
 */
function asItCame(text: string, raw: unknown, copy: unknown, maxBytes: number): boolean {
  if (!relayable(text, maxBytes)) return false
  const keys = sameKeys(raw, copy)
  return keys >= 0 && outline(text, false).keys === keys
}

/**
 * Validates a batch's messages as sent by `peer`, in order. Each message becomes its validated
 * copy (its `to` is where it goes: undefined, everyone), and each `texts` entry what goes out: the
 * message's own text when it says exactly what validation kept (and is within `maxBytes`), else
 * the validated copy serialized. A message `scanBatch` took is already all that. Throws a
 * {@link Refusal}: the first message refused says why.
 */
export function validateBatch({ messages, texts }: Batch, peer: string, maxBytes: number): void {
  for (let i = 0; i < messages.length; i++) {
    const raw = messages[i]
    if (raw instanceof Scanned) {
      if (raw.from !== peer) throw spoofed()
      continue
    }
    let message: ReturnType<typeof parseSignal>
    try {
      message = parseSignal(raw, maxBytes)
    } catch (error) {
      const code = (error as PolitelyError).code === 'signal-too-large' ? 'too-large' : 'invalid-signal'
      throw new Refusal(code, (error as Error).message)
    }
    if (message.from !== peer) throw spoofed()
    // The validator lets optional fields be null (an end-of-candidates `candidate` is); a null
    // `to` would be published to nobody, and the sender told it went out.
    if (message.to === null) throw new Refusal('invalid-signal', '`to` must be a peer id, or absent to reach everyone')
    messages[i] = message
    if (!asItCame(texts[i] as string, raw, message, maxBytes)) texts[i] = JSON.stringify(message)
  }
}

function spoofed(): Refusal {
  return new Refusal('spoofed-sender', '`from` must be your own peer id')
}
