import { describe, expect, test } from 'vitest'
import { depthOf, parseBatch } from '../../src/server/body'

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

describe('depthOf (the nesting check before JSON.parse)', () => {
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
    expect(depthOf(text)).toBe(depth)
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
      expect(depthOf(text), text).toBe(depthByCharacter(text))
    }
  })

  test('a batch nested past 8 levels is refused; brackets inside its strings do not count', () => {
    const message = (extra: string) => `{"kind":"hello","from":"a","session":1,"x":${extra}}`
    expect(() => parseBatch(`[${message('[[[[[[[[1]]]]]]]]')}]`, 10)).toThrow('nested deeper than 8')
    const quoted = message(`"${'['.repeat(50)}\\"${'{'.repeat(50)}"`)
    expect(parseBatch(`[${quoted},${quoted}]`, 10).messages).toHaveLength(2)
  })
})
