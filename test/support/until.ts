/**
 * Waits for a condition by polling. Not a retry: the condition is what the
 * test asserts, and running out of time fails the test with `what`. The
 * condition may be async (a read from a browser page); `what` may be a function, to say
 * how far things got when it ran out.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string | (() => string),
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${typeof what === 'string' ? what : what()}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
