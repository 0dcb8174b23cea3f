import { closePayload, encodeFrame, type FrameSpec, OPCODE } from './ws-wire'

/**
 * What the fuzz suite feeds the server: realistic signaling (hellos, batches, SDP-sized
 * descriptions), JSON aimed at the server's own validation, valid WebSocket frame streams made of
 * them, and the mutations that break those streams. Everything is drawn from a seeded `random`,
 * so a seed and a case number give the same bytes again.
 */

export type Random = () => number
export const int = (random: Random, n: number) => Math.floor(random() * n)
export const pick = <T>(random: Random, items: readonly T[]) => items[int(random, items.length)] as T

const SDP_LINES = [
  'a=candidate:842163049 1 udp 1677729535 203.0.113.7 49152 typ srflx raddr 0.0.0.0 rport 0 generation 0',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=ssrc:3735928559 cname:Zm9vYmFyYmF6cXV4',
  'a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08',
  'a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'a=ice-ufrag:EsAw',
  'a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y',
  'a=msid:stream-Ω track-ü', // multi-byte UTF-8, for the bit flips to break
]

/** An SDP-like text: mostly a few KB, sometimes tens of KB, rarely over maxMessageBytes (128 KiB). */
export function sdp(random: Random): string {
  const roll = random()
  const size = roll < 0.6 ? 200 + int(random, 3000) : roll < 0.95 ? 8000 + int(random, 32_000) : 120_000 + int(random, 20_000)
  const lines = ['v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1']
  let length = 0
  while (length < size) {
    const line = random() < 0.1 ? `m=audio 9 UDP/TLS/RTP/SAVPF 111 ${int(random, 128)}` : pick(random, SDP_LINES)
    lines.push(line)
    length += line.length + 2
  }
  return `${lines.join('\r\n')}\r\n`
}

/** A realistic signaling message from `peer` (now and then from someone else: a spoofed sender). */
export function signal(random: Random, peer: string): Record<string, unknown> {
  const from = random() < 0.9 ? peer : 'mallory'
  const base = { from, session: 1 + int(random, 4) }
  switch (int(random, 4)) {
    case 0:
      return { kind: 'hello', ...base, ...(random() < 0.5 ? { since: 1_700_000_000_000 + int(random, 1e9) } : {}) }
    case 1:
      return {
        kind: 'description',
        ...base,
        to: 'q',
        toSession: 1,
        description: { type: random() < 0.5 ? 'offer' : 'answer', sdp: sdp(random) },
      }
    case 2:
      return {
        kind: 'candidate',
        ...base,
        to: 'q',
        toSession: 1,
        candidate: { candidate: pick(random, SDP_LINES).slice(2), sdpMid: '0', sdpMLineIndex: 0 },
      }
    default:
      return { kind: 'bye', ...base }
  }
}

/** The text of one frame: a message, a batch (sometimes more than maxBatch), or plain non-ASCII text. */
export function frameText(random: Random, peer: string): string {
  const roll = random()
  if (roll < 0.55) return JSON.stringify(signal(random, peer))
  if (roll < 0.9) {
    const count = random() < 0.9 ? 1 + int(random, 8) : 60 + int(random, 10)
    return JSON.stringify(
      Array.from({ length: count }, () => (random() < 0.8 ? { kind: 'hello', from: peer, session: 1 } : signal(random, peer))),
    )
  }
  if (roll < 0.95) return pick(random, hostileJson(peer))(random)
  return '«Grüße» — ☃ 𝄞 '.repeat(1 + int(random, 40))
}

