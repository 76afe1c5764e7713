/**
 * The device thread: runs every virtio backend of the VM in one epoll loop
 * (Firecracker's VMM event loop). Guest notifications arrive as ioeventfds
 * signalled inside KVM, interrupts leave as KVM_IRQ_LINE edges, and data moves
 * between guest RAM and files with syscalls on guest addresses, so neither
 * the vCPU threads nor the main thread are on the I/O path.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING } from '../../../generated/virtio.js';
import { EPOLLET, EPOLLIN } from '../../../generated/libc.js';
import { Queue, QueueError } from '../../../virtio/queue/index.js';
import { IrqLine } from '../../../kvm/irq_line.js';
import { drainEventFd, EventManager } from '../../event_manager.js';
import { attachGuestMemory, type GuestMemoryLayout } from '../../vstate/memory.js';
import { createBackend } from './backends.js';
import type { VirtioBackend } from './backend.js';
import { MmioTransport } from './mmio/transport.js';
import type { VirtioDeviceWiring } from './wiring.js';
import type { RateLimiterConfig, TokenBucketConfig } from '../../rate_limiter/index.js';

export interface DeviceThreadData {
  memory: GuestMemoryLayout;
  /** The VM's fd: interrupts are raised with KVM_IRQ_LINE (see IrqLine). */
  vmFd: number;
  devices: VirtioDeviceWiring[];
  /** Signalled by the main thread when `port` has a message (the thread is blocked in epoll, not in its event loop). */
  controlFd: number;
  port: MessagePort;
}

/** Messages from the main thread. */
export type DeviceThreadRequest =
  | { type: 'stop' }
  | { type: 'update-block'; id: string; fd: number; sizeBytes: number }
  | { type: 'update-rate-limiter'; id: string; bandwidth: TokenBucketConfig | null; ops: TokenBucketConfig | null }
  | { type: 'update-net-rate-limiters'; id: string; rx: RateLimiterConfig | null; tx: RateLimiterConfig | null };

/** Messages to the main thread. */
export type DeviceThreadMessage =
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string }
  | { type: 'metrics'; id: string; values: Record<string, number> }
  | { type: 'stopped' };

const data = workerData as DeviceThreadData;
const mem = attachGuestMemory(data.memory);
const events = new EventManager();
const post = (m: DeviceThreadMessage): void => parentPort!.postMessage(m);

class DeviceRunner {
  readonly transport: MmioTransport;
  readonly backend: VirtioBackend;
  private active = false;

  constructor(readonly w: VirtioDeviceWiring) {
    this.transport = MmioTransport.fromShared(w.transportState);
    this.irq = new IrqLine(data.vmFd, w.gsi);
    this.backend = createBackend(w.backend);
    events.add(w.activateFd, () => {
      drainEventFd(w.activateFd);
      this.onStatusChange();
    });
    // Queue notifications edge-triggered, never read: each kick (KVM's eventfd_signal) wakes
    // epoll again whatever the counter holds, so the read(2) per kick a level-triggered
    // eventfd needs is saved (the 64-bit counter cannot fill up at one increment per kick).
    w.queueFds.forEach((fd, i) => events.add(fd, () => this.process(i), EPOLLIN | EPOLLET));
  }

  /** Backend fds go into the thread's epoll loop; a throwing handler puts the device in NEEDS_RESET instead of killing the thread. */
  private readonly backendEvents = {
    add: (fd: number, handler: (ev: number) => void, ev?: number): void => {
      events.add(fd, (e) => {
        if (!this.active) return;
        try {
          handler(e);
        } catch (err) {
          this.fail(`event handling failed: ${(err as Error).message}`);
        }
      }, ev);
    },
    remove: (fd: number): void => events.remove(fd),
  };

  private readonly irq: IrqLine;
  /** The queues of the current activation (for stateLine). */
  private queues: Queue[] = [];

  private interrupt = (): void => {
    this.transport.raiseInterrupt(VIRTIO_MMIO_INT_VRING);
    this.irq.pulse();
  };

  private fail(why: string): void {
    post({ type: 'log', level: 'error', msg: `virtio ${this.w.id}: ${why}; the device needs a reset` });
    this.active = false;
    if (this.transport.setNeedsReset()) this.irq.pulse();
  }

  private onStatusChange(): void {
    if (this.transport.activated && !this.active) {
      const acked = this.transport.ackedFeatures();
      const queues: Queue[] = [];
      for (let i = 0; i < this.transport.numQueues; i++) {
        const c = this.transport.queueConfig(i);
        const q = new Queue(c.maxSize);
        q.size = c.size;
        q.descTable = c.desc;
        q.availRing = c.driver;
        q.usedRing = c.device;
        q.ready = c.ready;
        q.applyFeatures(acked);
        if (q.ready) {
          try {
            q.validate(mem);
          } catch (e) {
            return this.fail(`queue ${i} is invalid: ${(e as Error).message}`);
          }
        }
        queues.push(q);
      }
      this.queues = queues;
      try {
        this.backend.activate({ mem, queues, ackedFeatures: acked, interrupt: this.interrupt, events: this.backendEvents });
      } catch (e) {
        return this.fail(`activation failed: ${(e as Error).message}`);
      }
      this.active = true;
      // The driver may have queued requests before the first notification was seen.
      for (let i = 0; i < queues.length; i++) this.process(i);
    } else if (!this.transport.activated && this.active) {
      this.active = false;
      this.backend.reset();
    }
  }

