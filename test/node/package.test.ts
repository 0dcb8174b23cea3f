// What `npm publish` would ship: the built files, the licence, the changelog and the README —
// and nothing from the checkout (sources, tests, benches, demo, lockfile).
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { expect, test } from 'vitest'

test('the package ships dist, LICENSE, CHANGELOG.md and README.md, and nothing else', () => {
  const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' }))
  const paths: string[] = pack.files.map((file: { path: string }) => file.path)
  for (const name of ['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json', 'dist/index.mjs', 'dist/index.cjs'])
    expect(paths).toContain(name)
  expect(paths.filter((path) => !/^(dist\/|LICENSE$|CHANGELOG\.md$|README\.md$|package\.json$)/.test(path))).toEqual([])
})

test('the CHANGELOG is versioned: its newest section is the package version', () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8'))
  const newest = /^## (\S+)/m.exec(readFileSync('CHANGELOG.md', 'utf8'))?.[1]
  expect(newest).toBe(version)
})
