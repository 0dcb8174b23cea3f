import { execFileSync } from 'node:child_process'
import { describe, test } from 'vitest'

/** Whether `command args…` runs and exits 0: a program from the system is there. */
export function runs(command: string, ...args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const warned = new Set<string>()

/**
 * `describe` for suites that need a program from the system (a browser,
 * redis-server). Without it, CI fails loudly (a green run that tested
 * nothing would lie); a developer's machine skips the suite with a banner
 * saying how to install it.
 */
export function describeRequiring(
  program: { name: string; present: boolean; install: string; override: string; looked: string },
  name: string,
  fn: () => void,
): void {
  if (program.present) {
    describe(name, fn)
    return
  }
  if (process.env.CI === 'true') {
    describe(name, () => {
      test(`${program.name} is installed`, () => {
        throw new Error(`${program.name} not found; CI needs it: ${program.install} (looked for ${program.looked})`)
      })
    })
    return
  }
  if (!warned.has(program.name)) {
    warned.add(program.name)
    const line = '!'.repeat(72)
    console.warn(
      [
        line,
        `!! ${program.name} not found: the suites that need it were SKIPPED.`,
        `!! Install it to run them:  ${program.install}`,
        `!! (or set ${program.override})`,
        line,
      ].join('\n'),
    )
  }
  describe.skip(name, fn)
}
