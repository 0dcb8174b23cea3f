// Gathered: what the relay's turn corks and acknowledgements are built on. Each item once per
// round, in the order it came, and an item added while a round is handed over goes to the next.
import { describe, expect, test } from 'vitest'
import { Gathered } from '../../src/server/gathered'

interface Item {
  name: string
  due: boolean
}
const item = (name: string): Item => ({ name, due: false })

describe('Gathered', () => {
  test('gathers each item once per round, in the order they came, and unmarks them as it hands them over', () => {
    const gathered = new Gathered<'due', Item>('due')
    const [a, b, c] = [item('a'), item('b'), item('c')]
    const added = [b, a, b, c, a].map((each) => gathered.add(each))
    expect(added).toEqual([true, true, false, true, false])
    expect(gathered.size).toBe(3)
    expect([a.due, b.due, c.due]).toEqual([true, true, true])
    const handed: string[] = []
    gathered.take((each) => handed.push(`${each.name}:${each.due}`))
    expect(handed).toEqual(['b:false', 'a:false', 'c:false'])
    expect(gathered.size).toBe(0)
    // A new round starts empty and takes the same items again.
    gathered.add(c)
    const next: string[] = []
    gathered.take((each) => next.push(each.name))
    expect(next).toEqual(['c'])
  })

  test('an item added while a round is handed over (itself or another) is in the next round, once', () => {
    const gathered = new Gathered<'due', Item>('due')
    const [a, b, c] = [item('a'), item('b'), item('c')]
    gathered.add(a)
    gathered.add(b)
    const first: string[] = []
    gathered.take((each) => {
      first.push(each.name)
      // As an uncork's write holds its socket again: a, already handed over, and c, new.
      gathered.add(a)
      gathered.add(c)
    })
    expect(first).toEqual(['a', 'b'])
    expect(gathered.size).toBe(2)
    const second: string[] = []
    gathered.take((each) => second.push(each.name))
    expect(second).toEqual(['a', 'c'])
    expect(gathered.size).toBe(0)
  })

  test('rounds of different sizes, one after the other, lose and repeat nothing', () => {
    const gathered = new Gathered<'due', Item>('due')
    const items = Array.from({ length: 50 }, (_, k) => item(`i${k}`))
    for (const size of [50, 3, 0, 17, 50, 1]) {
      for (let k = 0; k < size; k++) gathered.add(items[(k * 7) % 50] as Item)
      const handed: string[] = []
      gathered.take((each) => handed.push(each.name))
      const expected = [...new Set(Array.from({ length: size }, (_, k) => `i${(k * 7) % 50}`))]
      expect(handed).toEqual(expected)
      expect(items.every((each) => !each.due)).toBe(true)
    }
  })

  test('clear forgets the round and unmarks its items', () => {
    const gathered = new Gathered<'due', Item>('due')
    const a = item('a')
    gathered.add(a)
    gathered.clear()
    expect(a.due).toBe(false)
    expect(gathered.size).toBe(0)
    const handed: Item[] = []
    gathered.take((each) => handed.push(each))
    expect(handed).toEqual([])
    expect(gathered.add(a)).toBe(true)
  })
})
