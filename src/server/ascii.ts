/**
 * Writes `text` into `buffer` at `at` byte by byte, while it is ASCII: peer ids and event ids
 * are, and for a string of a few bytes a Buffer#write (a call into C++) costs more than the loop.
 * Returns the bytes written, or -1 at the first character that is not ASCII (the caller writes
 * the text another way; what was written so far is overwritten or unused).
 */
export function writeAscii(buffer: Buffer, text: string, at: number): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code > 0x7f) return -1
    buffer[at + i] = code
  }
  return text.length
}