/** JSON (and near-JSON) aimed at the server's own parsing and validation rather than at ws. */
export function hostileJson(peer: string): Array<(random: Random) => string> {
  const helloOf = (extra: string) => `{"kind":"hello","from":"${peer}","session":1${extra}}`
  return [
    () => `{"__proto__":{"kind":"hello","from":"${peer}","session":1}}`,
    () => helloOf(',"__proto__":{"to":"victim","polluted":true}'),
    () => helloOf(',"constructor":{"prototype":{"polluted":true}}'),
    (random) =>
      `{"kind":"${pick(random, ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'HELLO', ''])}","from":"${peer}","session":1}`,
    (random) =>
      `{"kind":"hello","from":"${peer}","session":${pick(random, ['1e309', '-1', '0', '1.5', '9007199254740993', '"1"', 'null', '[]', '{}', 'true'])}}`,
    () => helloOf(`,"to":"${peer}\\r\\ndata: forged"`),
    () => helloOf(',"to":"a\\u0000b"'),
    () => `{"kind":"hello","from":"\\ud800","session":1}`,
    () =>
      `{"kind":"description","from":"${peer}","to":"q","session":1,"toSession":1,"description":{"type":"offer","sdp":"\\u2028\\u2029\\r\\n\\n\\ndata: forged\\n\\nid: 1\\r"}}`,
    (random) => `${'['.repeat(7 + int(random, 4))}${helloOf('')}${']'.repeat(7 + int(random, 4))}`,
    (random) => '['.repeat(1000 + int(random, 100_000)),
    (random) => `${'{"a":['.repeat(5 + int(random, 20))}1${']}'.repeat(5 + int(random, 20))}`,
    (random) => `"${'\\'.repeat(int(random, 20_000))}[[[[[[[[[[[[["`,
    () => `"\\"${'['.repeat(50)}`,
    (random) =>
      JSON.stringify(
        Array.from({ length: 64 }, (_, i) => ({
          kind: 'hello',
          from: i === 63 && random() < 0.5 ? 'mallory' : peer,
          session: 1,
        })),
      ),
    () => JSON.stringify(Array.from({ length: 65 }, () => ({ kind: 'hello', from: peer, session: 1 }))),
    () => helloOf(Array.from({ length: 5000 }, (_, i) => `,"k${i}":${i}`).join('')),
    (random) => pick(random, ['', '[]', 'null', '0', '"', '{', '}', '\u0000', 'true', '[null]', '[[]]', '{}', '[{}]', ' ']),
  ]
}

export const randomBytes = (random: Random, length: number) => Buffer.from(Array.from({ length }, () => int(random, 256)))

/** A valid client stream of 1 to 4 frames: whole or fragmented texts, binaries, pings, pongs, a close. */
export function validSpecs(random: Random, peer: string): FrameSpec[] {
  const specs: FrameSpec[] = []
  const mask = () => (random() < 0.1 ? Buffer.alloc(4) : randomBytes(random, 4))
  const count = 1 + int(random, 4)
  for (let i = 0; i < count; i++) {
    const roll = random()
    if (roll < 0.55)
      specs.push({
        opcode: OPCODE.text,
        payload: frameText(random, peer),
        mask: mask(),
        lengthForm: random() < 0.05 ? 64 : undefined,
      })
    else if (roll < 0.75) {
      const whole = Buffer.from(frameText(random, peer))
      const parts = 2 + int(random, 3)
      const cuts = [
        0,
        ...Array.from({ length: parts - 1 }, () => int(random, whole.length + 1)).sort((x, y) => x - y),
        whole.length,
      ]
      for (let p = 0; p < parts; p++) {
        specs.push({
          opcode: p === 0 ? OPCODE.text : OPCODE.continuation,
          fin: p === parts - 1,
          payload: whole.subarray(cuts[p], cuts[p + 1]),
          mask: mask(),
        })
        if (random() < 0.2) specs.push({ opcode: OPCODE.ping, payload: randomBytes(random, int(random, 20)), mask: mask() })
      }
    } else if (roll < 0.82) specs.push({ opcode: OPCODE.binary, payload: randomBytes(random, int(random, 300)), mask: mask() })
    else if (roll < 0.9) specs.push({ opcode: OPCODE.ping, payload: randomBytes(random, int(random, 126)), mask: mask() })
    else if (roll < 0.95) specs.push({ opcode: OPCODE.pong, payload: randomBytes(random, int(random, 30)), mask: mask() })
    else specs.push({ opcode: OPCODE.close, payload: closePayload(pick(random, [1000, 1001, 3000, 4000]), 'bye'), mask: mask() })
  }
  return specs
}

/** The server's default maxPayload (maxBodyBytes): 512 KiB. */
export const LIMIT = 512 * 1024

/** Lengths that sit on a boundary of some parser: the 7/16/64-bit forms, the limit, 2^31, 2^32, 2^53, 2^63. */
const EDGE_LENGTHS = [
  0n,
  1n,
  125n,
  126n,
  127n,
  65535n,
  65536n,
  BigInt(LIMIT),
  BigInt(LIMIT + 1),
  2n ** 31n,
  2n ** 32n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 63n,
  2n ** 64n - 1n,
]

