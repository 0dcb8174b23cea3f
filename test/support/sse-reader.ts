/** A raw SSE reader: events as { id?, event?, data } records. */
export async function readEvents(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController()
  const response = await fetch(url, { signal: controller.signal, headers })
  const events: Array<{ id?: string; event?: string; data?: string; retry?: string }> = []
  let buffer = ''
  const raw = { text: '' }
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read()
        if (done) return
        const chunk = decoder.decode(value)
        raw.text += chunk
        buffer += chunk
        let end = buffer.indexOf('\n\n')
        while (end >= 0) {
          const record: Record<string, string> = {}
          for (const line of buffer.slice(0, end).split('\n')) {
            const colon = line.indexOf(':')
            if (colon > 0) record[line.slice(0, colon)] = line.slice(colon + 1).trimStart()
          }
          if (record.data !== undefined) events.push(record)
          buffer = buffer.slice(end + 2)
          end = buffer.indexOf('\n\n')
        }
      }
    } catch {}
  })()
  return { response, events, raw, close: () => controller.abort() }
}
