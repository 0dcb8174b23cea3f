import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, test } from 'vitest'
import { outline, parseBatch } from '../../src/server/body'

/** The reference: every character in turn, a backslash skipping the next one inside strings. */
function depthByCharacter(text: string): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') inString = false
    } else if (c === '"') inString = true
    else if (c === '{' || c === '[') deepest = Math.max(deepest, ++depth)
    else if (c === '}' || c === ']') depth--
  }
  return deepest
}

describe('outline (the nesting check before JSON.parse, and where a batch is cut)', () => {
  test.each([
    ['{}', 1],
    ['[[1],[2,[3]]]', 3],
    ['"[[[["', 0],
    ['["\\"[[[[", []]', 2],
    ['["\\\\", [[]]]', 3],
    ['["\\\\\\"[[", [[]]]', 3],
    ['"unterminated [[[', 0],
    [`[${'"\\\\"'.repeat(3)},[[]]]`, 3],
  ])('%s → %i', (text, depth) => {
    expect(outline(text).deepest).toBe(depth)
    expect(depthByCharacter(text)).toBe(depth)
  })

  test('agrees with a character-by-character scan on 5000 random texts of quotes, backslashes and brackets', () => {
    const alphabet = ['"', '\\', '[', ']', '{', '}', 'a', ',', ':']
    let random = 7
    const next = () => {
      random = (random * 1103515245 + 12345) % 2 ** 31
      return random / 2 ** 31
    }
    for (let n = 0; n < 5000; n++) {
      let text = ''
      const length = Math.floor(next() * 60)
      for (let i = 0; i < length; i++) text += alphabet[Math.floor(next() * alphabet.length)]
      expect(outline(text).deepest, text).toBe(depthByCharacter(text))
    }
  })

  test("a batch's texts are its messages' own: 2000 random arrays of strings full of quotes, backslashes, commas and brackets", () => {
    let random = 11
    const next = () => {
      random = (random * 1103515245 + 12345) % 2 ** 31
      return random / 2 ** 31
    }
    const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)] as T
    const piece = () => pick(['"', '\\', ',', '[', ']', '{', '}', ':', 'a', 'é', '😀', '\n', ' '])
    const string = () => Array.from({ length: Math.floor(next() * 12) }, piece).join('')
    const value = (depth: number): unknown => {
      const kind = Math.floor(next() * (depth > 3 ? 3 : 5))
      if (kind === 0) return string()
      if (kind === 1) return Math.floor(next() * 1000) - 500
      if (kind === 2) return pick([true, false, null])
      if (kind === 3) return Array.from({ length: Math.floor(next() * 3) }, () => value(depth + 1))
      return Object.fromEntries(Array.from({ length: Math.floor(next() * 3) }, () => [string(), value(depth + 1)]))
    }
    const spaced = (text: string) => text.replace(/([,:[\]{}])/g, (token) => (next() < 0.3 ? ` ${token}\t` : token))
    for (let n = 0; n < 2000; n++) {
      const messages = Array.from({ length: 1 + Math.floor(next() * 4) }, () => ({ kind: string(), x: value(0) }))
      // Spaces and tabs between tokens (and, harmlessly, inside strings): JSON.parse must still agree.
      let text = JSON.stringify(messages)
      if (n % 2) {
        const candidate = spaced(text)
        try {
          if (JSON.stringify(JSON.parse(candidate)) === JSON.stringify(messages)) text = candidate
        } catch {}
      }
      const batch = parseBatch(text, 64)
      expect(
        batch.texts.map((each) => JSON.parse(each)),
        text,
      ).toEqual(batch.messages)
    }
  })

  test('a batch nested past 8 levels is refused; brackets inside its strings do not count', () => {
    const message = (extra: string) => `{"kind":"hello","from":"a","session":1,"x":${extra}}`
    expect(() => parseBatch(`[${message('[[[[[[[[1]]]]]]]]')}]`, 10)).toThrow('nested deeper than 8')
    const quoted = message(`"${'['.repeat(50)}\\"${'{'.repeat(50)}"`)
    expect(parseBatch(`[${quoted},${quoted}]`, 10).messages).toHaveLength(2)
  })
})

describe('parseBatch: what a relayed text keeps alive', () => {
  // A full collection before each reading of the heap (the flag can be set at run time).
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const heap = () => {
    gc()
    gc()
    return process.memoryUsage().heapUsed
  }
  const hello = (k: number) => `{"kind":"hello","from":"p${k}","session":1}`

  // A relayed text lives on in slow readers' send queues, counted at its own size. Cut out of its
  // frame and kept as a view, 4 KB padded with 500 KB of spaces held the 500 KB (a hostile test).
  test.each([
    ['one message', (k: number) => `${hello(k)}${' '.repeat(500_000)}`],
    ['a batch', (k: number) => `[${hello(k)},${' '.repeat(500_000)}${hello(k + 1)}]`],
  ])('texts cut out of %s padded with 500 KB do not keep the padding alive', (_, frame) => {
    const before = heap()
    const kept = Array.from({ length: 20 }, (_, k) => parseBatch(frame(k), 64).texts)
    // 20 × 500 KB while they were views of their frames.
    expect(heap() - before).toBeLessThan(2 * 2 ** 20)
    expect(kept[3]?.[0]).toBe(hello(3))
  })
})
