/**
 * The host side of a TAP for virtio-net tests.
 *
 * A test creates a persistent TAP with iproute2 (`ip tuntap add dev NAME
 * mode tap`, as an operator would for Firecracker), the backend under test
 * attaches to it through /dev/net/tun, and the test plays "the rest of the
 * host" with an AF_PACKET raw socket bound to the same interface:
 *
 *  - a frame the backend writes into its TAP fd enters the host stack as
 *    received on that interface, where the packet socket sees it (recv);
 *  - a frame sent on the packet socket leaves through the interface, i.e.
 *    into the TAP's queue, where the backend reads it (send).
 *
 * Nothing leaves the machine: the interface has no address and IPv6 is
 * disabled on it (so the kernel sends no neighbour discovery of its own).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import {
  AF_PACKET, EAGAIN, ETH_P_ALL, MAP_ANONYMOUS, MAP_PRIVATE, PACKET_VNET_HDR, PROT_READ, PROT_WRITE, SIZEOF_SOCKADDR_LL, SOCK_NONBLOCK, SOCK_RAW, SOL_PACKET,
} from '../../src/generated/libc.js';
import { GuestMemory } from '../../src/memory/guest_memory.js';
import * as libc from '../../src/sys/libc.js';

export const TUN_PATH = '/dev/net/tun';

/** Throws a clear error when this host cannot run TAP tests (tests must fail, not skip). */
export function requireTun(): void {
  if (!fs.existsSync(TUN_PATH)) {
    throw new Error(`${TUN_PATH} is missing: the virtio-net tests need the kernel's TUN/TAP driver (modprobe tun; mknod ${TUN_PATH} c 10 200)`);
  }
  if (process.getuid?.() !== 0) throw new Error('the virtio-net tests create TAP devices and need root (CAP_NET_ADMIN)');
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A fresh, unique interface name (≤ 15 bytes). */
export function uniqueTapName(prefix = 'spk'): string {
  return `${prefix}${Math.random().toString(36).slice(2, 8)}`;
}

/** Creates a persistent TAP, with no IPv6 (so the kernel stays quiet on it), the given MTU, up. */
export function createTap(name: string, mtu = 1500): void {
  ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
  try {
    const v6 = `/proc/sys/net/ipv6/conf/${name}/disable_ipv6`;
    if (fs.existsSync(v6)) fs.writeFileSync(v6, '1');
    ip('link', 'set', 'dev', name, 'mtu', String(mtu), 'up');
  } catch (e) {
    deleteTap(name);
    throw e;
  }
}

export function deleteTap(name: string): void {
  try {
    ip('link', 'del', 'dev', name);
  } catch { /* already gone */ }
}

export function tapExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

/**
 * Waits (synchronously) until the interface's operstate is "up". Attaching
 * an fd turns a TAP's carrier on, but the kernel activates its queueing
 * discipline a moment later (linkwatch, asynchronously); until then frames
 * sent into the TAP are silently dropped. A TAP that was detached for a
 * while (over a second) goes through this on every attach.
 */
export function waitOperUp(name: string, timeoutMs = 3000): void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + timeoutMs;
  for (;;) {
    const state = fs.readFileSync(`/sys/class/net/${name}/operstate`, 'utf8').trim();
    if (state === 'up') break;
    if (Date.now() > end) throw new Error(`TAP ${name} did not come up (operstate ${state})`);
    Atomics.wait(cell, 0, 0, 2);
  }
  Atomics.wait(cell, 0, 0, 2); // operstate is set just before the qdisc is activated
}

export function ifIndex(name: string): number {
  return Number(fs.readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An AF_PACKET raw socket on one interface: the host's view of the TAP's wire. */
export class PacketSocket {
  readonly fd: number;
  private readonly buf = new Uint8Array(70000);

  /** `vnetHdr`: each frame sent is preceded by a 10-byte struct virtio_net_hdr (PACKET_VNET_HDR), e.g. to send partially checksummed frames. */
  constructor(ifname: string, opts: { vnetHdr?: boolean } = {}) {
    const proto = ((ETH_P_ALL & 0xff) << 8) | (ETH_P_ALL >> 8); // htons
    this.fd = libc.socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, proto);
    if (opts.vnetHdr) libc.setsockoptInt(this.fd, SOL_PACKET, PACKET_VNET_HDR, 1);
    const sll = new Uint8Array(SIZEOF_SOCKADDR_LL);
    const dv = new DataView(sll.buffer);
    dv.setUint16(0, AF_PACKET, true);
    dv.setUint16(2, ETH_P_ALL, false); // sll_protocol, network order
    dv.setInt32(4, ifIndex(ifname), true);
    try {
      libc.bindAddr(this.fd, sll, `bind(AF_PACKET, ${ifname})`);
    } catch (e) {
      libc.close(this.fd);
      throw e;
    }
  }

  /** Sends one Ethernet frame out of the interface (into the TAP). */
  send(frame: Uint8Array): void {
    const n = libc.trySend(this.fd, frame, 0);
    if (n !== frame.length) throw new Error(`packet socket send: ${n < 0 ? new libc.SysError('send', -n).message : `${n} of ${frame.length} bytes`}`);
  }

  /** The next frame seen on the interface, or undefined. */
  tryRecv(): Uint8Array | undefined {
    const n = libc.tryRecv(this.fd, this.buf, 0);
    if (n === -EAGAIN) return undefined;
    if (n < 0) throw new libc.SysError('recv', -n);
    return this.buf.slice(0, n);
  }

  /** Frames matching `match`, until `count` of them arrived or `timeoutMs` passed (others are discarded). */
  async recvMatching(match: (f: Uint8Array) => boolean, count: number, timeoutMs = 2000): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    const end = Date.now() + timeoutMs;
    while (out.length < count && Date.now() < end) {
      const f = this.tryRecv();
      if (f === undefined) {
        await sleep(2);
        continue;
      }
      if (match(f)) out.push(f);
    }
    return out;
  }

  /** Discards everything queued. */
  drain(): void {
    while (this.tryRecv() !== undefined) { /* discard */ }
  }

  close(): void {
    libc.close(this.fd);
  }
}

/**
 * Guest memory backed by real host mappings (anonymous mmaps, one per
 * region, so adjacent guest regions are not contiguous on the host), as the
 * VMM's: the backend then takes its native readv/writev path.
 */
export function createHostMappedMemory(layout: Array<{ guestAddr: number; size: number }>): { mem: GuestMemory; free: () => void } {
  const maps = layout.map((r) => ({ ...r, hostAddr: libc.mmap(r.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS) }));
  const mem = new GuestMemory(maps.map((r) => ({ ...r, bytes: new Uint8Array(libc.view(r.hostAddr, r.size)) })));
  return { mem, free: () => maps.forEach((r) => libc.munmap(r.hostAddr, r.size)) };
}
