import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'

/** Where nft looks up a `socket cgroupv2` path: relative to this directory. */
const NFT_CGROUP_ROOT = '/sys/fs/cgroup'

/** The cgroup v2 mount, if it is where nft can name its groups (under /sys/fs/cgroup). */
function cgroup2Mount(): string | undefined {
  try {
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n')
    const mount = mounts.map((line) => line.split(' ')).find((fields) => fields[2] === 'cgroup2')?.[1]
    return mount === NFT_CGROUP_ROOT || mount?.startsWith(`${NFT_CGROUP_ROOT}/`) ? mount : undefined
  } catch {
    return undefined
  }
}

/**
 * Cuts the peer-to-peer path of one whole browser while its signaling stays up: the browser
 * runs in a cgroup (v2) of its own, and an nftables table drops the UDP of that cgroup's
 * sockets, both ways. A browser has no setting for the ports of its ICE sockets (path-cut.ts
 * reserves a port range for a Node peer; Chromium's only equivalent is the enterprise policy
 * `WebRtcUdpPortRange`, a file under /etc for every Chromium of the machine), so its sockets
 * are found by the processes that own them instead: every process of the browser is in the
 * group (the launcher joins it before it starts the browser), no other process is. Signaling
 * (TCP to the server) is untouched.
 */
export class BrowserPathCut {
  readonly name: string
  /** Give this to the browser launcher as its executable: it joins the group, then runs `browser`. */
  readonly executable: string
  readonly #group: string
  readonly #table: string
  #cut = false

  constructor(browser: string) {
    const mount = cgroup2Mount()
    if (!mount) throw new Error('no cgroup v2 mount under /sys/fs/cgroup')
    this.name = `politely_browser_cut_${process.pid}`
    this.#group = join(mount, this.name)
    this.#table = this.name
    mkdirSync(this.#group, { recursive: true })
    this.executable = join(tmpdir(), `${this.name}.sh`)
    // exec keeps the pid, so the launcher's process (which it stops at the end) is the browser's.
    writeFileSync(this.executable, `#!/bin/sh\necho $$ > ${join(this.#group, 'cgroup.procs')}\nexec ${browser} "$@"\n`)
    chmodSync(this.executable, 0o755)
  }

  /** nft's name of the group: its path from /sys/fs/cgroup, and its depth in the cgroup v2 tree. */
  get #selector(): string {
    const mount = cgroup2Mount() as string
    return `socket cgroupv2 level ${relative(mount, this.#group).split('/').length} "${relative(NFT_CGROUP_ROOT, this.#group)}"`
  }

  /** Drops the group's UDP both ways (outgoing by the sending socket, incoming by the receiving one). */
  cut(): void {
    const chain = (hook: string) =>
      `chain ${hook} {\n type filter hook ${hook} priority 0; policy accept;\n ${this.#selector} meta l4proto udp drop\n }`
    execFileSync('nft', ['-f', '-'], { input: `table inet ${this.#table} {\n${chain('input')}\n${chain('output')}\n}\n` })
    this.#cut = true
  }

  restore(): void {
    if (!this.#cut) return
    execFileSync('nft', ['delete', 'table', 'inet', this.#table], { stdio: 'ignore' })
    this.#cut = false
  }

  /** Restores, and removes the group (once the browser has exited: a group with processes cannot go) and the launcher. */
  dispose(): void {
    this.restore()
    rmSync(this.executable, { force: true })
    if (existsSync(this.#group)) rmdirSync(this.#group)
  }
}

/**
 * Whether this process may cut a browser's path: root, nft with `socket cgroupv2`, a writable
 * cgroup v2 mount under /sys/fs/cgroup. Probed with a group and a table of its own, both removed.
 */
export function canCutBrowserPaths(): boolean {
  const mount = cgroup2Mount()
  if (!mount) return false
  const probe = `politely_probe_${process.pid}`
  const group = join(mount, probe)
  try {
    mkdirSync(group)
    execFileSync('nft', ['-f', '-'], {
      input: `table inet ${probe} {\n chain output {\n type filter hook output priority 0; policy accept;\n socket cgroupv2 level 1 "${relative(NFT_CGROUP_ROOT, group)}" meta l4proto udp drop\n }\n}\n`,
      stdio: ['pipe', 'ignore', 'ignore'],
    })
    execFileSync('nft', ['delete', 'table', 'inet', probe], { stdio: 'ignore' })
    return true
  } catch {
    return false
  } finally {
    if (existsSync(group)) rmdirSync(group)
  }
}
