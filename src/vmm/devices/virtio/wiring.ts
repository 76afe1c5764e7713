/**
 * How one virtio-mmio device is wired, as plain cloneable data: where it sits
 * in guest physical memory and on the IOAPIC, its transport's shared state,
 * and the eventfds between the guest (through KVM), the vCPU threads that
 * emulate its registers and the device thread that runs its backend.
 */
import type { RateLimiterConfig } from '../../rate_limiter/index.js';

export type VirtioBackendSpec =
  | {
    kind: 'block';
    /** Backing file, opened by the main thread (fds are process-wide). */
    fd: number;
    sizeBytes: number;
    readOnly: boolean;
    cacheType: 'Unsafe' | 'Writeback';
    /** Firecracker's io_engine: Sync (syscalls on the device thread) or Async (io_uring). */
    ioEngine: 'Sync' | 'Async';
    driveId: string;
    rateLimiter: RateLimiterConfig | null;
  }
  | { kind: 'rng'; rateLimiter: RateLimiterConfig | null }
  | {
    kind: 'net';
    ifaceId: string;
    /** The TAP, opened by the main thread (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, non-blocking). */
    tapFd: number;
    guestMac: string | null;
    /** Offered with VIRTIO_NET_F_MTU when set. */
    mtu: number | null;
    rxRateLimiter: RateLimiterConfig | null;
    txRateLimiter: RateLimiterConfig | null;
  }
  | {
    kind: 'vsock';
    guestCid: number;
    udsPath: string;
    /** The host-side listening socket on udsPath, bound by the main thread (so PUT-time errors surface there). */
    listenFd: number;
  };

export interface VirtioDeviceWiring {
  /** The drive id, or the device's name. */
  id: string;
  /** Guest physical base of its 4 KiB register window. */
  addr: number;
  /** Its IOAPIC pin, which the device thread pulses with KVM_IRQ_LINE. */
  gsi: number;
  transportState: SharedArrayBuffer;
  /** Signalled by a vCPU thread when the driver changed the device status (activate / reset). */
  activateFd: number;
  /** One ioeventfd per queue: KVM signals it when the guest writes the queue's index to QueueNotify. */
  queueFds: number[];
  backend: VirtioBackendSpec;
}