  process(i: number): void {
    if (!this.active) return;
    try {
      this.backend.processQueue(i);
    } catch (e) {
      if (e instanceof QueueError) this.fail(`malformed virtqueue ${i}: ${e.message}`);
      else this.fail(`queue ${i} processing failed: ${(e as Error).message}`);
    }
  }

  /** A new backing file for a block device: new capacity in config space, then a config-change interrupt. */
  updateDisk(fd: number, sizeBytes: number): void {
    const b = this.backend;
    if (!b.updateDisk) return;
    b.updateDisk(fd, sizeBytes);
    this.transport.setConfig(b.configSpace());
    this.transport.raiseInterrupt(VIRTIO_MMIO_INT_CONFIG);
    this.irq.pulse();
  }

  /**
   * The device's notification state in one line, for diagnosing a stalled
   * guest after the fact (SPARKLER_DEVICE_STATE_AT_STOP, see loop()): per
   * queue the device's indices (next_avail, next_used = used.idx, the used
   * index of the last interrupt check) and the driver's (avail.idx,
   * used_event, avail.flags) and avail_event as the device last wrote it;
   * then InterruptStatus and, for a net device, whether the TAP is polled.
   * With these, a lost kick (avail.idx ahead of next_avail), a lost or
   * suppressed interrupt (used.idx ahead of what the guest asked to be
   * told about) and a stopped RX (TAP out of the loop) tell themselves apart.
   */
  stateLine(): string {
    const parts = [`virtio ${this.w.id}: state at stop: active=${this.active} int_status=${this.transport.interruptStatus}`];
    this.queues.forEach((q, i) => parts.push(`q${i}: ${q.describe(mem)}`));
    const extra = this.backend.describeState?.();
    if (extra !== undefined) parts.push(extra);
    return parts.join('; ');
  }

  shutdown(): void {
    if (this.active) this.backend.reset();
    this.active = false;
  }

  retryInMs(): number | undefined {
    return this.active ? this.backend.retryInMs() : undefined;
  }

  retry(): void {
    for (let i = 0; i < this.transport.numQueues; i++) this.process(i);
  }
}

const runners = new Map(data.devices.map((w) => [w.id, new DeviceRunner(w)]));
let stopping = false;

events.add(data.controlFd, () => {
  drainEventFd(data.controlFd);
  for (let m = receiveMessageOnPort(data.port); m; m = receiveMessageOnPort(data.port)) {
    const req = m.message as DeviceThreadRequest;
    if (req.type === 'stop') stopping = true;
    else if (req.type === 'update-block') {
      runners.get(req.id)?.updateDisk(req.fd, req.sizeBytes);
    } else if (req.type === 'update-rate-limiter') {
      // Firecracker's PATCH semantics: null leaves a bucket as it is, a zero-sized one disables it.
      runners.get(req.id)?.backend.updateRateLimiter?.(req.bandwidth, req.ops);
    } else if (req.type === 'update-net-rate-limiters') {
      runners.get(req.id)?.backend.updateRateLimiters?.(req.rx?.bandwidth, req.rx?.ops, req.tx?.bandwidth, req.tx?.ops);
    }
  }
});

/** Counters of backends live in this thread; the main thread gets a copy at most once a second. */
const METRICS_PERIOD_MS = 1000;
let lastMetrics = 0;
function postMetrics(): void {
  lastMetrics = Date.now();
  for (const r of runners.values()) post({ type: 'metrics', id: r.w.id, values: { ...r.backend.metrics } });
}

function loop(): void {
  while (!stopping) {
    if (Date.now() - lastMetrics >= METRICS_PERIOD_MS) postMetrics();
    let timeout = -1;
    for (const r of runners.values()) {
      const t = r.retryInMs();
      if (t !== undefined) timeout = timeout < 0 ? Math.ceil(t) : Math.min(timeout, Math.ceil(t));
    }
    const n = events.runOnce(timeout);
    if (n === 0 && timeout >= 0) for (const r of runners.values()) if (r.retryInMs() !== undefined) r.retry();
  }
  postMetrics();
  // Diagnostics for a run that was stopped because its guest stalled (bench/devices sets this).
  if (process.env['SPARKLER_DEVICE_STATE_AT_STOP']) for (const r of runners.values()) post({ type: 'log', level: 'info', msg: r.stateLine() });
  // Backends close what they opened (vsock connections); fds handed in by the main thread are closed there.
  for (const r of runners.values()) r.shutdown();
  events.close();
  post({ type: 'stopped' });
}

loop();