/** Mutations of one frame's header, before encoding. */
export const SPEC_MUTATIONS: Record<string, (random: Random, spec: FrameSpec) => void> = {
  opcode: (random, spec) => {
    spec.opcode = int(random, 16)
  },
  rsv: (random, spec) => {
    spec.rsv = 1 + int(random, 7)
  },
  fin: (_random, spec) => {
    spec.fin = !(spec.fin ?? true)
  },
  unmasked: (_random, spec) => {
    spec.masked = false
  },
  length: (random, spec) => {
    const size = typeof spec.payload === 'string' ? Buffer.byteLength(spec.payload) : (spec.payload?.length ?? 0)
    spec.length = random() < 0.5 ? pick(random, EDGE_LENGTHS) : BigInt(Math.max(0, size + int(random, 41) - 20))
    if (random() < 0.3) spec.lengthForm = pick(random, [7, 16, 64] as const)
  },
}

/** Mutations of the encoded stream; `other` is a second valid stream to splice from. */
export const BYTE_MUTATIONS: Record<string, (random: Random, stream: Buffer, other: Buffer) => Buffer> = {
  'flip bits': (random, stream) => {
    const out = Buffer.from(stream)
    const flips = 1 + int(random, 8)
    // Mostly near the start, where the headers are.
    for (let i = 0; i < flips && out.length; i++) {
      const at = random() < 0.6 ? int(random, Math.min(out.length, 16)) : int(random, out.length)
      out[at] = (out[at] as number) ^ (1 << int(random, 8))
    }
    return out
  },
  truncate: (random, stream) => stream.subarray(0, int(random, stream.length)),
  duplicate: (random, stream) => {
    const start = int(random, stream.length)
    const end = start + int(random, stream.length - start + 1)
    return Buffer.concat([stream.subarray(0, end), stream.subarray(start, end), stream.subarray(end)])
  },
  splice: (random, stream, other) =>
    Buffer.concat([stream.subarray(0, int(random, stream.length + 1)), other.subarray(int(random, other.length + 1))]),
  'insert bytes': (random, stream) => {
    const at = int(random, stream.length + 1)
    return Buffer.concat([stream.subarray(0, at), randomBytes(random, 1 + int(random, 16)), stream.subarray(at)])
  },
  'overwrite bytes': (random, stream) => {
    const out = Buffer.from(stream)
    for (let i = 0, n = 1 + int(random, 6); i < n && out.length; i++) out[int(random, out.length)] = int(random, 256)
    return out
  },
}

/**
 * A valid stream of frames from `peer`, broken: header fields changed before encoding (half the
 * time), then the bytes mangled. Returns the bytes and the names of the mutations, in order.
 */
export function mutatedStream(random: Random, peer: string): { stream: Buffer; applied: string[] } {
  const specs = validSpecs(random, peer)
  const applied: string[] = []
  const specNames = Object.keys(SPEC_MUTATIONS)
  for (let i = 0, n = random() < 0.5 ? int(random, 3) : 0; i < n; i++) {
    const name = pick(random, specNames)
    SPEC_MUTATIONS[name]?.(random, pick(random, specs))
    applied.push(name)
  }
  let stream: Buffer = Buffer.concat(specs.map(encodeFrame))
  const other = Buffer.concat(validSpecs(random, peer).map(encodeFrame))
  for (let i = 0, n = applied.length ? int(random, 2) : 1 + int(random, 3); i < n; i++) {
    const name = pick(random, Object.keys(BYTE_MUTATIONS))
    stream = (BYTE_MUTATIONS[name] as (typeof BYTE_MUTATIONS)[string])(random, stream, other)
    applied.push(name)
  }
  return { stream, applied }
}

/** Pieces a mutated HTTP request gets: what request parsers trip on. */
export const HTTP_NASTY = [
  '\r',
  '\n',
  '\u0000',
  '\r\n',
  '\r\n\r\n',
  ' ',
  ':',
  '%',
  '%00',
  '%ff',
  '\u00ff',
  '\t',
  'Transfer-Encoding: chunked\r\n',
  'Content-Length: 7\r\n',
  'Upgrade: websocket\r\nConnection: Upgrade\r\n',
  'A'.repeat(20_000),
]
