/**
 * The VM's virtio-mmio devices, main-thread side: allocates each device's
 * MMIO window and GSI (Firecracker's layout), creates its transport and
 * ioeventfds, starts the device thread (which raises the GSI itself with
 * KVM_IRQ_LINE), and forwards runtime updates
 * (PATCH /drives) to it.
 */
import fs from 'node:fs';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { O_RDONLY, O_RDWR } from '../../../generated/libc.js';
import { VIRTIO_MMIO } from '../../../generated/virtio.js';
import type { VmFd } from '../../../kvm/vm_fd.js';
import * as libc from '../../../sys/libc.js';
import { IRQ_MAX, VIRTIO_IRQ_BASE, VIRTIO_MMIO_SIZE, VIRTIO_MMIO_START } from '../../arch/x86_64/layout.js';
import { newEventFd, signalEventFd } from '../../event_manager.js';
import type { GuestMemoryLayout } from '../../vstate/memory.js';
import type { RateLimiterConfig, TokenBucketConfig } from '../../rate_limiter/index.js';
import { createBackend } from './backends.js';
import { listenUnix } from './vsock/muxer.js';
import { Tap } from './net/tap.js';
import type { DeviceThreadData, DeviceThreadMessage, DeviceThreadRequest } from './device_thread.js';
import { MmioTransport } from './mmio/transport.js';
import type { VirtioBackendSpec, VirtioDeviceWiring } from './wiring.js';
import { startWorker } from '../../worker_url.js';

export interface BlockDeviceConfig {
  driveId: string;
  path: string;
  readOnly: boolean;
  cacheType: 'Unsafe' | 'Writeback';
  ioEngine: 'Sync' | 'Async';
  rateLimiter: RateLimiterConfig | null;
}

export interface NetDeviceConfig {
  ifaceId: string;
  hostDevName: string;
  guestMac: string | null;
  mtu: number | null;
  rxRateLimiter: RateLimiterConfig | null;
  txRateLimiter: RateLimiterConfig | null;
}

export interface DeviceLog {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}


function openDisk(path: string, readOnly: boolean): { fd: number; sizeBytes: number } {
  const fd = libc.open(path, readOnly ? O_RDONLY : O_RDWR);
  const st = fs.fstatSync(fd);
  if (!st.isFile() && !st.isBlockDevice()) {
    libc.close(fd);
    throw new Error(`${path} is not a regular file or block device`);
  }
  return { fd, sizeBytes: st.size };
}

export class VirtioDeviceManager {
  readonly wirings: VirtioDeviceWiring[] = [];
  private readonly fds: number[] = [];
  /** Socket paths this VM created, removed at close. */
  private readonly paths: string[] = [];
  private thread: Worker | undefined;
  private control: { fd: number; port: MessagePort } | undefined;
  private stopped: Promise<void> | undefined;
  /** Latest counters reported by the device thread, per device id. */
  readonly metrics = new Map<string, Record<string, number>>();

  constructor(private readonly vm: VmFd, private readonly log: DeviceLog) {}

  private add(id: string, backend: VirtioBackendSpec): void {
    const n = this.wirings.length;
    const gsi = VIRTIO_IRQ_BASE + n;
    if (gsi > IRQ_MAX) throw new Error(`too many virtio devices: no GSI left for ${id}`);
    const addr = VIRTIO_MMIO_START + n * VIRTIO_MMIO_SIZE;
    const proto = createBackend(backend);
    const transport = new MmioTransport({
      deviceId: proto.deviceType,
      deviceFeatures: proto.availFeatures,
      queueMaxSizes: [...proto.queueMaxSizes],
      configSize: proto.configSpace().byteLength,
    });
    transport.setConfig(proto.configSpace());
    const activateFd = newEventFd();
    const queueFds = proto.queueMaxSizes.map((_: number, q: number) => {
      const fd = newEventFd();
      // Guest writes of queue index q to QueueNotify signal fd inside KVM: no VM exit reaches userspace.
      this.vm.registerIoevent(fd, { kind: 'mmio', addr: addr + VIRTIO_MMIO.QUEUE_NOTIFY }, 4, BigInt(q));
      return fd;
    });
    this.fds.push(activateFd, ...queueFds);
    this.wirings.push({ id, addr, gsi, transportState: transport.sharedState, activateFd, queueFds, backend });
  }

  addBlock(cfg: BlockDeviceConfig): void {
    const { fd, sizeBytes } = openDisk(cfg.path, cfg.readOnly);
    this.fds.push(fd);
    this.add(cfg.driveId, { kind: 'block', fd, sizeBytes, readOnly: cfg.readOnly, cacheType: cfg.cacheType, ioEngine: cfg.ioEngine, driveId: cfg.driveId, rateLimiter: cfg.rateLimiter });
  }

