/** A random peer id: about 19 characters of base 36, 96 bits from the platform's CSPRNG. */
export function randomId(): string {
  return Array.from(crypto.getRandomValues(new Uint32Array(3)), (n) => n.toString(36)).join('')
}
