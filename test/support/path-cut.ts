import { execFileSync } from 'node:child_process'
import type { Signaler } from '../../src/index'

/**
 * Cuts the peer-to-peer path of one peer while its signaling stays up: an
 * nftables table that drops UDP to and from a port range reserved for that
 * peer's ICE sockets (libwebrtc's non-standard `portRange`). The range is
 * below Linux's ephemeral ports (32768–60999), so no other socket of the
 * machine (another test, the STUN server) can be caught by it.
 */
export class PathCut {
  readonly table: string
  constructor(
    readonly min: number,
    readonly max: number,
  ) {
    this.table = `politely_cut_${process.pid}_${min}`
  }

  /** The RTCConfiguration that keeps a wrtc peer's ICE sockets inside the range. */
  get rtcConfig(): RTCConfiguration {
    return { portRange: { min: this.min, max: this.max } } as RTCConfiguration
  }

  cut(): void {
    const ports = `${this.min}-${this.max}`
    const chain = (hook: string) =>
      `chain ${hook} {\n type filter hook ${hook} priority 0; policy accept;\n udp sport ${ports} drop\n udp dport ${ports} drop\n }`
    execFileSync('nft', ['-f', '-'], { input: `table inet ${this.table} {\n${chain('input')}\n${chain('output')}\n}\n` })
  }

  restore(): void {
    try {
      execFileSync('nft', ['delete', 'table', 'inet', this.table], { stdio: 'ignore' })
    } catch {
      // Not cut.
    }
  }
}

/** Whether this process may add nftables rules (root, nft installed, netfilter available). */
export function canCutPaths(): boolean {
  try {
    const probe = `politely_probe_${process.pid}`
    execFileSync('nft', ['add', 'table', 'inet', probe], { stdio: 'ignore' })
    execFileSync('nft', ['delete', 'table', 'inet', probe], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * A signaler that never sends TCP candidates: with them libwebrtc would move the
 * connection to ICE-TCP when UDP is cut (its active TCP side connects from ports
 * outside the cut range), and the cut would not be a cut.
 */
export function udpOnly(inner: Signaler): Signaler {
  return {
    connect: (id, events) => inner.connect(id, events),
    subscribe: (handler) => inner.subscribe(handler),
    close: () => inner.close(),
    send: (message) => {
      if (message.kind === 'candidate' && / tcp /i.test(message.candidate?.candidate ?? '')) return
      inner.send(message)
    },
  }
}