  addEntropy(rateLimiter: RateLimiterConfig | null): void {
    this.add('rng', { kind: 'rng', rateLimiter });
  }

  /** virtio-net on the host TAP `hostDevName` (which must exist, as in Firecracker). */
  addNet(cfg: NetDeviceConfig): void {
    let tap: Tap;
    try {
      tap = Tap.open(cfg.hostDevName);
    } catch (e) {
      throw new Error(`cannot open the TAP for ${cfg.ifaceId}: ${(e as Error).message}`);
    }
    this.fds.push(tap.fd);
    this.add(cfg.ifaceId, { kind: 'net', ifaceId: cfg.ifaceId, tapFd: tap.fd, guestMac: cfg.guestMac, mtu: cfg.mtu, rxRateLimiter: cfg.rxRateLimiter, txRateLimiter: cfg.txRateLimiter });
  }

  /** PATCH /network-interfaces/{id}: new rx/tx rate limiters, applied live. */
  updateNetRateLimiters(id: string, rx: RateLimiterConfig | null, tx: RateLimiterConfig | null): void {
    if (!this.wirings.some((w) => w.id === id && w.backend.kind === 'net')) throw new Error(`no network interface with id ${id}`);
    this.send({ type: 'update-net-rate-limiters', id, rx, tx });
  }

  /** virtio-vsock with Firecracker's host side: host processes connect to udsPath; guest connections go to `<udsPath>_<port>`. */
  addVsock(guestCid: number, udsPath: string): void {
    let listenFd: number;
    try {
      listenFd = listenUnix(udsPath);
    } catch (e) {
      throw new Error(`cannot listen on the vsock socket ${udsPath}: ${(e as Error).message}`);
    }
    this.fds.push(listenFd);
    this.paths.push(udsPath);
    this.add('vsock', { kind: 'vsock', guestCid, udsPath, listenFd });
  }

  /** The devices' windows and GSIs, for the ACPI DSDT. */
  acpiDevices(): Array<{ addr: number; size: number; gsi: number }> {
    return this.wirings.map((w) => ({ addr: w.addr, size: VIRTIO_MMIO_SIZE, gsi: w.gsi }));
  }

  start(memory: GuestMemoryLayout): void {
    if (!this.wirings.length || this.thread) return;
    const { port1, port2 } = new MessageChannel();
    const controlFd = newEventFd();
    this.fds.push(controlFd);
    const data: DeviceThreadData = { memory, vmFd: this.vm.fd, devices: this.wirings, controlFd, port: port2 };
    const thread = startWorker('devices/virtio/device_thread', { workerData: data, transferList: [port2], name: 'fc_devices' });
    this.thread = thread;
    this.control = { fd: controlFd, port: port1 };
    thread.on('message', (m: DeviceThreadMessage) => {
      if (m.type === 'log') this.log[m.level](m.msg);
      else if (m.type === 'metrics') this.metrics.set(m.id, m.values);
    });
    this.stopped = new Promise((resolve) => {
      thread.on('error', (e) => this.log.error(`device thread failed: ${e.message}`));
      thread.on('exit', () => resolve());
    });
  }

  private send(req: DeviceThreadRequest): void {
    if (!this.control) return;
    this.control.port.postMessage(req);
    signalEventFd(this.control.fd);
  }

  /** PATCH /drives/{id} path_on_host: swap the backing file and tell the guest the new capacity. */
  updateBlockPath(driveId: string, path: string): void {
    const w = this.wirings.find((d) => d.id === driveId && d.backend.kind === 'block');
    if (!w || w.backend.kind !== 'block') throw new Error(`no drive with id ${driveId}`);
    const { fd, sizeBytes } = openDisk(path, w.backend.readOnly);
    this.fds.push(fd);
    this.send({ type: 'update-block', id: driveId, fd, sizeBytes });
  }

  /** PATCH of a device's rate limiter (drives, entropy), applied live on the device thread. */
  updateRateLimiter(id: string, bandwidth: TokenBucketConfig | null, ops: TokenBucketConfig | null): void {
    if (!this.wirings.some((w) => w.id === id)) throw new Error(`no device with id ${id}`);
    this.send({ type: 'update-rate-limiter', id, bandwidth, ops });
  }

  async stop(): Promise<void> {
    if (!this.thread) return;
    this.send({ type: 'stop' });
    await this.stopped;
    this.thread = undefined;
  }

  close(): void {
    for (const fd of this.fds) {
      try {
        libc.close(fd);
      } catch {
        // already closed
      }
    }
    this.fds.length = 0;
    for (const p of this.paths) fs.rmSync(p, { force: true });
    this.paths.length = 0;
  }
}
